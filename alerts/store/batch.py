"""One evaluator batch in Redis: what it reads before evaluating, and the one transaction that commits it.

``read_batch`` gathers, in one pipelined round trip, the state the batch needs beyond the
evaluator's cache; every command carries the name of the field its reply fills, so no reply is
matched by position. ``commit_batch`` writes a ``BatchCommit`` in one MULTI/EXEC fenced by the shard
leases, the shards' commit counters and the shared rule state the batch read:

- a lease held by someone else, or a commit counter that is not the one this evaluator last wrote
  (another owner committed in between, or Redis lost writes): ``LeaseLost``, the cache is not Redis'
  state and the shards must be taken again (``redis.WatchError`` when that happens between the check
  and the commit).

Spreads and all_of rules are not evaluated here: the batch writes their inputs (leg points, part
facts, watermarks) for the event-time stage (``alerts.store.composite``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis

from alerts.errors import AlertsError
from alerts.evaluate.breaker import BreakerVerdict
from alerts.evaluate.session import Session
from alerts.model import ProductState
from alerts.store.composite import stage_inputs
from alerts.store.corrections import stage_corrections
from alerts.store.keys import EVALUATOR_GROUP, INVALID_MAXLEN, SEEN_TTL, Keys
from alerts.store.locks import renew
from alerts.store.notices import stage_notices
from alerts.store.state import decode_state, encode_state, history_member, news_member
from alerts.store.streams import append_alerts


class LeaseLost(AlertsError):
    """The shards of a batch changed hands, or Redis lost writes: their events stay pending."""


@dataclass
class BatchReads:
    """What a batch read from Redis, by name."""

    #: product key -> its stored state (None: never quoted), for the products not in the cache
    states: dict[str, ProductState | None] = field(default_factory=dict)
    #: article key -> rule ids that already alerted on the article
    seen: dict[str, set[str]] = field(default_factory=dict)
    #: news rule fingerprint -> event time of its last alert (cooldowns)
    news_fired: dict[str, float] = field(default_factory=dict)


class _Pipeline:
    """A pipeline whose commands each say where their reply goes: ``p.to(sink).hgetall(key)``."""

    def __init__(self, client: redis.Redis):
        self.pipe = client.pipeline(transaction=False)
        self.sinks: list[Callable[[Any], None]] = []

    def to(self, sink: Callable[[Any], None]) -> redis.client.Pipeline:
        self.sinks.append(sink)
        return self.pipe

    def run(self) -> None:
        if self.sinks:
            for sink, reply in zip(self.sinks, self.pipe.execute(), strict=True):
                sink(reply)


def _state(out: BatchReads, pk: str, raw: dict[bytes, bytes]) -> None:
    out.states[pk] = decode_state(raw)


def _seen(out: BatchReads, ak: str, raw: set[bytes]) -> None:
    out.seen[ak] = {m.decode() for m in raw}


def _news_fired(out: BatchReads, raw: dict[bytes, bytes]) -> None:
    out.news_fired = {k.decode(): float(v) for k, v in raw.items()}


def read_batch(client: redis.Redis, keys: Keys, products: Iterable[str], article_keys: Iterable[str],
               news: bool) -> BatchReads:
    """One round trip: the states of ``products``, the rules that alerted on ``article_keys``, and the news
    cooldowns when the batch holds ``news``."""
    out = BatchReads()
    p = _Pipeline(client)
    for pk in products:
        p.to(partial(_state, out, pk)).hgetall(keys.state(pk))
    for ak in article_keys:
        p.to(partial(_seen, out, ak)).smembers(keys.seen(ak))
    if news:
        p.to(partial(_news_fired, out)).hgetall(keys.news_fired)
    p.run()
    return out


@dataclass
class InvalidEntry:
    """A stream entry that is not an event: set aside on ``P:invalid`` with the reason, and acknowledged."""

    shard: int
    entry_id: bytes
    raw: bytes
    reason: str


@dataclass
class BatchCommit:
    """Everything one batch changes, written in one transaction by ``commit_batch``."""

    token: bytes  # the evaluator's lease token
    entry_ids: dict[int, list[bytes]]  # shard -> the entries to acknowledge
    commits: dict[int, int]  # shard -> its commit counter as of this evaluator's last commit (read only)
    session: Session  # new states, history, seen articles, cooldowns, inputs of the event-time stage
    verdict: BreakerVerdict  # the alerts that go out, and the breaker's bookkeeping
    invalid: list[InvalidEntry] = field(default_factory=list)

    @property
    def shards(self) -> list[int]:
        return sorted(self.entry_ids)


def commit_batch(client: redis.Redis, keys: Keys, c: BatchCommit, lease_ms: int, breaker_window: float) -> None:
    """Write the batch. Raises LeaseLost or redis.WatchError (see the module docstring)."""
    shards = c.shards
    lease_keys = [keys.lease(s) for s in shards]
    commit_keys = [keys.commits(s) for s in shards]
    for key in lease_keys:  # a long batch may have outlived its lease: renew it, or take it back if free
        if not renew(client, key, c.token, lease_ms, take_if_free=True):
            raise LeaseLost(shards)
    history: dict[str, dict[str, float]] = {}
    for ev, late, seq in c.session.prices:
        history.setdefault(keys.history(ev.product_key, ev.source), {})[history_member(ev, late, seq)] = ev.as_of
    s = c.session
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(*lease_keys, *commit_keys)
        holders = pipe.mget(lease_keys)
        if any(v != c.token for v in holders):
            raise LeaseLost(shards)
        # Another commit since ours (an owner in between) or fewer commits (Redis lost writes):
        # the cached state is not Redis' state.
        counters = [int(v or 0) for v in pipe.mget(commit_keys)]
        if counters != [c.commits.get(shard, -1) for shard in shards]:
            raise LeaseLost(shards)
        pipe.multi()
        for pk, st in s.changed.items():
            pipe.hset(keys.state(pk), mapping=encode_state(st))  # type: ignore[arg-type]
        for key, members in history.items():
            pipe.zadd(key, members)  # type: ignore[arg-type]
        if s.news:
            pipe.zadd(keys.news_history, {news_member(ev, seq): ev.published_at for ev, seq in s.news})
        stage_notices(pipe, keys, s.notices)
        if s.corrections:
            stage_corrections(pipe, keys, s.corrections)
        for ak, rule_ids in s.seen_added.items():
            pipe.sadd(keys.seen(ak), *sorted(rule_ids))
            pipe.expire(keys.seen(ak), SEEN_TTL)
        stage_inputs(pipe, keys, s)
        if s.news_fired_changed:
            pipe.hset(keys.news_fired, mapping=s.news_fired_changed)  # type: ignore[arg-type]
        append_alerts(pipe, keys, c.verdict, breaker_window)
        for bad in c.invalid:
            pipe.xadd(keys.invalid, {"e": bad.raw, "reason": bad.reason, "stream": keys.events(bad.shard)},
                      maxlen=INVALID_MAXLEN, approximate=True)
        for shard, ids in c.entry_ids.items():
            pipe.xack(keys.events(shard), EVALUATOR_GROUP, *ids)
            pipe.incr(keys.commits(shard))
        pipe.execute()
