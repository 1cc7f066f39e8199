"""The ``RuleSet``'s indexes, built from compiled rules: price rules per product and condition by threshold,
sorted (evaluating a quote looks only at the thresholds between the previous and the new price), rules with
state of their own per product, spreads and all_of parts per leg, news and stale rules in their lists."""

from __future__ import annotations

from collections.abc import Iterable

from alerts.rules.compiled import (
    AllOfRule,
    CompiledRule,
    DivergenceRule,
    NewsRule,
    ProductIndex,
    RuleSet,
    SpreadRule,
    StaleRule,
    ThresholdIndex,
    VendorNoticeRule,
    fingerprint,
)


def index_rules(rs: RuleSet, compiled: Iterable[CompiledRule]) -> None:
    """Fill the rule set's indexes (``by_id``, ``price``, ``news``, ``news_parts``, ``stale``) from ``compiled``."""
    news = []
    news_parts: list[tuple[AllOfRule, int, NewsRule]] = []
    stale = []
    notices = []
    by_id: dict[str, list[CompiledRule]] = {}
    for r in compiled:
        by_id.setdefault(r.id, []).append(r)
        if isinstance(r, NewsRule):
            news.append(r)
            continue
        if isinstance(r, StaleRule):
            stale.append(r)
            continue
        if isinstance(r, VendorNoticeRule):
            notices.append(r)
            continue
        if isinstance(r, SpreadRule):
            for leg in (r.of, r.minus):
                rs.by_product.setdefault(leg.key, ProductIndex()).spreads.append(r)
            continue
        if isinstance(r, AllOfRule):
            for i, part in enumerate(r.parts):
                if isinstance(part, NewsRule):
                    news_parts.append((r, i, part))
                else:
                    pidx = rs.by_product.setdefault(part.product.key, ProductIndex())
                    pidx.parts.append((r, i, part))
                    pidx.max_window = max(pidx.max_window, part.window)
            continue
        if isinstance(r, DivergenceRule):  # several vendors of one product: the event-time stage
            rs.by_product.setdefault(r.product.key, ProductIndex()).vendors.append(r)
            continue
        idx = rs.by_product.setdefault(r.product.key, ProductIndex())
        if r.vendors:  # several vendors combined (sources:, consensus:): the event-time stage
            idx.vendors.append(r)
            continue
        if r.fx is not None:  # compared at the exchange rate of each quote's time: the event-time stage
            idx.fx.append(r)
            continue
        idx.by_fp[r.fp] = r
        if r.stateful:
            idx.stateful.append(r)
            idx.max_window = max(idx.max_window, r.window)
        else:
            idx.by_kind.setdefault(r.kind, ThresholdIndex()).rules.append(r)
    rs.by_id = {k: tuple(v) for k, v in by_id.items()}
    rs.news = tuple(news)
    rs.news_parts = tuple(news_parts)
    rs.stale = tuple(stale)
    rs.vendor_notices = tuple(notices)
    for idx in rs.by_product.values():
        for ti in idx.by_kind.values():
            ti.rules.sort(key=lambda r: r.threshold)
            ti.thresholds = [r.threshold for r in ti.rules]
        idx.token = fingerprint(*sorted(idx.by_fp))
