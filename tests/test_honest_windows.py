"""Honest windows: a change over a window compares with the quote at or before the window's start only when that
quote is near it (``alerts.rules.windows.window_tolerance``: weekends and holidays, not a year-old quote)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules.explain import explain
from alerts.rules.windows import window_tolerance
from tests.test_engine import Feed, ruleset
from tests.test_engine_stateful import dates, feed, rule

DAY = 86400.0


def test_a_30_day_change_is_not_computed_against_a_quote_636_days_old(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}")))
    # 2023-06-14 to 2025-03-11 is 636 days: the only quote before the window's start is far older than it
    assert dates(feed(f, (5_000, "2023-06-14"), (6_475, "2025-03-11"))) == []


def test_a_quote_a_weekend_or_a_holiday_before_the_window_start_still_counts(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}")))
    # 30 days before 2025-03-11 is 2025-02-09 (a Sunday); the last quote before it is Friday 02-07 (2 days older)
    out = feed(f, (6_000, "2025-02-07"), (6_475, "2025-03-11"))
    assert dates(out) == ["2025-03-11"] and out[0].previous_as_of == "2025-02-07"
    g = Feed(ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}")))
    # 4 days older than the window start: still near (a long weekend); 5 days: not
    assert dates(feed(g, (6_000, "2025-02-05"), (6_475, "2025-03-11"))) == ["2025-03-11"]
    h = Feed(ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}")))
    assert dates(feed(h, (6_000, "2025-02-04"), (6_475, "2025-03-11"))) == []


def test_change_in_price_units_is_honest_too(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule('price: {product: Pr-Nd oxide, change: {over: 7d, above: "20,000 CNY/t"}}')))
    out = [a for p, d in [(415_000, "2025-01-02"), (450_000, "2025-02-25")] for a in f.quote(p, d)]
    assert out == []


@pytest.mark.parametrize(("window_days", "tolerance_days"), [(1, 4), (7, 4), (30, 4), (40, 4), (90, 9), (365, 36.5)])
def test_the_tolerance_is_4_days_or_a_tenth_of_the_window(window_days: float, tolerance_days: float) -> None:
    assert window_tolerance(window_days * DAY) == pytest.approx(tolerance_days * DAY)


def test_explain_says_there_is_no_quote_near_the_window_start(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}"))
    f = Feed(rs)
    feed(f, (5_000, "2023-06-14"), (6_475, "2025-03-11"))
    out = explain(rs.by_id["r"], f.state, {}, "Asia/Shanghai")
    assert "smm: last quote 6,475 CNY/kg on 2025-03-11" in out
    assert "no quote near 30d before (the last before 2025-02-09 is of 2023-06-14, 636 days before)" in out
    feed(f, (6_000, "2025-03-12"))  # the reference is still the old one: nothing to compare
    assert "no quote near 30d before" in explain(rs.by_id["r"], f.state, {}, "Asia/Shanghai")
    g = Feed(rs)
    feed(g, (6_000, "2025-02-07"), (6_475, "2025-03-11"))
    out = explain(rs.by_id["r"], g.state, {}, "Asia/Shanghai")
    assert "compared with 6,000 on 2025-02-07: +7.9%" in out
