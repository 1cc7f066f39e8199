"""The text of an alert: the rule's ``message:`` template, or a default that explains what fired.

    Pr-Nd oxide 452,000 CNY/t on 2025-02-25, above 450,000 CNY/t; previous 447,000 on 2025-02-24
"""

from __future__ import annotations

from typing import Any

from alerts.model import Alert
from alerts.rules.compiled import CompiledRule, PriceRule
from alerts.units import format_price


def template_fields(a: Alert) -> dict[str, Any]:
    """What a ``message:`` template sees (``alerts.rules.templates.FIELDS``)."""
    return {
        "rule": a.rule_id, "description": a.description, "severity": a.severity, "owner": a.owner,
        "labels": a.labels or {}, "status": a.status, "condition": a.condition, "product": a.product,
        "unit": a.unit, "price": a.price, "previous": a.previous, "previous_as_of": a.previous_as_of,
        "threshold": a.threshold, "change": a.change, "change_pct": a.change_pct, "window": a.window,
        "as_of": a.as_of, "source": a.source, "headline": a.headline, "url": a.url,
    }


def default_text(a: Alert, rule: CompiledRule) -> str:
    if not isinstance(rule, PriceRule):
        return a.headline or ""
    assert a.price is not None
    quote = f"{a.product} {format_price(a.price)} {a.unit} on {a.as_of}"
    if a.status == "resolved":
        return f"{quote}: no longer {rule.condition_text}" + (
            f" ({rule.value_text(_measured(a))})" if rule.measure != "price" else "")
    if rule.measure == "price":
        text = f"{quote}, {rule.condition_text}"
        if a.previous is not None:
            text += f"; previous {format_price(a.previous)}" + (f" on {a.previous_as_of}" if a.previous_as_of else "")
        return text
    moved = rule.value_text(_measured(a))
    text = f"{quote}, {moved} over {a.window} ({rule.condition_text})"
    if a.previous is not None:
        text += f"; was {format_price(a.previous)} on {a.previous_as_of}"
    return text


def _measured(a: Alert) -> float:
    value = a.change_pct if a.measure == "change_pct" else a.change
    return value if value is not None else 0.0


def render(a: Alert, rule: CompiledRule) -> str:
    if rule.message is not None:
        try:
            return rule.message.render(template_fields(a), default=lambda: default_text(a, rule))
        except Exception as exc:  # a template that fails on these values must not lose the alert
            return f"{default_text(a, rule)} (message template failed: {type(exc).__name__}: {exc})"
    return default_text(a, rule)
