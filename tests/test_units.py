import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.catalog import Product, builtin_catalog
from alerts.units import Unit, UnitError, convert, format_price, parse_amount, parse_unit


@pytest.mark.parametrize("text,expected", [
    ("CNY/t", Unit("CNY", "t")), ("yuan/mt", Unit("CNY", "t")), ("yuan/t", Unit("CNY", "t")),
    ("RMB/t", Unit("CNY", "t")), ("CNY/mt", Unit("CNY", "t")), ("yuan/kg", Unit("CNY", "kg")),
    ("RMB / kg", Unit("CNY", "kg")), ("USD/kg", Unit("USD", "kg")), ("usd/mt", Unit("USD", "t")),
    ("元/吨", Unit("CNY", "t")),
])
def test_unit_aliases(text: str, expected: Unit) -> None:
    assert parse_unit(text) == expected


@pytest.mark.parametrize("text", ["CNY", "EUR/t", "CNY/lb", "per"])
def test_unknown_units_are_rejected(text: str) -> None:
    with pytest.raises(UnitError, match="unknown unit"):
        parse_unit(text)


def test_mass_conversion_and_currency_refusal() -> None:
    kg, t = Unit("CNY", "kg"), Unit("CNY", "t")
    assert 450 * kg.factor_to(t) == 450_000
    assert 444_000 * t.factor_to(kg) == 444
    with pytest.raises(UnitError, match="different currencies"):
        Unit("USD", "t").factor_to(t)


@pytest.mark.parametrize("value,number,unit", [
    (450000, 450000.0, None), ("450,000 CNY/t", 450000.0, Unit("CNY", "t")),
    ("450 CNY/kg", 450.0, Unit("CNY", "kg")), ("1,705.5 yuan/kg", 1705.5, Unit("CNY", "kg")),
    ("450_000", 450000.0, None), (12.5, 12.5, None),
])
def test_parse_amount(value: object, number: float, unit: Unit | None) -> None:
    assert parse_amount(value) == (number, unit)


@pytest.mark.parametrize("value", ["abc", "45,00 CNY/t", True, None, "450 EUR/t"])
def test_parse_amount_rejects(value: object) -> None:
    with pytest.raises(UnitError):
        parse_amount(value)


def test_format_price() -> None:
    assert format_price(451000.0) == "451,000"
    assert format_price(1705.5) == "1,705.5"


# --- 万元/吨 and the other multiples Chinese desks write (issue 17) -------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("万元/吨", Unit("CNY", "t", 10_000)), ("万元/t", Unit("CNY", "t", 10_000)),
    ("万元 / 吨", Unit("CNY", "t", 10_000)),
    ("千元/吨", Unit("CNY", "t", 1_000)), ("元/公斤", Unit("CNY", "kg")), ("万元/公斤", Unit("CNY", "kg", 10_000)),
    ("元每吨", Unit("CNY", "t")), ("万美元/吨", Unit("USD", "t", 10_000)), ("人民币/吨", Unit("CNY", "t")),
])
def test_scaled_and_chinese_units(text: str, expected: Unit) -> None:
    assert parse_unit(text) == expected


def test_a_scale_of_one_is_the_plain_unit() -> None:
    assert Unit("CNY", "t", 1.0) == Unit("CNY", "t") and hash(Unit("CNY", "t", 1)) == hash(Unit("CNY", "t"))
    assert str(Unit("CNY", "t")) == "CNY/t" and str(parse_unit("yuan/kg")) == "CNY/kg"
    assert parse_unit("万元/吨") != Unit("CNY", "t") and parse_unit("万元/吨").base == Unit("CNY", "t")
    assert str(parse_unit("万元/吨")) == "(10,000 CNY)/t"


def test_scaled_conversion() -> None:
    t, kg = Unit("CNY", "t"), Unit("CNY", "kg")
    assert 45 * parse_unit("万元/吨").factor_to(t) == 450_000
    assert 652.5 * parse_unit("万元/吨").factor_to(kg) == 6525
    assert 1.5 * parse_unit("千元/吨").factor_to(t) == 1500
    assert t.factor_to(parse_unit("万元/吨")) == 1 / 10_000
    with pytest.raises(UnitError, match="different currencies"):
        parse_unit("万美元/吨").factor_to(t)


@pytest.mark.parametrize("value,number,unit", [
    ("45万元/吨", 450_000.0, Unit("CNY", "t")), ("45 万元/吨", 450_000.0, Unit("CNY", "t")),
    ("42.75万元/t", 427_500.0, Unit("CNY", "t")), ("0.07万元/吨", 700.0, Unit("CNY", "t")),
    ("1,705元/公斤", 1705.0, Unit("CNY", "kg")), ("7.5千元/吨", 7500.0, Unit("CNY", "t")),
])
def test_parse_amount_folds_the_scale_exactly(value: str, number: float, unit: Unit) -> None:
    assert parse_amount(value) == (number, unit)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=4))
def test_wan_yuan_converts_exactly_for_any_amount(units: int, decimals: int) -> None:
    """For any amount written with up to 4 decimals, N万元/吨 is exactly N x 10,000 CNY/t (decimal, not float
    arithmetic: 0.07万元/吨 is 700, not 700.0000000000001)."""
    written = f"{units / 10**decimals:.{decimals}f}"
    number, unit = parse_amount(written + "万元/吨")
    assert unit == Unit("CNY", "t")
    assert number == units * 10**(4 - decimals)
    assert convert(float(written), parse_unit("万元/吨").factor_to(Unit("CNY", "t"))) == number


def test_the_catalog_refuses_a_scaled_product_unit() -> None:
    catalog = builtin_catalog()
    assert all(p.unit.scale == 1 for p in catalog.products.values())
    found = catalog.find("氧化镨钕")
    assert found is not None and str(found.unit) == "CNY/t"
    with pytest.raises(ValueError, match="quote it in CNY/t"):
        catalog.add(Product("yttrium oxide", parse_unit("万元/吨")))
