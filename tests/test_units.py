import pytest

from alerts.units import Unit, UnitError, format_price, parse_amount, parse_unit


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
