"""Warnings about rules that can never (or will rarely) fire, for ``alerts rules check``.

Some need the price history (``PriceStats``, read from Redis when one is reachable): a threshold far
outside any price ever seen usually means a unit slip (450 for 450,000 CNY/t); a change window
shorter than the time between two quotes rarely has a quote to compare with. Without history,
quotes are taken to be daily, as rare-earth assessments are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.durations import format_duration
from alerts.errors import Problem
from alerts.rules.compiled import AllOfRule, CompiledRule, PriceRule, RuleSet, StaleRule
from alerts.units import format_price

#: How far outside the seen range a threshold may be before it is called out (a factor).
FAR = 3.0
#: Assumed time between two quotes without history: daily assessments.
DAILY = 86400.0


@dataclass(frozen=True)
class PriceStats:
    low: float
    high: float
    interval: float  # median seconds between two quotes
    quotes: int


def warnings(rules: RuleSet, stats: Mapping[str, PriceStats]) -> list[Problem]:
    out: list[Problem] = []
    for compiled in rules.by_id.values():
        for rule in compiled:
            parts = rule.parts if isinstance(rule, AllOfRule) else (rule,)
            for r in parts:
                if isinstance(r, PriceRule):
                    out.extend(_price(r, stats.get(r.product.key), rule))
            if isinstance(rule, StaleRule) and rule.duration is not None:
                st = stats.get(rule.product.key)
                interval = st.interval if st else DAILY
                if rule.duration < interval:
                    out.append(_warn(rule, f"stale.after {format_duration(rule.duration)} is shorter than the usual "
                                     f"time between quotes of {rule.product.name} ({format_duration(interval)}): "
                                     "it would fire between every two quotes"))
    return out


def _warn(rule: CompiledRule, message: str) -> Problem:
    return Problem(rule.path, rule.line, rule.id, message, "warning")


def _price(r: PriceRule, st: PriceStats | None, owner: CompiledRule) -> list[Problem]:
    out = []
    if r.measure == "price" and st is not None and st.quotes:
        if r.threshold > st.high * FAR or r.threshold < st.low / FAR:
            out.append(_warn(owner, f"threshold {format_price(r.threshold)} {r.product.unit} is far outside any "
                             f"price seen for {r.product.name} ({format_price(st.low)} to {format_price(st.high)}): "
                             "check the number and the unit"))
    if r.window:
        interval = st.interval if st is not None and st.quotes > 1 else DAILY
        if r.window < interval:
            out.append(_warn(owner, f"window {format_duration(r.window)} is shorter than the usual time between "
                             f"quotes of {r.product.name} ({format_duration(interval)}): there is rarely a quote "
                             "to compare with"))
    return out
