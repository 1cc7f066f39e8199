"""``alerts rules explain ID``: why a rule did or did not fire, from its current state.

A pure function of the compiled rule and the stored state; the command reads the state from Redis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.durations import format_duration
from alerts.events import local_date
from alerts.model import ProductState, RuleState
from alerts.rules.compiled import CompiledRule, NewsRule, PriceRule, SpreadRule, StaleRule
from alerts.units import format_price


def explain(rules: tuple[CompiledRule, ...], states: Mapping[str, ProductState | None],
            news_fired: Mapping[str, float], tz: str, shared: Mapping[str, dict[str, Any]] | None = None) -> str:
    first = rules[0]
    out = [f"{first.id} ({first.path}:{first.line}), severity {first.severity}, notify "
           f"{', '.join(map(str, first.targets))}"]
    if first.description:
        out.append(f"  {first.description}")
    for rule in rules:
        if isinstance(rule, NewsRule):
            out.append("  news rule")
            last = news_fired.get(rule.fp)
            out.append(f"    last alert: {_when(last, tz) if last else 'never'}")
            if last and rule.cooldown:
                out.append(f"    cooldown {format_duration(rule.cooldown)}: until {_when(last + rule.cooldown, tz)}")
            continue
        if isinstance(rule, PriceRule):
            out.extend(_price(rule, states.get(rule.product.key), tz))
        elif isinstance(rule, SpreadRule):
            out.append(f"  spread {rule.of.name} minus {rule.minus.name}: {rule.condition_text}")
            out.extend(_shared((shared or {}).get(rule.state_key), tz))
        elif isinstance(rule, StaleRule):
            out.append(f"  {rule.product.name}: fires when no quote arrived for {rule.after_text}")
            st = states.get(rule.product.key)
            if st is not None and st.quotes:
                q = max(st.quotes.values(), key=lambda q: q.as_of)
                out.append(f"    last quote: {q.as_of_date}")
            out.extend(_shared((shared or {}).get(rule.fp), tz))
        else:
            out.append(f"  all of {len(rule.parts)} conditions within {format_duration(rule.within)}")
            out.extend(_shared((shared or {}).get(rule.state_key), tz))
    return "\n".join(out)


def _shared(state: dict[str, Any] | None, tz: str) -> list[str]:
    if not state:
        return ["    no state yet"]
    fired = state.get("fired_at")
    return [f"    state: {json.dumps({k: v for k, v in state.items() if k != 'fired_at'}, sort_keys=True)}",
            f"    last alert: {_when(fired, tz) if fired else 'never'}"]


def _when(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def _price(rule: PriceRule, st: ProductState | None, tz: str) -> list[str]:
    out = [f"  {rule.product.name}: {rule.condition_text}"
           + (f", re-arms at {rule.value_text(rule.rearm)}" if rule.rearm is not None else "")
           + (f", confirm {rule.confirm}" if rule.confirm > 1 else "")
           + (", resolves" if rule.resolve else "")
           + (f", cooldown {format_duration(rule.cooldown)}" if rule.cooldown else "")]
    if st is None or not st.quotes:
        out.append("    no quote seen yet: armed, fires on the first quote that meets the condition"
                   if rule.kind in ("above", "below", "abs_above") else "    no quote seen yet")
        return out
    last = st.last_fired.get(rule.fp)
    for source, q in sorted(st.quotes.items()):
        line = f"    {source}: last quote {format_price(q.price)} {rule.product.unit} on {q.as_of_date}; "
        if rule.stateful:
            rs = st.rules.get(f"{rule.fp}|{source}", RuleState())
            line += "armed" if rs.armed else "not armed (fired; waiting to re-arm)"
            if rule.confirm > 1:
                line += f", condition held on {rs.streak} of {rule.confirm} quotes"
            if rs.firing:
                line += ", firing"
        elif rule.kind.startswith("crosses"):
            side = "above" if q.price > rule.threshold else "at or below" if rule.kind == "crosses_above" else \
                ("below" if q.price < rule.threshold else "at or above")
            line += f"last quote is {side} the threshold"
        elif q.token and rule.fp not in q.seen:
            line += "armed (the rule is newer than this quote)"
        elif rule.fp in q.pending:
            line += "armed, held back by cooldown"
        else:
            armed = q.price <= rule.threshold if rule.kind == "above" else q.price >= rule.threshold
            line += "armed" if armed else "not armed (fired or already past; re-arms when the price comes back)"
        out.append(line)
    if last is not None:
        out.append(f"    last alert: {local_date(last, tz)}"
                   + (f"; cooldown until {_when(last + rule.cooldown, tz)}" if rule.cooldown else ""))
    return out
