"""Price rules that combine several vendors' quotes of one product (rules/README.md, "Several vendors"), evaluated
in event time like spreads (``alerts.evaluate.eventtime``), so that a live run and a backtest agree whatever order
the vendors' feeds arrive in:

- ``sources: [smm, fastmarkets]``: at each time one of them quoted, the price of the first vendor whose latest
  quote at or before that time is **fresh** (``fresh``), else the next one's; none fresh: no value;
- ``consensus: [smm, fastmarkets, argus]``: the median of the fresh latest quotes of those vendors.

The value goes through the same arming as any price rule (``alerts.evaluate.engine.step_value``); a change over a
window compares it with the rule's own value at or before the window's start, if that is near it
(``alerts.rules.windows.reference``). The inputs are the product's leg points (every vendor's quotes, kept for
the event-time stage) and the watermark of each vendor (``alerts.rules.compile_vendors.vendor_mark``); the
divergence rule (``alerts.evaluate.divergence``) reads the same.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from datetime import date
from typing import Any

from msgspec.structs import replace

from alerts.durations import format_duration
from alerts.evaluate.composite import business_days_between
from alerts.evaluate.engine import cooling, crossed, step_value
from alerts.evaluate.eventtime import LegPoint, State, split_corrections
from alerts.events.times import local_date
from alerts.model import Alert, AlertStatus, RuleState, alert_id
from alerts.rules.compile_vendors import vendor_mark as vendor_mark  # where the stage finds it
from alerts.rules.compiled import DivergenceRule, PriceRule, RuleSet
from alerts.rules.render import default_text, render
from alerts.rules.windows import reference, window_tolerance
from alerts.units import format_price

#: A vendor's latest quote is fresh while fewer than this many business days (weekends and ``holidays:`` not
#: counted) passed between its date and the day evaluated: the day a ``stale: {after: 3 business days}`` rule fires,
#: it is stale. A quote of Monday is fresh on Thursday, stale on Friday.
FRESH_BUSINESS_DAYS = 3
#: Seconds of leg points read before a rule's cursor, to know each vendor's latest quote (longer than any
#: freshness: 3 business days and a long holiday).
LOOKBACK = 21 * 86400.0


def fresh(quote_day: str, day: str, holidays: frozenset[date]) -> bool:
    """Whether a quote of ``quote_day`` is fresh on ``day`` (``FRESH_BUSINESS_DAYS``)."""
    return business_days_between(date.fromisoformat(quote_day), date.fromisoformat(day), holidays) \
        < FRESH_BUSINESS_DAYS


def vendor_rules(rules: RuleSet) -> list[PriceRule | DivergenceRule]:
    """The rules of a rule set that read several vendors of a product (event time), in rule id order."""
    return [r for rid in sorted(rules.by_id) for r in rules.by_id[rid]
            if isinstance(r, DivergenceRule) or (isinstance(r, PriceRule) and r.vendors)]


def leg(p: LegPoint) -> list[Any]:
    """A vendor's latest quote as a rule's state keeps it: [t, seq, price, date, source, event_id]."""
    return [p.t, p.seq, p.price, p.date, p.source, p.event_id]


def take(rule: PriceRule | DivergenceRule, st: State, points: Iterable[LegPoint], until: float) \
        -> tuple[dict[str, list[Any]], list[list[LegPoint]], dict[float, list[LegPoint]]]:
    """The vendors' latest quotes known at the rule's cursor (updated with points at or before it that came late),
    the rule's vendors' points after the cursor and up to ``until``, grouped by time, in time order, and by time the
    vendors' corrections among them (a second point of a vendor at one time: it counts from after that time)."""
    cursor = st["cursor"]
    latest: dict[str, list[Any]] = dict(st.get("latest", {}))
    todo: list[LegPoint] = []
    for p in points:
        v = p.source.casefold()
        if v not in rule.vendors:
            continue
        if p.t <= cursor:
            known = latest.get(v)
            if known is None or (known[0], known[1]) < (p.t, p.seq):
                latest[v] = leg(p)
        elif p.t <= until:
            todo.append(p)
    todo.sort(key=lambda p: (p.t, p.seq))
    todo, later = split_corrections(todo, lambda p: (p.source, p.t))
    groups: list[list[LegPoint]] = []
    for p in todo:
        if groups and groups[-1][0].t == p.t:
            groups[-1].append(p)
        else:
            groups.append([p])
    corrections: dict[float, list[LegPoint]] = {}
    for p in later:
        corrections.setdefault(p.t, []).append(p)
    return latest, groups, corrections


def corrected(latest: dict[str, list[Any]], corrections: dict[float, list[LegPoint]], t: float) -> None:
    """After the time ``t`` was evaluated: the vendors' corrections of their quotes at it become their latest."""
    for p in corrections.get(t, ()):
        latest[p.source.casefold()] = leg(p)


def advance_vendors(rule: PriceRule, state: State, points: Iterable[LegPoint], until: float,
                    holidays: frozenset[date], tz: str) -> tuple[list[Alert], State]:
    """Evaluate ``rule`` at every time after the state's cursor and up to ``until`` at which one of its vendors
    quoted, with each vendor's latest quote at or before that time. Returns the alerts and the new state."""
    st = dict(state)
    if st.get("fp") != rule.fp:  # new or edited rule: keep what the vendors quoted, start armed
        st = {"fp": rule.fp, "cursor": st.get("cursor", -math.inf), "latest": st.get("latest", {})}
    cursor = st["cursor"]
    latest, groups, corrections = take(rule, st, points, until)
    run = _VendorRun(rule, st, holidays, tz)
    alerts: list[Alert] = []
    for group in groups:
        for p in group:
            latest[p.source.casefold()] = leg(p)
        run.at(group[0].t, group[0].date, group[-1], latest, alerts)
        corrected(latest, corrections, group[0].t)
    run.save(st)
    st["latest"] = latest
    st["cursor"] = until if math.isfinite(until) else max(cursor, groups[-1][0].t if groups else cursor)
    return alerts, st


class _VendorRun:
    """A vendor rule's state while it advances, kept in locals and saved once at the end."""

    def __init__(self, rule: PriceRule, st: State, holidays: frozenset[date], tz: str):
        self.rule, self.holidays, self.tz = rule, holidays, tz
        # the last value (as every rule with state of its own keeps it: silences read it) and its [t, day]
        last, at = st.get("last"), st.get("last_at")
        self.last: list[Any] | None = [at[0], last, at[1]] if last is not None and at else None
        self.rs = RuleState.from_list(st["rs"]) if "rs" in st else RuleState()
        self.fired_at: float | None = st.get("fired_at")
        self.series: list[tuple[float, float]] = [(a, b) for a, b in st.get("series", [])]
        self.seen: dict[str, Any] | None = st.get("seen")

    def save(self, st: State) -> None:
        if self.last is not None:
            st["last"], st["last_at"] = self.last[1], [self.last[0], self.last[2]]
        for key, value in (("fired_at", self.fired_at), ("seen", self.seen)):
            if value is not None:
                st[key] = value
        if not self.rule.kind.startswith("crosses"):
            st["rs"] = self.rs.to_list()
        if self.rule.measure != "price":
            st["series"] = [list(x) for x in self.series]

    def at(self, t: float, day: str, moved: LegPoint, latest: dict[str, list[Any]], out: list[Alert]) -> None:
        rule = self.rule
        quotes = [(v, latest.get(v)) for v in rule.vendors]
        usable = [(v, q) for v, q in quotes if q is not None and fresh(q[3], day, self.holidays)]
        self.seen = {"t": t, "day": day, "quotes": [[v, q[2], q[3]] if q else [v] for v, q in quotes]}
        if not usable:
            self.seen["why"] = "no vendor's latest quote is fresh"
            return
        used = usable[:1] if rule.combine == "first" else usable
        value = used[0][1][2] if rule.combine == "first" else statistics.median(q[2] for _, q in usable)
        self.seen["used"] = [v for v, _ in used]
        self.seen["value"] = value
        measured, ref = value, None
        if rule.measure != "price":
            self.series = _with_value(self.series, t, value, rule.window + window_tolerance(rule.window))
            ref = reference(tuple(self.series), t, rule.window)
            if ref is None:
                self.seen["why"] = f"no value near {format_duration(rule.window)} before"
                return
            change = value - ref[1]
            measured = change / ref[1] * 100 if rule.measure == "change_pct" else change
            self.seen["measured"] = measured
        previous, self.last = self.last, [t, measured, day]
        may_fire = rule.active_at(t) and not cooling(rule.cooldown, self.fired_at, t)
        events: list[AlertStatus]
        if rule.kind.startswith("crosses"):
            before = previous[1] if previous is not None else None
            events = ["firing"] if may_fire and crossed(rule.kind, rule.threshold, before, measured) else []
        else:
            self.rs, events = step_value(rule.kind, rule.threshold, rule.rearm, rule.confirm, rule.resolve, self.rs,
                                         measured, may_fire)
        for status in events:
            if status == "firing":
                self.fired_at = t
            out.append(_alert(rule, status, t, day, moved, value, measured, ref, previous, quotes, used,
                              self.holidays, self.tz))


def _with_value(series: list[tuple[float, float]], t: float, value: float, keep: float) -> list[tuple[float, float]]:
    """The rule's values with one more (one per time: a later one at the same time replaces it), without those no
    window needs: older than ``t - keep``, except the last one before that."""
    items = [x for x in series if x[0] != t]
    items.append((t, value))
    items.sort()
    boundary = t - keep
    first = next((i for i, x in enumerate(items) if x[0] >= boundary), len(items))
    return items[max(0, first - 1):]


def quotes_text(quotes: list[tuple[str, list[Any] | None]], used: list[str], day: str,
                holidays: frozenset[date]) -> str:
    """Each vendor's number, in the rule's order: ``smm 6,475 (2025-03-11), fastmarkets stale (2025-03-03)``."""
    parts = []
    for v, q in quotes:
        if q is None:
            parts.append(f"{v} no quote")
        elif v in used or fresh(q[3], day, holidays):
            parts.append(f"{v} {format_price(q[2])}" + (f" ({q[3]})" if q[3] != day else ""))
        else:
            parts.append(f"{v} stale ({format_price(q[2])} on {q[3]})")
    return ", ".join(parts)


def _alert(rule: PriceRule, status: AlertStatus, t: float, day: str, moved: LegPoint, value: float,
           measured: float, ref: tuple[float, float] | None, previous: list[Any] | None,
           quotes: list[tuple[str, list[Any] | None]], used: list[tuple[str, list[Any]]],
           holidays: frozenset[date], tz: str) -> Alert:
    names = [v for v, _ in used]
    change = measured if rule.measure == "change" else (value - ref[1] if ref else None)
    pct = measured if rule.measure == "change_pct" else ((value - ref[1]) / ref[1] * 100 if ref else None)
    prev_value: float | None = None
    prev_day: str | None = None
    if ref is not None:
        prev_value, prev_day = ref[1], local_date(ref[0], tz)
    elif previous is not None and rule.measure == "price":
        prev_value, prev_day = previous[1], previous[2]
    source = names[0] if rule.combine == "first" else "consensus"
    a = Alert(id=alert_id(rule.id, rule.product.key, "vendors", t, *sorted(q[5] for _, q in used), status),
              rule_id=rule.id, kind="price", condition=rule.kind, severity=rule.severity, targets=rule.target_names,
              description=rule.description, event_id=moved.event_id, source=source, at=t, status=status,
              product=rule.product.name, unit=rule.product.unit_text, price=value, previous=prev_value,
              previous_as_of=prev_day, threshold=rule.threshold, measure=rule.measure, change=change,
              change_pct=pct, window=format_duration(rule.window) if rule.window else None, as_of=day,
              owner=rule.owner, labels=rule.labels_dict)
    how = f"from {names[0]}" if rule.combine == "first" else "consensus: the median"
    note = f" [{how}; {quotes_text(quotes, names, day, holidays)}]"
    text = default_text(a, rule) + note  # a template says what it says: ``source`` names the vendor
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)
