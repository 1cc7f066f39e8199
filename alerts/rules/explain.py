"""``alerts rules explain ID``: why a rule did or did not fire, from its current state.

A pure function of the compiled rule and the stored state; the command reads the state from Redis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from alerts.durations import format_duration, format_time
from alerts.events.times import local_date
from alerts.model import History, ProductState, RuleState
from alerts.rules.compiled import (
    AllOfRule,
    CompiledRule,
    DivergenceRule,
    NewsRule,
    PriceRule,
    SpreadRule,
    StaleRule,
    VendorNoticeRule,
)
from alerts.rules.explain_vendors import explain_divergence, explain_vendors
from alerts.rules.notice_explain import explain_vendor_notice
from alerts.rules.windows import last_at_or_before, reference
from alerts.units import format_price


def explain(rules: tuple[CompiledRule, ...], states: Mapping[str, ProductState | None],
            news_fired: Mapping[str, float], tz: str, shared: Mapping[str, dict[str, Any]] | None = None,
            watermarks: Mapping[str, float] | None = None,
            pending: Mapping[str, list[tuple[int, float, str]]] | None = None) -> str:
    """``shared``: states of spread, all_of and stale rules by key; ``watermarks``: the latest event time
    committed per product (and ``news``), to say what a spread or all_of waits for; ``pending``: per all_of,
    the parts that held but are not evaluated yet (part, time, what)."""
    marks = watermarks or {}
    first = rules[0]
    out = [f"{first.id} ({first.path}:{first.line}), severity {first.severity}, notify "
           f"{', '.join(map(str, first.targets))}"]
    if first.description:
        out.append(f"  {first.description}")
    seen = _Seen(states, news_fired, tz, shared or {}, marks, pending or {})
    for rule in rules:
        out.extend(EXPLAINERS[type(rule)](rule, seen))
    return "\n".join(out)


@dataclass(frozen=True)
class _Seen:
    """The stored state an explanation reads."""

    states: Mapping[str, ProductState | None]
    news_fired: Mapping[str, float]
    tz: str
    shared: Mapping[str, dict[str, Any]]
    marks: Mapping[str, float]
    pending: Mapping[str, list[tuple[int, float, str]]]


def _news(rule: NewsRule, seen: _Seen) -> list[str]:
    out = ["  news rule"]
    last = seen.news_fired.get(rule.fp)
    out.append(f"    last alert: {_when(last, seen.tz) if last else 'never'}")
    if last and rule.cooldown:
        out.append(f"    cooldown {format_duration(rule.cooldown)}: until {_when(last + rule.cooldown, seen.tz)}")
    return out


def _price_or_fx(rule: PriceRule, seen: _Seen) -> list[str]:
    if rule.fx is not None:
        return _fx(rule, seen.shared.get(rule.state_key), seen.marks, seen.tz)
    if rule.vendors:
        return explain_vendors(rule, seen.shared.get(rule.state_key), seen.marks, seen.tz)
    return _price(rule, seen.states.get(rule.product.key), seen.tz)


def _stale(rule: StaleRule, seen: _Seen) -> list[str]:
    out = [f"  {rule.product.name}: fires when no quote arrived for {rule.after_text}"]
    st = seen.states.get(rule.product.key)
    if st is not None and st.quotes:
        q = max(st.quotes.values(), key=lambda q: q.as_of)
        out.append(f"    last quote: {q.as_of_date}")
    told = (seen.shared.get(rule.fp) or {}).get("fired_for")
    out.append(f"    outage reported (last quote {local_date(told, seen.tz)})" if told else "    no outage reported")
    return out


#: How each kind of rule is explained; a test checks every compiled rule kind has an entry.
EXPLAINERS: dict[type, Callable[[Any, _Seen], list[str]]] = {
    NewsRule: _news,
    PriceRule: _price_or_fx,
    SpreadRule: lambda rule, seen: _spread(rule, seen.shared.get(rule.state_key), seen.marks, seen.tz),
    StaleRule: _stale,
    DivergenceRule: lambda rule, seen: explain_divergence(rule, seen.shared.get(rule.state_key), seen.marks, seen.tz),
    AllOfRule: lambda rule, seen: _all_of(rule, seen.shared.get(rule.state_key), seen.marks, seen.tz,
                                          seen.pending.get(rule.state_key, [])),
    VendorNoticeRule: lambda rule, seen: explain_vendor_notice(rule, seen.news_fired, seen.tz),
}


def _settings_text(rule: SpreadRule) -> str:
    return ((f", re-arms at {format_price(rule.rearm)} {rule.of.unit}" if rule.rearm is not None else "")
            + (f", confirm {rule.confirm}" if rule.confirm > 1 else "") + (", resolves" if rule.resolve else "")
            + (f", cooldown {format_duration(rule.cooldown)}" if rule.cooldown else ""))


def _evaluated(state: dict[str, Any], legs: list[tuple[str, str]], marks: Mapping[str, float], tz: str) -> list[str]:
    """Up to when the rule was evaluated in event time, and which leg it waits for."""
    cursor = state.get("cursor")
    if cursor is None or cursor == -math.inf:
        return ["    not evaluated yet"]
    out = [f"    evaluated in event time up to {local_date(cursor, tz)}"]
    ahead = max((marks[k] for k, _ in legs if k in marks), default=None)
    if ahead is not None and ahead > cursor:
        behind = [name for k, name in legs if marks.get(k, -math.inf) < ahead]
        if behind:
            out.append(f"    waiting for {' and '.join(behind)} to report {local_date(ahead, tz)} (at most "
                       "ALERTS_COMPOSITE_GRACE_SECONDS, then evaluated with what is known)")
    return out


def _last_alert(state: dict[str, Any], tz: str) -> str:
    sent = state.get("last_alert")  # what went out: an alert the circuit breaker held does not count
    return f"    last alert: {local_date(sent, tz) if sent else 'never'}"


def _spread(rule: SpreadRule, state: dict[str, Any] | None, marks: Mapping[str, float], tz: str) -> list[str]:
    out = [f"  spread {rule.of.name} minus {rule.minus.name}: {rule.condition_text}{_settings_text(rule)}"]
    if not state:
        return [*out, "    no quote of either leg yet"]
    legs = state.get("legs", {})
    for which, product in (("of", rule.of), ("minus", rule.minus)):
        leg = legs.get(which)
        out.append(f"    {product.name}: " + (f"{format_price(leg[2])} {product.unit} on {leg[3]} ({leg[4]})"
                                                if leg else "no quote yet"))
    if state.get("unevaluated"):  # legs stored (imported history), never evaluated by the event-time stage
        of, minus = legs.get("of"), legs.get("minus")
        if of and minus:
            out.append(f"    value from these: {format_price(of[2] - minus[2] * rule.factor)} {rule.of.unit}")
        return [*out, "    not evaluated yet: imported history (alerts import) primes the legs without firing; "
                      "the spread is evaluated from the first live quote of a leg on (alerts backtest replays the "
                      "history)", "    last alert: never"]
    value = state.get("last")
    if value is not None:
        line = f"    value: {format_price(value)} {rule.of.unit}; "
        if rule.kind.startswith("crosses"):
            side = "above" if value > rule.threshold else "at or below" if rule.kind == "crosses_above" else \
                ("below" if value < rule.threshold else "at or above")
            line += f"{side} the threshold"
        else:
            rs = RuleState.from_list(state["rs"]) if "rs" in state else RuleState()
            line += "armed" if rs.armed else "fired; waiting to re-arm"
            if rule.confirm > 1:
                line += f", condition held on {rs.streak} of {rule.confirm} quotes"
        out.append(line)
    out.extend(_evaluated(state, [(rule.of.key, rule.of.name), (rule.minus.key, rule.minus.name)], marks, tz))
    out.append(_last_alert(state, tz))
    return out


def _fx(rule: PriceRule, state: dict[str, Any] | None, marks: Mapping[str, float], tz: str) -> list[str]:
    assert rule.fx is not None
    pair = rule.fx.pair
    out = [f"  {rule.product.name}: {rule.condition_text}" + (f", re-arms at {rule.value_text(rule.rearm)}"
                                                               if rule.rearm is not None else "")
           + f" (quoted in {rule.product.unit}: each quote converted at the {pair} rate of its time)"]
    rate = (state or {}).get("rate")
    if rate is None:
        out.append(f"    no {pair} rate yet: the rule cannot fire until fx events for {pair} are published")
    else:
        used = rule.fx.inverse if rate[6] else pair
        out.append(f"    rate: {used} {rate[2]:g} on {rate[3]} ({rate[4]})")
    if not state:
        return [*out, "    not evaluated yet", "    last alert: never"]
    skipped = state.get("skipped")
    if skipped is not None and skipped[0] >= state.get("cursor", -math.inf) - 1e-6:
        why = f"no {pair} rate at or before it" if skipped[1] == "no rate" else \
            f"the {pair} rate was older than ALERTS_FX_MAX_AGE_DAYS"
        out.append(f"    the quote of {local_date(skipped[0], tz)} was not compared: {why}")
    value = state.get("last")
    if value is not None:
        line = f"    last value: {rule.value_text(value)}; "
        if rule.kind.startswith("crosses"):
            line += "above the threshold" if value > rule.threshold else "at or below the threshold"
        else:
            rs = RuleState.from_list(state["rs"]) if "rs" in state else RuleState()
            line += "armed" if rs.armed else "fired; waiting to re-arm"
        out.append(line)
    legs = [(rule.product.key, rule.product.name), (f"fx:{pair}", f"the {pair} rate")]
    if f"fx:{pair}" not in marks and f"fx:{rule.fx.inverse}" in marks:
        legs[1] = (f"fx:{rule.fx.inverse}", f"the {rule.fx.inverse} rate")
    out.extend(_evaluated(state, legs, marks, tz))
    out.append(_last_alert(state, tz))
    return out


def _all_of(rule: AllOfRule, state: dict[str, Any] | None, marks: Mapping[str, float], tz: str,
            pending: list[tuple[int, float, str]]) -> list[str]:
    out = [f"  all of {len(rule.parts)} conditions within {format_duration(rule.within)}"]
    held = (state or {}).get("at", {})
    for i, part in enumerate(rule.parts):
        what = part.condition_text if isinstance(part, PriceRule) else "news"
        name = f"{part.product.name} {what}" if isinstance(part, PriceRule) else "a matching article"
        last = held.get(str(i))
        waiting = max((p for p in pending if p[0] == i), key=lambda p: p[1], default=None)
        if waiting is not None and (last is None or waiting[1] > last[0]):
            line = (f"held on {local_date(waiting[1], tz)}: {waiting[2]} (not evaluated yet: the other "
                    "conditions' data has not reached that time)")
        else:
            line = f"last held on {local_date(last[0], tz)}: {last[1]}" if last else "has not held yet"
        out.append(f"    {i + 1}. {name}: {line}")
    if not state:
        return [*out, "    not evaluated yet", "    last alert: never"]
    if state:
        legs = [(p.product.key, p.product.name) for p in rule.parts if isinstance(p, PriceRule)]
        if any(isinstance(p, NewsRule) for p in rule.parts):
            legs.append(("news", "the news"))
        out.extend(_evaluated(state, legs, marks, tz))
        out.append(_last_alert(state, tz))
    return out


def _window_text(rule: PriceRule, history: History, t: float, tz: str) -> str:
    """What a change over a window compared the quote of ``t`` with, or why there was nothing to compare."""
    window = format_duration(rule.window)
    ref = reference(history, t, rule.window)
    if ref is None:
        start = local_date(t - rule.window, tz)
        older = last_at_or_before(history, t - rule.window)
        if older is None:
            return f"no quote near {window} before (none at or before {start})"
        days = round((t - older[0]) / 86400)
        return (f"no quote near {window} before (the last before {start} is of {local_date(older[0], tz)}, "
                f"{days} days before)")
    quote = next((p for tt, p in reversed(history) if tt == t), None)
    if quote is None:
        return f"compared with {format_price(ref[1])} on {local_date(ref[0], tz)}"
    value = (quote - ref[1]) / ref[1] * 100 if rule.measure == "change_pct" else quote - ref[1]
    return f"compared with {format_price(ref[1])} on {local_date(ref[0], tz)}: {rule.value_text(value)}"


def _when(ts: float, tz: str) -> str:
    return format_time(ts, tz, seconds=False)


def _price(rule: PriceRule, st: ProductState | None, tz: str) -> list[str]:
    out = [f"  {rule.product.name}: {rule.condition_text}"
           + (f", re-arms at {rule.value_text(rule.rearm)}" if rule.rearm is not None else "")
           + (f", confirm {rule.confirm}" if rule.confirm > 1 else "")
           + (", resolves" if rule.resolve else "")
           + (f", cooldown {format_duration(rule.cooldown)}" if rule.cooldown else "")
           + (f"; {rule.source}'s quotes only" if rule.source else "")]
    if st is None or not st.quotes:
        out.append("    no quote seen yet: armed, fires on the first quote that meets the condition"
                   if rule.kind in ("above", "below", "abs_above") else "    no quote seen yet")
        return out
    last = st.last_fired.get(rule.fp)
    for source, q in sorted(st.quotes.items()):
        if rule.source is not None and source.casefold() != rule.source:
            continue
        line = f"    {source}: last quote {format_price(q.price)} {rule.product.unit} on {q.as_of_date}; "
        if rule.stateful:
            rs = st.rules.get(f"{rule.fp}|{source}", RuleState())
            line += "armed" if rs.armed else "not armed (fired; waiting to re-arm)"
            if rule.confirm > 1:
                line += f", condition held on {rs.streak} of {rule.confirm} quotes"
            if rs.firing:
                line += ", firing"
            if rule.measure != "price":
                line += "; " + _window_text(rule, st.history.get(source, ()), q.as_of, tz)
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
