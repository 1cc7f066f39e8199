"""Warnings about rules that can never (or will rarely) fire, for ``alerts rules check``.

Some need the price history (``PriceStats``, read from the stored quotes by ``alerts rules check``):
a threshold far outside any price ever seen usually means a unit slip (450 for 450,000 CNY/t); a
change window shorter than the time between two quotes rarely has a quote to compare with. Without
history of a product, its threshold is compared with the catalog's typical range of its price
(``Product.typical``) and quotes are taken to be daily, as rare-earth assessments are. When a
factor of 1,000 (per kg against per tonne) or 10,000 (万元/吨, the Chinese reports' unit) brings the
threshold among the usual prices, the warning says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerts.catalog import Product
from alerts.durations import format_duration
from alerts.errors import Problem
from alerts.rules.compiled import CompiledRule, PriceRule, RuleSet, StaleRule
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
    latest: float | None = None  # time of the newest quote (or rate), epoch seconds


def warnings(rules: RuleSet, stats: Mapping[str, PriceStats], fx_max_age: float | None = None,
             now: float | None = None) -> list[Problem]:
    """``stats``: per product key (and per exchange-rate series ``fx:USD/CNY``) what the stored history holds.
    With ``fx_max_age`` (ALERTS_FX_MAX_AGE_DAYS, in seconds) and ``now``: a rate series older than that warns."""
    out: list[Problem] = []
    for compiled in rules.by_id.values():
        for rule in compiled:
            for r in rule.price_parts:
                out.extend(_fx(r, stats, fx_max_age, now) if r.fx is not None else
                           _price(r, stats.get(r.product.key), rule))
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
        low, high = st.low / FAR, st.high * FAR
        if not low <= r.threshold <= high:
            out.append(_warn(owner, f"threshold {format_price(r.threshold)} {r.product.unit} is far outside any "
                             f"price seen for {r.product.name} ({format_price(st.low)} to {format_price(st.high)}): "
                             "check the number and the unit" + _slip(r.threshold, r.product, low, high)))
    elif r.measure == "price" and r.product.typical is not None:
        low, high = r.product.typical
        if not low <= r.threshold <= high:
            out.append(_warn(owner, f"threshold {format_price(r.threshold)} {r.product.unit} is far outside the "
                             f"typical price of {r.product.name} ({format_price(low)} to {format_price(high)} "
                             f"{r.product.unit}; no stored price history to compare with): check the number and "
                             "the unit" + _slip(r.threshold, r.product, low, high)))
    if r.window:
        interval = st.interval if st is not None and st.quotes > 1 else DAILY
        if r.window < interval:
            out.append(_warn(owner, f"window {format_duration(r.window)} is shorter than the usual time between "
                             f"quotes of {r.product.name} ({format_duration(interval)}): there is rarely a quote "
                             "to compare with"))
    return out


def _slip(threshold: float, product: Product, low: float, high: float) -> str:
    """The unit slip that brings ``threshold`` between ``low`` and ``high``, said plainly; "" if none."""
    unit, cny = product.unit, product.unit.currency == "CNY"
    number = format_price(threshold)
    if unit.mass == "t":
        if low <= threshold * 1000 <= high:
            return (f"; 1,000 times too low: a price per kg? {number} {unit.currency}/kg is "
                    f"{format_price(threshold * 1000)} {unit} (write {threshold * 1000:.10g} or "
                    f"\"{number} {unit.currency}/kg\")")
        if cny and low <= threshold * 10_000 <= high:
            return (f"; 10,000 times too low: a price in 万元/吨? {number} 万元/吨 is "
                    f"{format_price(threshold * 10_000)} {unit} (write {threshold * 10_000:.10g})")
    if unit.mass == "kg":
        if low <= threshold / 1000 <= high:
            return (f"; 1,000 times too high: a price per tonne? {number} {unit.currency}/t is "
                    f"{format_price(threshold / 1000)} {unit} (write {threshold / 1000:.10g} or "
                    f"\"{number} {unit.currency}/t\")")
        if cny and low <= threshold * 10 <= high:
            return (f"; 10 times too low: a price in 万元/吨? {number} 万元/吨 is "
                    f"{format_price(threshold * 10)} {unit} (write {threshold * 10:.10g})")
    return ""


def _fx(rule: PriceRule, stats: Mapping[str, PriceStats], max_age: float | None,
        now: float | None) -> list[Problem]:
    """A threshold in another currency fires only with a recent enough rate of its pair (or the inverse)."""
    assert rule.fx is not None
    pair = rule.fx.pair
    found = [st for st in (stats.get(f"fx:{pair}"), stats.get(f"fx:{rule.fx.inverse}")) if st is not None]
    latest = max((st.latest for st in found if st.latest is not None), default=None)
    if latest is None:
        msg = (f"{rule.product.name} is quoted in {rule.product.unit} and the threshold is in {rule.fx.unit}: no "
               f"{pair} rate is stored, so this rule cannot fire until fx events for {pair} are published "
               f'({{"type": "fx", "pair": "{pair}", "rate": ..., "as_of": ...}})')
        return [Problem(rule.path, rule.line, rule.id, msg, "warning")]
    if now is not None and max_age is not None and now - latest > max_age:
        msg = (f"the latest {pair} rate stored is older than ALERTS_FX_MAX_AGE_DAYS ({max_age / 86400:g} days): "
               "quotes are not compared until a newer rate is published")
        return [Problem(rule.path, rule.line, rule.id, msg, "warning")]
    return []
