"""The quote sanity check itself (``alerts.events.sanity.judge``): pure, no Redis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.catalog import builtin_catalog
from alerts.errors import EventError
from alerts.events import price_from_fields
from alerts.events.sanity import MAX_PRICE, MIN_PRICE, Reference, judge, median_daily_move

CATALOG = builtin_catalog()
DY = CATALOG.find("Dy oxide")
PRND = CATALOG.find("Pr-Nd oxide")
DAY = 86400.0
T0 = 1_741_651_200.0  # 2025-03-11


def test_a_per_kg_product_written_per_tonne_is_a_per_kg_price() -> None:
    assert DY is not None
    ref = Reference(1705.0, T0 - DAY, "smm")
    reason = judge(1.705, T0, DY, ref, "1705 CNY/t", "CNY/t", 0.25)
    assert reason == "1705 CNY/t is 1,000x below dysprosium oxide's last 1,705 CNY/kg (smm): a per-kg price?"


@pytest.mark.parametrize(("price", "unit", "words"), [
    (44.4, "CNY/t", "10,000x below"),  # 万元/吨 written as CNY/t
    (444.0, "CNY/kg", None),  # the same price per kg: right
    (444.0, "CNY/t", "1,000x below"),  # thousands
    (4_440_000.0, "CNY/t", "10x above"),  # a digit too many
    (44_400.0, "CNY/t", "10x below"),
])
def test_slips_of_pr_nd_oxide(price: float, unit: str, words: str | None) -> None:
    assert PRND is not None
    ev = price_from_fields("Pr-Nd oxide", price, unit, "2025-03-11", CATALOG, "Asia/Shanghai")
    reason = judge(ev.price, ev.as_of, PRND, Reference(444_000.0, T0 - DAY, "smm"), f"{price:g} {unit}", unit,
                   0.25)
    if words is None:
        assert reason is None
    else:
        assert reason is not None and words in reason, reason


def test_without_a_last_quote_the_typical_range_is_the_reference() -> None:
    assert DY is not None and PRND is not None
    reason = judge(1.705, T0, DY, None, "1705 CNY/t", "CNY/t", 0.25)
    assert reason is not None and "1,000x below dysprosium oxide's typical range 500..5,000 CNY/kg" in reason
    assert "a per-kg price?" in reason
    assert judge(1705.0, T0, DY, None, "1705 CNY/kg", "CNY/kg", 0.25) is None
    assert judge(1.3e9, T0, PRND, None, "1.3e9 CNY/t", "CNY/t", 0.25) is not None  # 1,000x the typical range
    assert judge(1_500_000.0, T0, PRND, None, "1500000 CNY/t", "CNY/t", 0.25) is None  # a new level, not a slip


def test_a_jump_is_judged_against_the_days_between_and_the_usual_moves() -> None:
    assert PRND is not None
    ref = Reference(444_000.0, T0 - DAY, "smm")
    jumped = judge(620_000.0, T0, PRND, ref, "620000 CNY/t", "CNY/t", 0.25)  # +40% in a day
    assert jumped is not None and "40% rise" in jumped and "25%" in jumped
    assert judge(620_000.0, T0 + 8 * DAY, PRND, ref, "620000 CNY/t", "CNY/t", 0.25) is None  # over 9 days
    volatile = Reference(444_000.0, T0 - DAY, "smm", daily_move=0.05)  # moves 5% a day: 8x that is allowed
    assert judge(620_000.0, T0, PRND, volatile, "620000 CNY/t", "CNY/t", 0.25) is None
    assert judge(300_000.0, T0, PRND, ref, "300000 CNY/t", "CNY/t", 0.25) is not None  # -32% in a day


def test_median_daily_move() -> None:
    points = [(T0 + i * DAY, 100.0 * (1.01 if i % 2 else 1.0)) for i in range(10)]
    assert median_daily_move(points) == pytest.approx(math.log(1.01))
    assert median_daily_move(points[:3]) == 0.0  # too few to say


@pytest.mark.parametrize("price", [5e-324, 1e-7, 1e13, 1e300])
def test_an_absurd_price_is_refused_not_held(price: float) -> None:
    with pytest.raises(EventError, match="is not a price"):
        price_from_fields("Pr-Nd oxide", price, "CNY/t", "2025-03-11", CATALOG, "Asia/Shanghai")


@settings(max_examples=300, deadline=None)
@given(ref=st.floats(1.0, 1e7), move=st.floats(-0.2, 0.2), days=st.floats(0, 400))
def test_any_move_within_the_floor_passes(ref: float, move: float, days: float) -> None:
    """A quote within 20% of the last one is never held, whatever the product, level or gap."""
    assert DY is not None
    price = ref * (1 + move)
    if not MIN_PRICE <= price <= MAX_PRICE:
        return
    assert judge(price, T0 + days * DAY, DY, Reference(ref, T0, "smm"), "x", "CNY/kg", 0.25) is None


@settings(max_examples=300, deadline=None)
@given(ref=st.floats(1.0, 1e7), k=st.sampled_from([-4, -3, -1, 1, 3, 4]), noise=st.floats(-0.05, 0.05),
       days=st.floats(0, 400))
def test_any_power_of_ten_slip_is_held_and_named(ref: float, k: int, noise: float, days: float) -> None:
    assert PRND is not None
    price = ref * 10 ** k * (1 + noise)
    reason = judge(price, T0 + days * DAY, PRND, Reference(ref, T0, "smm"), "x", "CNY/t", 0.25)
    assert reason is not None and f"{10 ** abs(k):,}x {'above' if k > 0 else 'below'}" in reason
