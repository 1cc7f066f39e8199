"""Rule evaluation: a pure function of (rules, event, state) -> (alerts, new state). No I/O.

Price semantics, per rule and per (product, source):

- ``above: X`` fires on a value > X while armed; it starts armed and re-arms once the value is back
  at or below X (or at or below ``rearm:``). ``below`` mirrors it. ``crosses_above: X`` fires when
  the previous quote was <= X and the new one is > X; ``crosses_below`` mirrors it.
- The value is the price, or for ``change_pct``/``change`` the move against the last quote at or
  before (as_of - window), if that quote is near it (``alerts.rules.windows.window_tolerance``: 4 days
  or a tenth of the window); with no such quote there is no value and nothing happens.
- ``confirm: N``: the condition must hold on N consecutive quotes. ``resolve: true``: when a fired
  condition stops holding, a "resolved" alert carries the value that ended it.
- A quote older than the newest one (late data) is kept in the history but fires nothing. A second
  quote with the same time, another id and another price is a correction (``alerts.evaluate.corrections``):
  evaluated as if the quote it corrects had never come, with a follow-up of each alert that one fired; with
  the same price it changes nothing. An event seen before (same id as a quote at the newest time) is ignored.
- ``cooldown``: an alert within the cooldown of the rule's previous alert on the same product is
  held back; an ``above``/``below`` rule then stays armed and fires on the next quote after the
  cooldown if the condition still holds. ``expires``: nothing fires for events after that day.
  Times are event times, so a backtest gives what a live run gives.

A rule with ``source:`` looks only at that vendor's quotes (the others' fire nothing of it); rules that combine
several vendors (``sources:``, ``consensus:``) are evaluated in event time (``alerts.evaluate.vendors``).

Plain ``above``/``below``/``crosses_*`` rules take a fast path: their arming follows from the last
price ("armed" = the previous quote was on the other side, or the rule had not seen it), so a quote
only looks at the thresholds between the previous and the new price, found by bisection, plus the
rules new since the previous quote and those held back by cooldown. Rules with state of their own
are evaluated one by one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from alerts.durations import format_duration
from alerts.evaluate.corrections import Correction, followup, reconcile, rolled_back
from alerts.events.times import local_date
from alerts.events.wire import NewsEvent, PriceEvent
from alerts.model import Alert, AlertStatus, Fired, History, Prior, ProductState, QuoteState, RuleState, alert_id
from alerts.rules.compiled import CompiledRule, NewsRule, PriceRule, ProductIndex, RuleSet
from alerts.rules.render import render
from alerts.rules.windows import reference

NEW, DUPLICATE, LATE = "new", "duplicate", "late"
#: A quote of the newest quote's time with another price (``alerts.evaluate.corrections``).
CORRECTED = "corrected"


@dataclass(slots=True)
class PriceOutcome:
    status: str  # new | duplicate | late | corrected
    alerts: list[Alert]
    state: ProductState
    #: a correction: what it corrected (``alerts.evaluate.corrections.Correction``)
    correction: Correction | None = None


@dataclass(frozen=True, slots=True)
class NewsOutcome:
    alerts: list[Alert]
    fired_rules: frozenset[str]  # rule ids that alerted on this article (before and now)
    last_fired: dict[str, float] = field(default_factory=dict)  # news rule fp -> time, for cooldown


def holds(kind: str, threshold: float, value: float) -> bool:
    """Whether ``value`` meets the condition ``kind`` (above, below, crosses_*, abs_above) of ``threshold``."""
    if kind in ("above", "crosses_above"):
        return value > threshold
    if kind in ("below", "crosses_below"):
        return value < threshold
    return abs(value) > threshold  # abs_above


def _holds(rule: PriceRule, value: float) -> bool:
    return holds(rule.kind, rule.threshold, value)


def crossed(kind: str, threshold: float, previous: float | None, value: float) -> bool:
    if previous is None:
        return False
    if kind == "crosses_above":
        return previous <= threshold < value
    return previous >= threshold > value


def measure(rule: PriceRule, ev: PriceEvent, history: History) -> tuple[float | None, dict[str, Any]]:
    """The value a price rule compares: the price, or the move against the quote at or before
    (as_of - window) when it is near that (``reference``), with what describes it; None when there is no
    such quote."""
    if rule.measure == "price":
        return ev.price, {}
    ref = reference(history, ev.as_of, rule.window)
    if ref is None:
        return None, {}
    change = ev.price - ref[1]
    pct = change / ref[1] * 100
    return (pct if rule.measure == "change_pct" else change), {"change": change, "change_pct": pct,
                                                                "reference": ref}


def _candidates(idx: ProductIndex, q: QuoteState | None, p1: float) -> dict[str, PriceRule]:
    """Fast-path rules that fire on p1 unless held back by cooldown."""
    out: dict[str, PriceRule] = {}
    by_kind = idx.by_kind
    if q is None:
        above, below = by_kind.get("above"), by_kind.get("below")
        if above:
            out.update((r.fp, r) for r in above.between(-math.inf, p1, False, False))
        if below:
            out.update((r.fp, r) for r in below.between(p1, math.inf, False, False))
        return out
    p0 = q.price
    if p1 > p0:
        for ti in (by_kind.get("above"), by_kind.get("crosses_above")):
            if ti:
                for r in ti.between(p0, p1, True, False):
                    out[r.fp] = r
    elif p1 < p0:
        for ti in (by_kind.get("below"), by_kind.get("crosses_below")):
            if ti:
                for r in ti.between(p1, p0, False, True):
                    out[r.fp] = r
    if q.token != idx.token:
        for fp, r in idx.by_fp.items():
            if fp not in q.seen and not r.stateful and r.kind in ("above", "below") and _holds(r, p1):
                out.setdefault(fp, r)
    for fp in q.pending:
        held = idx.by_fp.get(fp)
        if held is not None and _holds(held, p1):
            out.setdefault(fp, held)
    return out


def _with_quote(history: History, ts: float, price: float, keep: float) -> History:
    """Insert a quote (in time order) and drop what no window needs: quotes older than the newest
    minus ``keep``, except the last one before that boundary (the reference of the longest window)."""
    items = [item for item in history if item[0] != ts]  # a quote at the same time is a correction
    bisect.insort(items, (ts, price))
    boundary = items[-1][0] - keep
    first = bisect.bisect_left(items, (boundary, -math.inf))
    return tuple(items[max(0, first - 1):])


_NONE: frozenset[str] = frozenset()


class _Cooldowns:
    """Cooldowns of a product's rules while one quote is evaluated; the times are copied on the first
    write (most quotes fire nothing)."""

    __slots__ = ("at", "before", "changed", "undo")

    def __init__(self, before: Mapping[str, float], at: float):
        self.before = before
        self.at = at
        self.changed: dict[str, float] | None = None
        self.undo: dict[str, float | None] = {}  # rule fp -> its time before this quote (a correction restores it)

    def cooling(self, rule: PriceRule) -> bool:
        if not rule.cooldown:
            return False
        last = (self.changed if self.changed is not None else self.before).get(rule.fp)
        return last is not None and self.at - last < rule.cooldown

    def fired(self, rule: PriceRule) -> None:
        if self.changed is None:
            self.changed = dict(self.before)
        if rule.fp not in self.undo:
            self.undo[rule.fp] = self.before.get(rule.fp)
        self.changed[rule.fp] = self.at


def evaluate_price(rules: RuleSet, ev: PriceEvent, state: ProductState | None, seq: str = "") -> PriceOutcome:
    """Evaluate one quote against the product's state; ``seq`` is its arrival position (kept on the quote state,
    for a correction's record). A quote of the newest quote's time with another price is a correction of it
    (``alerts.evaluate.corrections``); with the same price, a re-publication that changes nothing."""
    st = state or ProductState()
    q = st.quotes.get(ev.source)
    idx = rules.by_product.get(ev.product_key)
    keep = idx.max_window if idx is not None else 0.0
    history = st.history
    if keep:
        history = dict(st.history)
        history[ev.source] = _with_quote(st.history.get(ev.source, ()), ev.as_of, ev.price, keep)
    if q is not None:
        if ev.id == q.event_id or (ev.as_of == q.as_of and ev.id in q.same_time_ids):
            return PriceOutcome(DUPLICATE, [], st)
        if ev.as_of < q.as_of:
            return PriceOutcome(LATE, [], msgspec.structs.replace(st, history=history) if keep else st)
        if ev.as_of == q.as_of:
            if ev.price == q.price:  # the same quote again under another id: nothing to change
                return PriceOutcome(DUPLICATE, [], st)
            return _correct(rules, ev, st, q, idx, history, seq)
        prior: Prior | None = (q.price, q.as_of, q.as_of_date, q.event_id, q.token, q.seen, q.pending)
    else:
        prior = None
    alerts, state_after, _ = evaluate_new(rules, ev, st, q, idx, history, prior, frozenset((ev.id,)), seq)
    return PriceOutcome(NEW, alerts, state_after)


def _correct(rules: RuleSet, ev: PriceEvent, st: ProductState, q: QuoteState, idx: ProductIndex | None,
             history: Mapping[str, History], seq: str) -> PriceOutcome:
    """``ev`` corrects the newest quote ``q``: evaluated as if ``q`` had never come, with a follow-up of each alert
    ``q`` fired (``alerts.evaluate.corrections``)."""
    before, base = rolled_back(st, q)
    alerts, after, fired = evaluate_new(rules, ev, base, before, idx, history, q.prior, q.same_time_ids | {ev.id}, seq)
    out, kept, again = reconcile(q.fired, alerts, fired)
    superseded = msgspec.structs.replace(ev, id=q.event_id, price=q.price, low=None, high=None)
    followups: list[Alert] = []
    for aid, fp, status in q.fired:
        rule = idx.by_fp.get(fp) if idx is not None else None
        if rule is None:  # the rule is gone since: no one to tell
            continue
        extra: dict[str, Any] = {}
        if rule.measure != "price":
            _, extra = measure(rule, superseded, st.history.get(ev.source, ()))
        original = price_alert(rule, superseded, before, cast(AlertStatus, status), rules.timezone, **extra)
        original.id = aid  # as it was sent (the same id, unless the rule's wording of ids changed since)
        followups.append(followup(rule, original, ev, (fp, status) in again))
    quotes = dict(after.quotes)
    quotes[ev.source] = msgspec.structs.replace(after.quotes[ev.source], fired=tuple(kept))
    record = Correction(ev.product_key, ev.product, ev.source, ev.as_of_date, ev.as_of, ev.unit, q.price, ev.price,
                        q.event_id, ev.id, q.seq, seq, followups=tuple(a.id for a in followups))
    return PriceOutcome(CORRECTED, [*followups, *out], msgspec.structs.replace(after, quotes=quotes), record)


def evaluate_new(rules: RuleSet, ev: PriceEvent, st: ProductState, q: QuoteState | None, idx: ProductIndex | None,
                 history: Mapping[str, History], prior: Prior | None, same_time: frozenset[str],
                 seq: str) -> tuple[list[Alert], ProductState, list[Fired]]:
    """A new quote after ``q`` (None: the source's first): its alerts, the new state, and what fired, as
    (alert id, rule fingerprint, status)."""
    alerts: list[Alert] = []
    fired: list[Fired] = []
    last_fired: dict[str, float] | None = None  # copied on the first write: most quotes fire nothing
    undo_fired: dict[str, float | None] | None = None
    undo_rules: dict[str, RuleState] | None = None
    pending: frozenset[str] = _NONE
    rule_states = st.rules
    token, seen = "", _NONE
    if idx is not None:
        token = idx.token
        seen = q.seen if q is not None and q.token == idx.token else frozenset(idx.by_fp)
        candidates = _candidates(idx, q, ev.price)
        if candidates or idx.stateful:
            cooldowns = _Cooldowns(st.last_fired, ev.as_of)
            held: set[str] = set()
            for fp, rule in candidates.items():
                if not rule.active_at(ev.as_of) or (rule.source is not None and rule.source != ev.source.casefold()):
                    continue
                if cooldowns.cooling(rule):
                    if rule.kind in ("above", "below"):
                        held.add(fp)
                    continue
                cooldowns.fired(rule)
                a = price_alert(rule, ev, q, "firing", rules.timezone)
                fired.append((a.id, fp, "firing"))
                alerts.append(a)
            if idx.stateful:
                rule_states = dict(st.rules)
                for rule in idx.stateful:
                    if rule.source is not None and rule.source != ev.source.casefold():
                        continue  # ``source:`` another vendor's
                    key = f"{rule.fp}|{ev.source}"
                    before = rule_states.get(key, RuleState())
                    after, events = _step_stateful(rule, before, ev, history.get(ev.source, ()), q,
                                                   cooldowns.cooling)
                    if after != before:
                        rule_states[key] = after
                        if undo_rules is None:
                            undo_rules = {}
                        undo_rules[key] = before
                    for status, extra in events:
                        if status == "firing":
                            cooldowns.fired(rule)
                        a = price_alert(rule, ev, q, status, rules.timezone, **extra)
                        fired.append((a.id, rule.fp, status))
                        alerts.append(a)
            last_fired = cooldowns.changed
            if cooldowns.undo:
                undo_fired = cooldowns.undo
            pending = frozenset(held) if held else _NONE
        if q is not None and q.token != idx.token:  # rules changed: forget state of rules that are gone
            last_fired = {fp: t for fp, t in (last_fired or st.last_fired).items() if fp in idx.by_fp}
            rule_states = {k: v for k, v in rule_states.items() if k.split("|", 1)[0] in idx.by_fp}
    quote = QuoteState(ev.price, ev.as_of, ev.as_of_date, ev.id, token, seen, pending, same_time, prior,
                       tuple(fired) if fired else (), undo_fired, undo_rules, seq)
    quotes = dict(st.quotes)
    quotes[ev.source] = quote
    return alerts, ProductState(quotes, st.last_fired if last_fired is None else last_fired, rule_states,
                                history), fired


def _step_stateful(rule: PriceRule, st: RuleState, ev: PriceEvent, history: History, q: QuoteState | None,
                   cooling: Callable[[PriceRule], bool]) -> tuple[RuleState, list[tuple[AlertStatus, dict[str, Any]]]]:
    value, extra = measure(rule, ev, history)
    if value is None:
        return st, []  # no reference quote: nothing to compare, nothing changes
    state, fired = step_value(rule.kind, rule.threshold, rule.rearm, rule.confirm, rule.resolve, st, value,
                              rule.active_at(ev.as_of) and not cooling(rule))
    return state, [(status, extra) for status in fired]


def cooling(cooldown: float, last: float | None, t: float) -> bool:
    """Whether a rule with ``cooldown`` (seconds; 0: none) that last fired at ``last`` (event time) is cooling down
    at ``t``: news, notices, spreads and vendor rules alike."""
    return bool(cooldown) and last is not None and t - last < cooldown


def step_value(kind: str, threshold: float, rearm: float | None, confirm: int, resolve: bool, st: RuleState,
               value: float, may_fire: bool) -> tuple[RuleState, list[AlertStatus]]:
    """The arming state machine of above/below/abs_above on one new value: returns the new state and
    what happened ("firing", "resolved"). ``may_fire`` False (cooldown, expiry) keeps the rule armed."""
    held = holds(kind, threshold, value)
    streak = st.streak + 1 if held else 0
    armed, firing = st.armed, st.firing
    events: list[AlertStatus] = []
    if firing and not held:
        firing = False
        if resolve:
            events.append("resolved")
    level = threshold if rearm is None else rearm
    if not armed and (value <= level if kind == "above" else value >= level if kind == "below"
                      else abs(value) <= level):
        armed = True
    if armed and held and streak >= confirm and may_fire:
        events.append("firing")
        armed, firing = False, True
    return RuleState(armed, streak, firing), events


def price_alert(rule: PriceRule, ev: PriceEvent, q: QuoteState | None, status: AlertStatus, tz: str,
                 change: float | None = None, change_pct: float | None = None,
                 reference: tuple[float, float] | None = None) -> Alert:
    previous: float | None
    previous_as_of: str | None
    if reference is not None:
        previous, previous_as_of = reference[1], local_date(reference[0], tz)
    else:
        previous = q.price if q is not None else None
        previous_as_of = q.as_of_date if q is not None else None
    a = Alert(
        id=alert_id(rule.id, ev.product_key, ev.source, ev.id, status),
        rule_id=rule.id, kind="price", condition=rule.kind, severity=rule.severity,
        targets=rule.target_names, description=rule.description,
        event_id=ev.id, source=ev.source, at=ev.as_of, status=status, product=ev.product, unit=ev.unit,
        price=ev.price, previous=previous, previous_as_of=previous_as_of, threshold=rule.threshold,
        measure=rule.measure, change=change, change_pct=change_pct,
        window=format_duration(rule.window) if rule.window else None, as_of=ev.as_of_date,
        owner=rule.owner, labels=rule.labels_dict,
    )
    return with_text(a, rule)


def with_text(a: Alert, rule: CompiledRule) -> Alert:
    """The alert with its text, set in place: the alert was built a line before and no one else holds it
    yet, and dataclasses.replace would build it a second time (this is the hot path)."""
    a.text = render(a, rule)
    return a


def evaluate_news(rules: RuleSet, ev: NewsEvent, fired_before: frozenset[str],
                  last_fired: dict[str, float] | None = None) -> NewsOutcome:
    """``fired_before``: rule ids that already alerted on this article (by id or url)."""
    text = f"{ev.headline}\n{ev.body}"
    alerts = []
    fired = set(fired_before)
    cooldowns = dict(last_fired or {})
    for rule in rules.news:
        if rule.id in fired or not rule.active_at(ev.published_at) or not rule.matches(text, ev.source):
            continue
        if cooling(rule.cooldown, cooldowns.get(rule.fp), ev.published_at):
            continue
        fired.add(rule.id)
        cooldowns[rule.fp] = ev.published_at
        alerts.append(_news_alert(rule, ev))
    return NewsOutcome(alerts, frozenset(fired), cooldowns)


def _news_alert(rule: NewsRule, ev: NewsEvent) -> Alert:
    a = Alert(
        id=alert_id(rule.id, ev.article_keys[0]),
        rule_id=rule.id, kind="news", condition="news", severity=rule.severity,
        targets=rule.target_names, description=rule.description,
        event_id=ev.id, source=ev.source, at=ev.published_at, headline=ev.headline, url=ev.url,
        owner=rule.owner, labels=rule.labels_dict,
    )
    return with_text(a, rule)
