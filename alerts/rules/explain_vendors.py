"""``rules explain`` of the rules that read several vendors (``sources:``, ``consensus:``, ``divergence:``): what
each vendor quoted when the rule was last evaluated, which were fresh, what it used, and what it waits for. Pure,
like ``alerts.rules.explain``, which calls it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from alerts.durations import format_duration
from alerts.events.times import local_date
from alerts.model import RuleState
from alerts.rules.compile_vendors import vendor_mark
from alerts.rules.compiled import DivergenceRule, PriceRule
from alerts.units import format_price

#: How freshness is worded (``alerts.evaluate.vendors.FRESH_BUSINESS_DAYS``).
FRESH_TEXT = "fresh: quoted less than 3 business days before"


def _waiting(rule: PriceRule | DivergenceRule, state: dict[str, Any] | None, marks: Mapping[str, float],
             tz: str) -> list[str]:
    state = state or {}
    cursor = state.get("cursor", -math.inf)
    keys = [(vendor_mark(rule.product.key, v), v) for v in rule.vendors]
    ahead = max((marks[k] for k, _ in keys if k in marks), default=None)
    if ahead is None and not state:
        return ["    no quote of its vendors yet", "    last alert: never"]
    out = [f"    evaluated in event time up to {local_date(cursor, tz)}" if cursor != -math.inf
           else "    not evaluated yet"]
    if ahead is not None and ahead > cursor:
        behind = [v for k, v in keys if marks.get(k, -math.inf) < ahead]
        if behind:
            out.append(f"    waiting for {' and '.join(behind)} to report {local_date(ahead, tz)} (at most "
                       "ALERTS_COMPOSITE_GRACE_SECONDS, then evaluated with what is known)")
    sent = state.get("last_alert")
    out.append(f"    last alert: {local_date(sent, tz) if sent else 'never'}")
    return out


def explain_vendors(rule: PriceRule, state: dict[str, Any] | None, marks: Mapping[str, float],
                    tz: str) -> list[str]:
    how = (f"the first fresh quote of {', '.join(rule.vendors)}" if rule.combine == "first"
           else f"the median of the fresh quotes of {', '.join(rule.vendors)}")
    out = [f"  {rule.product.name}: {rule.condition_text}"
           + (f", re-arms at {rule.value_text(rule.rearm)}" if rule.rearm is not None else "")
           + (f", confirm {rule.confirm}" if rule.confirm > 1 else "")
           + (f", cooldown {format_duration(rule.cooldown)}" if rule.cooldown else "")
           + f"; on {how} ({FRESH_TEXT})"]
    if not state:
        return [*out, *_waiting(rule, state, marks, tz)]
    seen = state.get("seen")
    if seen:
        quotes = "; ".join(f"{q[0]} {format_price(q[1])} on {q[2]}" if len(q) > 1 else f"{q[0]} no quote"
                           for q in seen["quotes"])
        out.append(f"    on {seen['day']}: {quotes}")
        if "used" not in seen:
            out.append(f"    {seen.get('why', 'no value')}: nothing compared")
        else:
            used = ", ".join(seen["used"])
            line = f"    used {used}: {format_price(seen['value'])} {rule.product.unit}"
            if "why" in seen:
                line += f"; {seen['why']}: nothing compared"
            elif "measured" in seen:
                line += f"; {rule.value_text(seen['measured'])} over {format_duration(rule.window)}"
            out.append(line)
    if "rs" in state and "used" in (seen or {}):
        rs = RuleState.from_list(state["rs"])
        out.append("    armed" if rs.armed else "    fired; waiting to re-arm")
    return [*out, *_waiting(rule, state, marks, tz)]


def explain_divergence(rule: DivergenceRule, state: dict[str, Any] | None, marks: Mapping[str, float],
                       tz: str) -> list[str]:
    out = [f"  {rule.product.name}: {rule.condition_text} (at most once a day)"]
    if not state:
        return [*out, *_waiting(rule, state, marks, tz)]
    seen = state.get("seen")
    if seen:
        quotes = ", ".join(f"{v} {format_price(p)}" for v, p in seen["quotes"]) or "none"
        line = f"    on {seen['day']}: quotes of that day: {quotes}"
        if "gap" in seen:
            gap = f"{seen['gap']:.1f}%" if rule.percent else \
                f"{format_price(round(seen['gap'], 2))} {rule.product.unit}"
            line += f"; {gap} apart"
        else:
            line += " (two are needed to compare)"
        out.append(line)
    if state.get("fired_day"):
        out.append(f"    last told for {state['fired_day']}")
    return [*out, *_waiting(rule, state, marks, tz)]
