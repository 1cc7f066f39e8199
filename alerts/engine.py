"""Rule evaluation: a pure function of (rules, event, state) -> (alerts, new state). No I/O.

Price semantics, per rule and per (product, source):

- ``above: X`` fires on a price > X while armed; it starts armed and re-arms on a price <= X.
  Because arming follows the last price, "armed" is simply "the previous quote was <= X, or the
  rule had not seen the previous quote" (a new or changed rule starts armed). ``below`` mirrors it.
- ``crosses_above: X`` fires when the previous quote was <= X and the new one is > X.
- A quote older than the newest one (late data) changes nothing and fires nothing. A second quote
  with the same time and another id is a correction and is evaluated; an event seen before (same
  id as a quote at the newest time) is ignored.
- ``cooldown``: an alert within the cooldown of the rule's previous alert on the same product is
  held back; an ``above``/``below`` rule then stays armed and fires on the next quote after the
  cooldown if the condition still holds. Times are event times, so backtests match live runs.

The index makes a quote cost O(log n + k): only thresholds between the previous and the new price
(k of them), rules new since the previous quote and rules held back by cooldown are looked at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from alerts.events import NewsEvent, PriceEvent
from alerts.model import Alert, ProductState, QuoteState, alert_id
from alerts.ruleset import NewsRule, PriceRule, ProductIndex, RuleSet

NEW, DUPLICATE, LATE = "new", "duplicate", "late"


@dataclass(frozen=True, slots=True)
class PriceOutcome:
    status: str  # new | duplicate | late
    alerts: list[Alert]
    state: ProductState


@dataclass(frozen=True, slots=True)
class NewsOutcome:
    alerts: list[Alert]
    fired_rules: frozenset[str]  # rule ids that alerted on this article (before and now)
    last_fired: dict[str, float] = field(default_factory=dict)  # news rule fp -> time, for cooldown


def _holds(rule: PriceRule, price: float) -> bool:
    k = rule.kind
    return price > rule.threshold if k in ("above", "crosses_above") else price < rule.threshold


def _candidates(idx: ProductIndex, q: QuoteState | None, p1: float) -> dict[str, PriceRule]:
    out: dict[str, PriceRule] = {}
    p0 = q.price if q is not None else None
    above, below = idx.kind("above"), idx.kind("below")
    if p0 is None:
        if above:
            out.update((r.fp, r) for r in above.between(-math.inf, p1, False, False))
        if below:
            out.update((r.fp, r) for r in below.between(p1, math.inf, False, False))
        return out
    if p1 > p0:
        for ti in (above, idx.kind("crosses_above")):
            if ti:
                out.update((r.fp, r) for r in ti.between(p0, p1, True, False))
    elif p1 < p0:
        for ti in (below, idx.kind("crosses_below")):
            if ti:
                out.update((r.fp, r) for r in ti.between(p1, p0, False, True))
    if q is not None and q.token != idx.token:
        for fp, r in idx.by_fp.items():
            if fp not in q.seen and r.kind in ("above", "below") and _holds(r, p1):
                out.setdefault(fp, r)
    if q is not None:
        for fp in q.pending:
            held = idx.by_fp.get(fp)
            if held is not None and _holds(held, p1):
                out.setdefault(fp, held)
    return out


def evaluate_price(rules: RuleSet, ev: PriceEvent, state: ProductState | None) -> PriceOutcome:
    st = state or ProductState()
    q = st.quotes.get(ev.source)
    if q is not None:
        if ev.id == q.event_id or (ev.as_of == q.as_of and ev.id in q.same_time_ids):
            return PriceOutcome(DUPLICATE, [], st)
        if ev.as_of < q.as_of:
            return PriceOutcome(LATE, [], st)
    idx = rules.price.get(ev.product_key)
    alerts: list[Alert] = []
    last_fired = st.last_fired
    pending: set[str] = set()
    token, seen = "", frozenset[str]()
    if idx is not None:
        token = idx.token
        seen = q.seen if q is not None and q.token == idx.token else frozenset(idx.by_fp)
        p0 = q.price if q is not None else None
        for fp, rule in _candidates(idx, q, ev.price).items():
            last = last_fired.get(fp)
            if rule.cooldown and last is not None and ev.as_of - last < rule.cooldown:
                if rule.kind in ("above", "below"):
                    pending.add(fp)
                continue
            if last_fired is st.last_fired:
                last_fired = dict(st.last_fired)
            last_fired[fp] = ev.as_of  # type: ignore[index]
            alerts.append(_price_alert(rule, ev, p0))
        if q is not None and q.token != idx.token:
            last_fired = {fp: t for fp, t in last_fired.items() if fp in idx.by_fp}
    same_time = q.same_time_ids | {ev.id} if q is not None and q.as_of == ev.as_of else frozenset((ev.id,))
    quote = QuoteState(ev.price, ev.as_of, ev.as_of_date, ev.id, token, seen, frozenset(pending), same_time)
    quotes = dict(st.quotes)
    quotes[ev.source] = quote
    return PriceOutcome(NEW, alerts, ProductState(quotes, last_fired))


def _price_alert(rule: PriceRule, ev: PriceEvent, previous: float | None) -> Alert:
    return Alert(
        id=alert_id(rule.id, ev.product_key, ev.source, ev.id),
        rule_id=rule.id, kind="price", condition=rule.kind, severity=rule.severity,
        targets=tuple(str(t) for t in rule.targets), description=rule.description,
        event_id=ev.id, source=ev.source, at=ev.as_of, product=ev.product, unit=ev.unit,
        price=ev.price, previous=previous, threshold=rule.threshold, as_of=ev.as_of_date,
    )


def evaluate_news(rules: RuleSet, ev: NewsEvent, fired_before: frozenset[str],
                  last_fired: dict[str, float] | None = None) -> NewsOutcome:
    """``fired_before``: rule ids that already alerted on this article (by id or url)."""
    text = f"{ev.headline}\n{ev.body}"
    alerts = []
    fired = set(fired_before)
    cooldowns = dict(last_fired or {})
    for rule in rules.news:
        if rule.id in fired or not rule.matches(text):
            continue
        last = cooldowns.get(rule.fp)
        if rule.cooldown and last is not None and ev.published_at - last < rule.cooldown:
            continue
        fired.add(rule.id)
        cooldowns[rule.fp] = ev.published_at
        alerts.append(_news_alert(rule, ev))
    return NewsOutcome(alerts, frozenset(fired), cooldowns)


def _news_alert(rule: NewsRule, ev: NewsEvent) -> Alert:
    return Alert(
        id=alert_id(rule.id, ev.article_keys[0]),
        rule_id=rule.id, kind="news", condition="news", severity=rule.severity,
        targets=tuple(str(t) for t in rule.targets), description=rule.description,
        event_id=ev.id, source=ev.source, at=ev.published_at, headline=ev.headline, url=ev.url,
    )
