"""``divergence:`` rules (rules/README.md, "Several vendors"): two or more vendors' quotes of one product for the
same day differ by more than a percentage (the highest above the lowest) or an amount. Evaluated in event time
over the product's leg points, like ``alerts.evaluate.vendors``: at each time one of the vendors quoted, the
vendors' latest quotes of that same day are compared; a product and day fires at most once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from typing import Any

from msgspec.structs import replace

from alerts.evaluate.eventtime import LegPoint, State, start
from alerts.evaluate.vendors import advance_vendors, corrected, leg, take, vendor_rules
from alerts.model import Alert, alert_id
from alerts.rules.compiled import DivergenceRule, PriceRule, RuleSet
from alerts.rules.render import render
from alerts.units import format_price


def advance_vendor_rule(rule: PriceRule | DivergenceRule, state: State, points: Iterable[LegPoint], until: float,
                        holidays: frozenset[date], tz: str) -> tuple[list[Alert], State]:
    """Advance a rule that reads several vendors (``alerts.evaluate.vendors.vendor_rules``) up to ``until``."""
    if isinstance(rule, DivergenceRule):
        return advance_divergence(rule, state, points, until)
    return advance_vendors(rule, state, points, until, holidays, tz)


def compose_vendors(rules: RuleSet, legs: Iterable[tuple[str, LegPoint]]) -> list[Alert]:
    """Every rule of ``rules`` that reads several vendors, over these leg points from the start, with no horizon:
    what a backtest reports (live, ``workers.roles.composer`` advances each rule as data comes)."""
    todo = vendor_rules(rules)
    if not todo:
        return []
    points: dict[str, list[LegPoint]] = {}
    for product_key, point in legs:
        points.setdefault(product_key, []).append(point)
    alerts: list[Alert] = []
    for rule in todo:
        alerts.extend(advance_vendor_rule(rule, start(-math.inf), points.get(rule.product.key, []), math.inf,
                                          rules.holidays, rules.timezone)[0])
    return alerts


def gap(prices: list[float], percent: bool) -> float:
    """How far apart the prices are: the highest above the lowest, in percent of the lowest, or as an amount."""
    hi, lo = max(prices), min(prices)
    return (hi - lo) / lo * 100 if percent else hi - lo


def advance_divergence(rule: DivergenceRule, state: State, points: Iterable[LegPoint],
                       until: float) -> tuple[list[Alert], State]:
    """Compare the vendors' same-day quotes at every time after the state's cursor and up to ``until`` at which one
    of them quoted. Returns the alerts and the new state."""
    st = dict(state)
    if st.get("fp") != rule.fp:  # new or edited rule: keep what the vendors quoted and the day last told
        st = {"fp": rule.fp, "cursor": st.get("cursor", -math.inf), "latest": st.get("latest", {}),
              **({"fired_day": st["fired_day"]} if "fired_day" in st else {})}
    cursor = st["cursor"]
    latest, groups, corrections = take(rule, st, points, until)
    alerts: list[Alert] = []
    for group in groups:
        for p in group:
            latest[p.source.casefold()] = leg(p)
        t, day = group[0].t, group[0].date
        _judge(rule, st, latest, group, t, day, alerts)
        corrected(latest, corrections, t)
    st["latest"] = latest
    st["cursor"] = until if math.isfinite(until) else max(cursor, groups[-1][0].t if groups else cursor)
    return alerts, st


def _judge(rule: DivergenceRule, st: State, latest: dict[str, list[Any]], group: list[LegPoint], t: float, day: str,
           alerts: list[Alert]) -> None:
    """Compare the vendors' quotes of ``day`` known at ``t`` (``group``: the points at ``t``); once a day at most."""
    same = [(v, q) for v in rule.vendors if (q := latest.get(v)) is not None and q[3] == day]
    if len(same) < 2:
        st["seen"] = {"t": t, "day": day, "quotes": [[v, q[2]] for v, q in same]}
        return
    measured = gap([q[2] for _, q in same], rule.percent)
    st["seen"] = {"t": t, "day": day, "quotes": [[v, q[2]] for v, q in same], "gap": measured}
    if measured <= rule.threshold or st.get("fired_day") == day or not rule.active_at(t):
        return
    fired_at = st.get("fired_at")
    if rule.cooldown and fired_at is not None and t - fired_at < rule.cooldown:
        return
    st["fired_day"], st["fired_at"] = day, t
    alerts.append(_alert(rule, t, day, group[-1], same))


def _alert(rule: DivergenceRule, t: float, day: str, moved: LegPoint, same: list[tuple[str, list[Any]]]) -> Alert:
    prices = [q[2] for _, q in same]
    hi, lo = max(prices), min(prices)
    pct, amount = gap(prices, True), gap(prices, False)
    ranked = sorted(same, key=lambda x: -x[1][2])
    numbers = ", ".join(f"{v} {format_price(q[2])}" for v, q in ranked)
    limit = f"{format_price(rule.threshold)}" + ("%" if rule.percent else f" {rule.product.unit}")
    text = (f"{rule.product.name} on {day}: {numbers} {rule.product.unit} differ by {pct:.1f}% "
            f"({format_price(round(amount, 2))} {rule.product.unit}), more than {limit}")
    a = Alert(id=alert_id(rule.id, "divergence", rule.product.key, day), rule_id=rule.id, kind="divergence",
              condition="divergence", severity=rule.severity, targets=rule.target_names, description=rule.description,
              event_id=moved.event_id, source=", ".join(v for v, _ in ranked), at=t, product=rule.product.name,
              unit=rule.product.unit_text, price=hi, previous=lo, threshold=rule.threshold,
              measure="divergence_pct" if rule.percent else "divergence", change=amount, change_pct=pct, as_of=day,
              owner=rule.owner, labels=rule.labels_dict)
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)
