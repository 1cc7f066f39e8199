"""Parts of conditions that span more than one product, pure like ``alerts.evaluate.engine``:

- whether an ``all_of`` price part holds on a quote (judged on the product's own quotes, in order),
  and how a part is described in the alert; the rule itself is evaluated in event time
  (``alerts.evaluate.eventtime``), like spreads;
- ``stale``: no quote of a product for N business days (weekends and ``holidays:`` do not count) or
  for a duration; fires once per outage. It needs a clock, not an event: the scheduler runs it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from msgspec.structs import replace

from alerts.evaluate.engine import crossed, holds, measure
from alerts.events.times import local_date
from alerts.events.wire import NewsEvent, PriceEvent
from alerts.model import Alert, History, QuoteState, alert_id
from alerts.rules.compiled import AllOfRule, PriceRule, SpreadRule, StaleRule
from alerts.rules.render import render
from alerts.units import format_price

#: Business days looked at, at most, when counting how long a feed has been silent.
MAX_DAYS_BACK = 3660


def _base(rule: SpreadRule | AllOfRule | StaleRule, **kw: Any) -> Alert:
    return Alert(rule_id=rule.id, severity=rule.severity, targets=rule.target_names,
                 description=rule.description, owner=rule.owner, labels=rule.labels_dict, **kw)


def price_part_holds(part: PriceRule, ev: PriceEvent, history: History, before: QuoteState | None) -> bool:
    value, _ = measure(part, ev, history)
    if value is None:
        return False
    if part.kind.startswith("crosses"):
        return crossed(part.kind, part.threshold, before.price if before else None, value)
    return holds(part.kind, part.threshold, value)


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


def _age(day: date, today: date) -> str:
    """How long ago ``day`` was, in words: "today", "3 days ago", "20 months ago", "2 years ago"."""
    days = (today - day).days
    if days <= 0:
        return "today"
    if days < 60:
        return f"{days} day{'s' if days != 1 else ''} ago"
    months = (today.year - day.year) * 12 + today.month - day.month - (today.day < day.day)
    if months < 24:
        return f"{months} months ago"
    return f"{months // 12} years ago"


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
    age = _age(date.fromisoformat(last.as_of_date), datetime.fromtimestamp(now, ZoneInfo(tz)).date())
    text = (f"{rule.product.name}: last quote {last.as_of_date}, {age} ({format_price(last.price)} "
            f"{rule.product.unit}); stale after {rule.after_text}; the feed may be broken")
    a = _base(rule, id=alert_id(rule.id, "stale", last.as_of), kind="stale", condition="stale",
              event_id=last.event_id, source="scheduler", at=now, product=rule.product.name,
              unit=rule.product.unit_text, price=last.price, as_of=last.as_of_date)
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)
