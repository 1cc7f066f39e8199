"""Compiling what names vendors (rules/README.md, "Several vendors"): a price condition's ``source:``, ``sources:``
or ``consensus:``, and the ``divergence:`` condition. Called by ``alerts.rules.compile``'s rule compiler, whose
``problem`` reports with the file and line."""

from __future__ import annotations

import math
from typing import Any, Protocol

from alerts.catalog import Product
from alerts.rules.compiled import DivergenceRule, fingerprint
from alerts.rules.models import PriceCondition, Rule
from alerts.rules.validation import label
from alerts.units import UnitError, parse_amount


def vendor_mark(product_key: str, source: str) -> str:
    """The watermark key of one vendor's quotes of a product (beside the product keys): ``prndoxide|smm``. The rules
    that read several vendors wait for each of theirs (``alerts.evaluate.vendors``)."""
    return f"{product_key}|{source.casefold()}"


#: (``source:``, ``sources:``/``consensus:`` vendors in order, "first" | "median" | "").
Choice = tuple[str | None, tuple[str, ...], str]


class _Compiler(Protocol):
    rule: Rule

    def problem(self, sub: tuple[Any, ...], msg: str, severity: str = "error") -> None: ...

    def _product(self, name: str, at: tuple[Any, ...]) -> Product | None: ...

    def _amount(self, value: Any, product: Product | None, where: tuple[Any, ...],
                percent: bool = False) -> float | None: ...


def _vendors(c: _Compiler, names: list[str], where: tuple[Any, ...]) -> tuple[str, ...] | None:
    vendors = tuple(dict.fromkeys(n.strip().casefold() for n in names))
    if len(vendors) < 2 or not all(vendors):
        c.problem(where, f"{label(where)}: name at least two different vendors (for one, write source: NAME)")
        return None
    return vendors


def source_choice(c: _Compiler, cond: PriceCondition, at: tuple[Any, ...]) -> Choice | None:
    """Which vendors a price condition reads; None (a problem reported) when it cannot be compiled."""
    if cond.source is not None:
        source = cond.source.strip().casefold()
        if not source:
            c.problem((*at, "source"), f"{label(at)}.source: a vendor's name, such as smm")
            return None
        return source, (), ""
    key = "sources" if cond.sources is not None else "consensus" if cond.consensus is not None else ""
    if not key:
        return None, (), ""
    if at != ("price",):
        c.problem((*at, key), f"{label(at)}.{key}: several vendors are not supported inside all_of; name one "
                  "with source:")
        return None
    vendors = _vendors(c, list(getattr(cond, key)), (*at, key))
    if vendors is None:
        return None
    return None, vendors, "first" if key == "sources" else "median"


def choice_parts(choice: Choice) -> tuple[Any, ...]:
    """What of a choice goes into a rule's fingerprint: nothing for the default (so its state is kept)."""
    source, vendors, combine = choice
    return (source, vendors, combine) if source or vendors else ()


def compile_divergence(c: _Compiler, common: dict[str, Any]) -> list[DivergenceRule]:
    cond = c.rule.divergence
    assert cond is not None
    at = ("divergence",)
    product = c._product(cond.product, (*at, "product"))
    vendors = _vendors(c, list(cond.sources), (*at, "sources"))
    where = (*at, "above")
    raw = cond.above
    percent = isinstance(raw, str) and raw.strip().endswith("%")
    threshold: float | None
    if percent:
        threshold = c._amount(raw, None, where, percent=True)
    else:
        try:
            _, unit = parse_amount(raw)
        except (UnitError, OverflowError):
            unit = None
            threshold = c._amount(raw, product, where)  # reports what is wrong with it
        else:
            threshold = None
            if unit is None:
                c.problem(where, f"{label(where)}: write a percentage (\"2%\") or an amount with its unit "
                          f"(\"20,000 CNY/t\"), not a bare number")
            elif product is not None and unit.currency != product.unit.currency:
                c.problem(where, f"{label(where)}: {raw!r} is in {unit.currency} but {product.name} is quoted in "
                          f"{product.unit}: write it in {product.unit.currency} or as a percentage")
            else:
                threshold = c._amount(raw, product, where)
    if threshold is not None and (not math.isfinite(threshold) or threshold <= 0):
        c.problem(where, f"{label(where)}: must be more than 0")
        threshold = None
    if product is None or vendors is None or threshold is None:
        return []
    rule = c.rule
    fp = fingerprint(rule.id, "divergence", product.key, vendors, percent, threshold)
    return [DivergenceRule(fp=fp, product=product, vendors=vendors, percent=percent, threshold=threshold,
                           state_key=fingerprint(rule.id, "divergence", product.key), **common)]
