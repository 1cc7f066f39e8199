"""Freshness per product and vendor, for ``alerts status`` (its ``vendors`` lines and ``--format json`` key): each
vendor's (source's) latest quote of each product, its time and age, and whether it is stale by the house's
threshold: the product's stale-feed rule (``stale:``), else ``default_days`` business days without a quote (the
days strictly between its date and today; Saturdays, Sundays and the rule files' ``holidays:`` not counted), the
threshold ``alerts status`` applies to the product as a whole. Read from the products' stored states (one hash
per product, the newest quote of each source), which ``alerts status`` reads already."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.durations import format_duration
from alerts.evaluate.composite import business_days_between, evaluate_stale
from alerts.model import ProductState
from alerts.rules.compiled import RuleSet


@dataclass(frozen=True)
class VendorQuote:
    product: str
    source: str
    price: float
    unit: str
    as_of: str  # the quote's date (ISO)
    as_of_time: float  # epoch seconds
    age_seconds: int
    stale: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def vendor_quotes(states: Mapping[str, ProductState | None], rules: RuleSet, now: float,
                  default_days: int) -> list[VendorQuote]:
    """Every (product, vendor) with a quote, by product then vendor."""
    stale_rules = {r.product.key: r for r in rules.stale}
    today = datetime.fromtimestamp(now, ZoneInfo(rules.timezone)).date()
    out = []
    for pkey, state in sorted(states.items()):
        product = rules.catalog.products.get(pkey)
        if state is None or product is None:
            continue
        rule = stale_rules.get(pkey)
        for source, q in sorted(state.quotes.items()):
            if rule is not None:
                stale = evaluate_stale(rule, q, now, rules.timezone, rules.holidays, None) is not None
            else:
                stale = business_days_between(date.fromisoformat(q.as_of_date), today, rules.holidays) >= default_days
            out.append(VendorQuote(product.name, source, q.price, product.unit_text, q.as_of_date, q.as_of,
                                   round(max(0.0, now - q.as_of)), stale))
    return out


def vendor_lines(quotes: list[VendorQuote]) -> list[tuple[str, str]]:
    """(level, text) per product: each vendor's latest quote date and age; ``warn`` when a vendor's series is
    stale (a rule naming that vendor gets nothing new from it), else ``ok``."""
    by_product: dict[str, list[VendorQuote]] = {}
    for q in quotes:
        by_product.setdefault(q.product, []).append(q)
    out = []
    for product, qs in by_product.items():
        parts = [f"{q.source} {q.as_of} ({format_duration(q.age_seconds)} old"
                 + (", STALE)" if q.stale else ")") for q in qs]
        out.append(("warn" if any(q.stale for q in qs) else "ok", f"{product} by vendor: {', '.join(parts)}"))
    return out


__all__ = ["VendorQuote", "vendor_lines", "vendor_quotes"]
