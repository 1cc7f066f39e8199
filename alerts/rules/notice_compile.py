"""Compiling a ``vendor_notice:`` rule (rules/README.md, "Vendor notices"): its products found in the catalog (an
unknown one is an error at its line), its kinds and vendors as given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.catalog import Catalog, Product
from alerts.rules.compiled import VendorNoticeRule, fingerprint
from alerts.rules.models import VendorNoticeCondition


def compile_vendor_notice(rule_id: str, cond: VendorNoticeCondition, catalog: Catalog,
                          problem: Callable[[tuple[Any, ...], str], None], common: dict[str, Any]) -> VendorNoticeRule:
    """The compiled rule; ``problem(path, message)`` reports each unknown product at its line."""
    products: list[Product] = []
    for j, name in enumerate(cond.products):
        product = catalog.find(name)
        if product is None:
            problem(("vendor_notice", "products", j), f"vendor_notice.products: unknown product {name!r}")
        elif product not in products:
            products.append(product)
    sources = frozenset(s.casefold() for s in cond.sources)
    fp = fingerprint(rule_id, "vendor_notice", tuple(p.key for p in products), tuple(sorted(cond.kinds)),
                     tuple(sorted(sources)))
    return VendorNoticeRule(fp=fp, products=tuple(products), kinds=frozenset(cond.kinds), sources=sources, **common)
