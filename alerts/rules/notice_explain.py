"""How ``alerts rules explain`` words a ``vendor_notice`` rule: which notices it fires on, and its last alert."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.durations import format_duration, format_time
from alerts.rules.compiled import VendorNoticeRule


def explain_vendor_notice(rule: VendorNoticeRule, news_fired: Mapping[str, float], tz: str) -> list[str]:
    """``news_fired``: rule fingerprint -> the publication time of the last notice it alerted on."""
    products = ", ".join(p.name for p in rule.products) or "any product"
    kinds = ", ".join(sorted(rule.kinds)) or "any kind"
    sources = ", ".join(sorted(rule.sources)) or "any vendor"
    out = [f"  vendor notice rule: notices on {products}; {kinds}; from {sources}"]
    last = news_fired.get(rule.fp)
    out.append(f"    last alert: {format_time(last, tz, seconds=False) if last else 'never'}")
    if last and rule.cooldown:
        out.append(f"    cooldown {format_duration(rule.cooldown)}: until "
                   f"{format_time(last + rule.cooldown, tz, seconds=False)}")
    return out
