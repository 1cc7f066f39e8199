"""Silences in Redis, and the API that makes, lists, expires and ends them (the CLI calls it; so will Slack).

Keys: ``P:silences`` (hash: silence id -> the silence as JSON, expired ones included: the audit trail) and
``P:silences:ends`` (sorted set: silence id by the time it stops being active, ``+inf`` while it lasts until
its rule re-arms). The delivery job reads the active ones in one round trip (``SilenceStore.active``); the
retention job purges silences ended more than ``ALERTS_ALERT_RETENTION_DAYS`` ago (``purge``).

The matching itself is pure (``alerts.silence.model``).
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis

from alerts.durations import MAX_SILENCE, SILENCE_LIMIT, format_time, parse_duration
from alerts.errors import AlertsError
from alerts.evaluate.engine import holds
from alerts.events.words import did_you_mean
from alerts.model import ProductState, RuleState
from alerts.rules.compiled import CompiledRule, PriceRule, RuleSet, SpreadRule
from alerts.silence.model import KINDS, Matchers, Silence, target_key
from alerts.store.keys import Keys
from alerts.store.state import load_states
from alerts.targets import parse_target

#: Seconds an ended silence is still read by the delivery job (``SilenceStore.for_delivery``).
RECENT_SECONDS = 86400.0
#: Who ends an until-resolved silence when its rule re-arms (``expired_by``).
RESOLVED = "resolved"

# the active silences (end after now) in one round trip: ids from the sorted set, records from the hash
_ACTIVE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(ids))
"""


class SilenceError(AlertsError, ValueError):
    """A silence that cannot be made or expired: the message is one line, for people."""


def _score(end: float) -> str:
    return "+inf" if math.isinf(end) else repr(end)


def _decode(raw: bytes | str | None) -> Silence | None:
    if raw is None:
        return None
    try:
        return Silence.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None  # not one of ours: left alone


class SilenceStore:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def save(self, s: Silence) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.silences, s.id, json.dumps(s.to_dict(), ensure_ascii=False))
        pipe.zadd(self.keys.silence_ends, {s.id: _score(s.end)})
        pipe.execute()

    def get(self, silence_id: str) -> Silence | None:
        return _decode(cast(bytes | None, self.client.hget(self.keys.silences, silence_id)))

    def active(self, now: float | None = None) -> list[Silence]:
        """The silences active at ``now``, by id: one round trip."""
        now = time.time() if now is None else now
        raw = cast(list[bytes | None], self.client.eval(_ACTIVE, 2, self.keys.silences, self.keys.silence_ends,
                                                        repr(now)))
        got = [s for s in map(_decode, raw) if s is not None and s.active(now)]
        return sorted(got, key=lambda s: s.id)

    def for_delivery(self, now: float | None = None) -> list[Silence]:
        """What the delivery job matches against (one round trip): the active silences, and those that ended
        within ``RECENT_SECONDS`` (an until-resolved silence ended by an alert still covers that alert's
        other targets)."""
        now = time.time() if now is None else now
        raw = cast(list[bytes | None], self.client.eval(_ACTIVE, 2, self.keys.silences, self.keys.silence_ends,
                                                        repr(now - RECENT_SECONDS)))
        return [s for s in map(_decode, raw) if s is not None]

    def all(self) -> list[Silence]:
        """Every silence kept, active and ended, newest first."""
        raw = cast(dict[bytes, bytes], self.client.hgetall(self.keys.silences))
        return sorted((s for s in map(_decode, raw.values()) if s is not None), key=lambda s: -s.created)

    def expire(self, silence_id: str, by: str, why: str, now: float | None = None,
               alert_id: str | None = None) -> Silence:
        """End an active silence now, recording who and why. Raises SilenceError when there is no such silence
        or it has ended already (saying when and by whom)."""
        now = time.time() if now is None else now
        while True:
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.watch(self.keys.silences)
                    s = _decode(cast(bytes | None, pipe.hget(self.keys.silences, silence_id)))
                    if s is None:
                        raise SilenceError(f"no silence {silence_id!r} (alerts silence list --all)")
                    if not s.active(now):
                        how = f" (expired by {s.expired_by}: {s.expired_why})" if s.expired_at is not None else ""
                        raise SilenceError(f"silence {silence_id} has ended already{how}")
                    done = s.expired(now, by, why, alert_id)
                    pipe.multi()
                    pipe.hset(self.keys.silences, s.id, json.dumps(done.to_dict(), ensure_ascii=False))
                    pipe.zadd(self.keys.silence_ends, {s.id: _score(done.end)})
                    pipe.execute()
                    return done
            except redis.WatchError:
                continue

    def purge(self, before: float) -> int:
        """Forget silences that ended before ``before`` (epoch seconds)."""
        ids = cast(list[bytes], self.client.zrangebyscore(self.keys.silence_ends, "-inf", f"({before!r}"))
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.silences, *ids)
        pipe.zrem(self.keys.silence_ends, *ids)
        return int(pipe.execute()[0])


# --- making a silence ----------------------------------------------------------------------------------------


def parse_until(text: str, tz: str) -> float:
    """``--until``: a date (its midnight, in ``tz``) or an ISO time (``tz`` unless it carries an offset)."""
    try:
        return datetime.combine(date.fromisoformat(text), dtime(0), ZoneInfo(tz)).timestamp()
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))).timestamp()
    except (ValueError, OverflowError):
        raise SilenceError(f"--until {text[:40]!r}: not a date (2026-03-11) or a time (2026-03-11T09:00)") from None


def build(rules: RuleSet, *, author: str, comment: str, rule: Sequence[str] = (), product: Sequence[str] = (),
          label: Sequence[str] = (), target: Sequence[str] = (), severity: Sequence[str] = (),
          for_: str | None = None, until: str | None = None, until_resolved: bool = False,
          notify_resolved: bool = False, now: float | None = None, silence_id: str | None = None) -> Silence:
    """A new silence from what a person gave, checked against the rule files: at least one matcher, a comment,
    exactly one of ``for_`` (a duration), ``until`` (a date or time in the rules' time zone, in the future) and
    ``until_resolved`` (only with rule matchers naming price or spread rules). Products resolve through the
    catalog (any alias), rule ids must be defined. Raises SilenceError with a one-line message."""
    now = time.time() if now is None else now
    if not comment.strip():
        raise SilenceError("a comment is required (--comment TEXT): say why, for the desk and the audit trail")
    if not author.strip():
        raise SilenceError("an author is required (--author NAME)")
    rule_ids = tuple(dict.fromkeys(rule))
    for rid in rule_ids:
        if rid not in rules.by_id:
            raise SilenceError(f"no rule {rid!r} in the rule files{did_you_mean(rid, rules.by_id)}")
    products = []
    for name in product:
        p = rules.catalog.find(name)
        if p is None:
            known = [n for q in rules.catalog.products.values() for n in q.all_names]
            raise SilenceError(f"unknown product {name!r}{did_you_mean(name, known)}")
        products.append(p.name)
    labels = []
    for text in label:
        k, eq, v = text.partition("=")
        if not eq or not k.strip():
            raise SilenceError(f"--label {text!r}: write key=value")
        labels.append((k.strip(), v.strip()))
    targets = []
    for text in target:
        try:
            parse_target(text)
        except ValueError as exc:
            raise SilenceError(f"--target: {exc}") from None
        targets.append(target_key(text))
    matchers = Matchers(rule=rule_ids, product=tuple(dict.fromkeys(products)), label=tuple(dict.fromkeys(labels)),
                        target=tuple(dict.fromkeys(targets)), severity=tuple(dict.fromkeys(severity)))
    if matchers.empty:
        raise SilenceError("say what to silence: at least one of --rule, --product, --label, --target, --severity")
    if sum((for_ is not None, until is not None, until_resolved)) != 1:
        raise SilenceError("say how long: one of --for DURATION, --until TIME, --until-resolved")
    ends: float | None = None
    if for_ is not None:
        try:
            seconds = parse_duration(for_, MAX_SILENCE, SILENCE_LIMIT)
        except ValueError as exc:
            raise SilenceError(f"--for: {exc}") from None
        if seconds <= 0:
            raise SilenceError(f"--for {for_[:40]!r}: a silence must last a while")
        ends = now + seconds
    elif until is not None:
        ends = parse_until(until, rules.timezone)
        if ends <= now:
            raise SilenceError(f"--until {until[:40]!r} is in the past ({rules.timezone}); a silence ends in the "
                               "future")
        if ends > now + MAX_SILENCE:
            raise SilenceError(f"--until {until[:40]!r} is more than a year ahead: {SILENCE_LIMIT}")
    else:
        if not rule_ids:
            raise SilenceError("--until-resolved needs --rule: it lasts until that rule re-arms")
        for rid in rule_ids:
            bad = [r for r in rules.by_id[rid] if not r.rearms]
            if bad:
                raise SilenceError(f"--until-resolved: {rid} is not a price or spread rule (a rule that re-arms); "
                                   "use --for or --until")
    return Silence(silence_id or secrets.token_hex(4), matchers, author.strip(), comment.strip(), now, ends,
                   until_resolved=until_resolved, notify_resolved=notify_resolved)


def create(client: redis.Redis, keys: Keys, rules: RuleSet, **given: Any) -> Silence:
    """``build`` and store a silence. An until-resolved silence whose rules hold on no product it matches would
    end at once: refused (SilenceError)."""
    s = build(rules, **given)
    if s.until_resolved:
        now_holding, seen = _look(client, keys, rules, s)
        if not any(now_holding.values()):
            raise SilenceError(f"--until-resolved: {', '.join(s.matchers.rule)} is not firing now on any product "
                               "silenced (nothing to wait for); use --for or --until")
        s = replace(s, seen_up_to=seen)
    SilenceStore(client, keys).save(s)
    return s


# --- until resolved ---------------------------------------------------------------------------------------


def _watched(rule: CompiledRule, products: Iterable[str]) -> bool:
    wanted = set(products)
    if not wanted:
        return True
    product = rule.alert_product
    return product is not None and product.name in wanted


def _state_holds(state: Mapping[str, Any] | None, kind: str, threshold: float) -> bool:
    """A spread's (or a price rule's in another currency) shared state: fired and not re-armed."""
    if not state:
        return False
    if "rs" in state:
        rs = RuleState.from_list(state["rs"])
        return not rs.armed or rs.firing
    last = state.get("last")
    return last is not None and kind.startswith("crosses") and holds(kind, threshold, float(last))


def rule_holds(rule: PriceRule | SpreadRule, states: Mapping[str, ProductState | None],
               shared: Mapping[str, Mapping[str, Any] | None]) -> bool:
    """Whether ``rule`` has fired and not re-armed, on any source: its state says not armed (or firing, with
    ``resolve``); for a plain above/below rule (no state of its own), the last quote is past the threshold
    and the rule saw it; for crosses_*, the last value is on the far side."""
    if isinstance(rule, SpreadRule) or rule.event_time:  # its state is its own (P:shared)
        return _state_holds(shared.get(rule.state_key), rule.kind, rule.threshold)
    st = states.get(rule.product.key)
    if st is None:
        return False
    for source, q in st.quotes.items():
        if rule.source is not None and source.casefold() != rule.source:
            continue  # ``source:`` another vendor's
        if rule.stateful:
            rs = st.rules.get(f"{rule.fp}|{source}")
            if rs is not None and (not rs.armed or rs.firing):
                return True
        elif rule.kind.startswith("crosses"):
            if holds(rule.kind, rule.threshold, q.price):
                return True
        elif (not q.token or rule.fp in q.seen) and rule.fp not in q.pending \
                and holds(rule.kind, rule.threshold, q.price):
            return True
    return False


def holding(client: redis.Redis, keys: Keys, rules: RuleSet, s: Silence) -> dict[str, bool]:
    """For an until-resolved silence: per rule id and product it silences (``id|product``), whether the rule
    still holds (fired, not re-armed); a rule gone from the rule files is not holding."""
    return _look(client, keys, rules, s)[0]


def _look(client: redis.Redis, keys: Keys, rules: RuleSet, s: Silence) -> tuple[dict[str, bool], float | None]:
    """``holding``, and the event time of the newest quote (or spread evaluation) of those rules."""
    compiled: list[PriceRule | SpreadRule] = [
        r for rid in s.matchers.rule for r in rules.by_id.get(rid, ())
        if isinstance(r, PriceRule | SpreadRule) and _watched(r, s.matchers.product)]
    states = load_states(client, keys, {r.product.key for r in compiled if isinstance(r, PriceRule)})
    shared_keys = [k for r in compiled for k in r.shared_keys]
    shared = {k: json.loads(v) if (v := client.get(keys.shared(k))) else None for k in shared_keys}
    times = [q.as_of for st in states.values() if st is not None for q in st.quotes.values()]
    times += [float(c) for st in shared.values() if st and isinstance(c := st.get("cursor"), int | float)
              and math.isfinite(c)]
    out = {f"{r.id}|{r.alert_product.name}": rule_holds(r, states, shared) for r in compiled}
    return out, max(times, default=None)


def end_resolved(client: redis.Redis, keys: Keys, rules: RuleSet, now: float | None = None) -> list[Silence]:
    """The periodic check: until-resolved silences whose rules hold on none of their products any more (the
    rule re-armed: its condition stopped holding), expired by "resolved". Returns those ended."""
    now = time.time() if now is None else now
    store = SilenceStore(client, keys)
    ended = []
    for s in store.active(now):
        if not s.until_resolved or any(holding(client, keys, rules, s).values()):
            continue
        try:
            ended.append(store.expire(s.id, RESOLVED, f"{', '.join(s.matchers.rule)} re-armed: its condition no "
                                      "longer holds on any product silenced", now))
        except SilenceError:
            continue  # ended meanwhile
    return ended


def describe(s: Silence, tz: str, now: float | None = None) -> str:
    """One line: ``ID matchers, until WHEN|until the rule re-arms, by AUTHOR: COMMENT`` (and how it ended)."""
    now = time.time() if now is None else now

    def when(ts: float) -> str:  # a stored end out of any calendar's range shows as "(invalid time)"
        return format_time(ts, tz, seconds=False)

    line = f"{s.id}  {s.matchers.text()}"
    if s.active(now):
        line += "  until the rule re-arms" if s.until_resolved else f"  until {when(s.end)}"
    elif s.expired_at is not None and (s.ends is None or s.expired_at < s.ends):
        line += f"  EXPIRED {when(s.expired_at)} by {s.expired_by} ({s.expired_why})"
    else:
        line += f"  ENDED {when(s.end)}"
    if s.notify_resolved:
        line += ", resolved notices still sent"
    return f"{line}  by {s.author} {when(s.created)}: {s.comment}"


def to_json(s: Silence, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    return {**s.to_dict(), "active": s.active(now)}


__all__ = ["KINDS", "RESOLVED", "SilenceError", "SilenceStore", "build", "create", "describe", "end_resolved",
           "holding", "parse_until", "rule_holds", "to_json"]
