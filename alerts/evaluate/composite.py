"""Conditions that span more than one product's quotes, pure like ``alerts.engine``:

- ``spread``: ``of`` minus ``minus`` (in the unit of ``of``), evaluated whenever either leg gets a
  newer quote, with the latest quote of each leg (whatever its source); arming as for prices.
- ``all_of``: fires when every part was true within ``within`` of the others; a part is true on a
  quote that meets its price condition, or on an article that matches its news condition. It fires
  again only once every part has been true again since (a new pairing).
- ``stale``: no quote of a product for N business days (weekends and ``holidays:`` do not count) or
  for a duration; fires once per outage. It needs a clock, not an event: the scheduler runs it.

Their state is a small JSON document per rule (``P:shared:{fingerprint}`` in Redis), because the
events that move it can arrive on different shards.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from msgspec.structs import replace

from alerts.durations import format_duration
from alerts.evaluate.engine import crossed, measure, step_value
from alerts.events import NewsEvent, PriceEvent, local_date
from alerts.model import Alert, AlertStatus, History, QuoteState, RuleState, alert_id
from alerts.rules.compiled import AllOfRule, PriceRule, SpreadRule, StaleRule
from alerts.rules.render import render
from alerts.units import format_price

Shared = dict[str, Any]
#: Business days looked at, at most, when counting how long a feed has been silent.
MAX_DAYS_BACK = 3660


def _base(rule: SpreadRule | AllOfRule | StaleRule, **kw: Any) -> Alert:
    return Alert(rule_id=rule.id, severity=rule.severity, targets=rule.target_names,
                 description=rule.description, owner=rule.owner, labels=rule.labels_dict, **kw)


def _cooling(rule: SpreadRule | AllOfRule, state: Shared, t: float) -> bool:
    last = state.get("fired_at")
    return bool(rule.cooldown) and last is not None and t - last < rule.cooldown


def evaluate_spread(rule: SpreadRule, state: Shared | None, ev: PriceEvent) -> tuple[list[Alert], Shared | None]:
    """Returns the alerts and the new state, or None for the state when nothing changed."""
    st = dict(state or {})
    if st.get("fp") != rule.fp:  # new or edited rule: keep the legs' quotes, start armed
        st = {"legs": st.get("legs", {}), "fp": rule.fp}
    legs = dict(st.get("legs", {}))
    which = "of" if ev.product_key == rule.of.key else "minus"
    current = legs.get(which)
    if current is not None and ev.as_of < current[1]:
        return [], None  # older than this leg's latest quote
    legs[which] = [ev.price, ev.as_of, ev.as_of_date]
    st["legs"] = legs
    if "of" not in legs or "minus" not in legs:
        return [], st
    value = legs["of"][0] - legs["minus"][0] * rule.factor
    previous = st.get("last")
    st["last"] = value
    may_fire = rule.active_at(ev.as_of) and not _cooling(rule, st, ev.as_of)
    if rule.kind.startswith("crosses"):
        hit = crossed(rule.kind, rule.threshold, previous, value) and may_fire
        events: list[AlertStatus] = ["firing"] if hit else []
    else:
        rs = RuleState.from_list(st["rs"]) if "rs" in st else RuleState()
        rs, events = step_value(rule.kind, rule.threshold, rule.rearm, rule.confirm, rule.resolve, rs, value,
                                may_fire)
        st["rs"] = rs.to_list()
    alerts = []
    for status in events:
        if status == "firing":
            st["fired_at"] = ev.as_of
        a = _base(rule, id=alert_id(rule.id, "spread", ev.id, status), kind="spread", condition=rule.kind,
                  event_id=ev.id, source=ev.source, at=ev.as_of, status=status, product=rule.of.name,
                  unit=rule.of.unit_text, price=value, previous=previous, threshold=rule.threshold,
                  as_of=ev.as_of_date)
        words = "no longer " if status == "resolved" else ""
        text = (f"{rule.of.name} minus {rule.minus.name}: {format_price(value)} {rule.of.unit} on {ev.as_of_date}, "
                f"{words}{rule.condition_text} ({rule.of.name} {format_price(legs['of'][0])} on {legs['of'][2]}, "
                f"{rule.minus.name} {format_price(legs['minus'][0])} on {legs['minus'][2]})")
        alerts.append(replace(a, text=render(replace(a, text=text), rule) if rule.message else text))
    return alerts, st


def price_part_holds(part: PriceRule, ev: PriceEvent, history: History, before: QuoteState | None) -> bool:
    value, _ = measure(part, ev, history)
    if value is None:
        return False
    if part.kind.startswith("crosses"):
        return crossed(part.kind, part.threshold, before.price if before else None, value)
    return step_value(part.kind, part.threshold, None, 1, False, RuleState(), value, True)[1] == ["firing"]


def evaluate_part(rule: AllOfRule, state: Shared | None, index: int, t: float, what: str,
                  ev: PriceEvent | NewsEvent) -> tuple[list[Alert], Shared | None]:
    """Part ``index`` of an all_of rule was true at ``t``."""
    st = dict(state or {})
    at = dict(st.get("at", {}))
    key = str(index)
    if key in at and at[key][0] >= t:
        return [], None
    at[key] = [t, what]
    st["at"] = at
    if len(at) < len(rule.parts):
        return [], st
    times = [v[0] for v in at.values()]
    fired_at = st.get("fired_at")
    if max(times) - min(times) > rule.within or (fired_at is not None and fired_at >= min(times)):
        return [], st
    if not rule.active_at(t) or _cooling(rule, st, t):
        return [], st
    st["fired_at"] = max(times)
    parts = "; ".join(at[str(i)][1] for i in range(len(rule.parts)))
    source = ev.source
    a = _base(rule, id=alert_id(rule.id, "all_of", *sorted(times)), kind="all_of", condition="all_of",
              event_id=ev.id, source=source, at=t,
              product=ev.product if isinstance(ev, PriceEvent) else None,
              price=ev.price if isinstance(ev, PriceEvent) else None,
              unit=ev.unit if isinstance(ev, PriceEvent) else None,
              as_of=ev.as_of_date if isinstance(ev, PriceEvent) else None,
              headline=ev.headline if isinstance(ev, NewsEvent) else None,
              url=ev.url if isinstance(ev, NewsEvent) else None)
    text = f"all of, within {format_duration(rule.within)}: {parts}"
    return [replace(a, text=render(replace(a, text=text), rule) if rule.message else text)], st


def describe_price_part(part: PriceRule, ev: PriceEvent) -> str:
    return f"{ev.product} {format_price(ev.price)} {ev.unit} on {ev.as_of_date} ({part.condition_text})"


def describe_news_part(ev: NewsEvent, tz: str) -> str:
    return f"news on {local_date(ev.published_at, tz)}: {ev.headline}"


def business_days_between(last: date, today: date, holidays: frozenset[date]) -> int:
    """Business days strictly after ``last`` and strictly before ``today``: the days a quote was due."""
    n = 0
    d = last + timedelta(days=1)
    end = min(today, last + timedelta(days=MAX_DAYS_BACK))
    while d < end:
        if d.weekday() < 5 and d not in holidays:
            n += 1
        d += timedelta(days=1)
    return n


def evaluate_stale(rule: StaleRule, last: QuoteState | None, now: float, tz: str, holidays: frozenset[date],
                   fired_for: float | None) -> Alert | None:
    """An alert when the product's feed is stale and this outage was not reported yet.
    ``last``: the newest quote of the product (any source); ``fired_for``: the quote time last reported."""
    if last is None or (fired_for is not None and fired_for >= last.as_of):
        return None  # never quoted (nothing to go stale), or this outage was reported already
    if rule.business_days is not None:
        today = datetime.fromtimestamp(now, ZoneInfo(tz)).date()
        missing = business_days_between(date.fromisoformat(last.as_of_date), today, holidays)
        if missing < rule.business_days:
            return None
    elif now - last.as_of < (rule.duration or 0):
        return None
    if not rule.active_at(now):
        return None
    text = (f"{rule.product.name}: no quote for {rule.after_text} (last {format_price(last.price)} "
            f"{rule.product.unit} on {last.as_of_date}); the feed may be broken")
    a = _base(rule, id=alert_id(rule.id, "stale", last.as_of), kind="stale", condition="stale",
              event_id=last.event_id, source="scheduler", at=now, product=rule.product.name,
              unit=rule.product.unit_text, price=last.price, as_of=last.as_of_date)
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)
