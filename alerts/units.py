"""Quote units: a currency per mass unit, the aliases traders write, and conversion between masses.

A unit is ``Unit(currency, mass)`` such as CNY/t. Converting between masses of one currency is exact
arithmetic (450 CNY/kg = 450,000 CNY/t); converting between currencies is refused, because an
exchange rate is market data, not a unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alerts.errors import AlertsError

#: Kilograms in one unit of mass.
MASS_KG: dict[str, float] = {"t": 1000.0, "kg": 1.0}

_CURRENCY_ALIASES = {
    "cny": "CNY", "rmb": "CNY", "yuan": "CNY", "¥": "CNY", "元": "CNY",
    "usd": "USD", "$": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD",
}
_MASS_ALIASES = {
    "t": "t", "mt": "t", "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t", "metricton": "t", "吨": "t",
    "kg": "kg", "kilogram": "kg", "kilograms": "kg", "公斤": "kg", "千克": "kg",
}


class UnitError(AlertsError, ValueError):
    """A price or unit that cannot be read (``450 CNY/kgg``), or units that do not convert."""


@dataclass(frozen=True, slots=True)
class Unit:
    currency: str
    mass: str

    def __str__(self) -> str:
        return f"{self.currency}/{self.mass}"

    def factor_to(self, other: Unit) -> float:
        """Multiply a price in ``self`` by this to get it in ``other``."""
        if self.currency != other.currency:
            raise UnitError(f"cannot convert {self} to {other}: different currencies")
        # price per kg-of-self-mass -> per other mass: more mass per unit, higher price
        return MASS_KG[other.mass] / MASS_KG[self.mass]


def parse_unit(text: str) -> Unit:
    """Parse ``CNY/t``, ``yuan/mt``, ``RMB / kg``, ``USD/kg`` and the like."""
    raw = text.strip()
    norm = re.sub(r"\s+", "", raw.lower()).replace("per", "/")
    if norm.count("/") != 1:
        raise UnitError(f"unknown unit {raw!r}: expected CURRENCY/MASS such as CNY/t or USD/kg")
    cur, mass = norm.split("/")
    currency = _CURRENCY_ALIASES.get(cur)
    mass_unit = _MASS_ALIASES.get(mass)
    if currency is None or mass_unit is None:
        raise UnitError(f"unknown unit {raw!r}: expected CURRENCY/MASS such as CNY/t or USD/kg")
    return Unit(currency, mass_unit)


_AMOUNT = re.compile(r"^\s*(?P<num>[+-]?(?:\d{1,3}(?:[,_ ]\d{3})+|\d+)(?:\.\d+)?)\s*(?P<unit>\S.*)?$")


def parse_amount(value: object) -> tuple[float, Unit | None]:
    """Parse ``450000``, ``"450,000 CNY/t"`` or ``"450 CNY/kg"`` into (number, unit or None)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a number or 'NUMBER UNIT', got {value!r}")
    if isinstance(value, int | float):
        return float(value), None
    if not isinstance(value, str):
        raise UnitError(f"expected a number or 'NUMBER UNIT', got {value!r}")
    m = _AMOUNT.match(value)
    if not m:
        raise UnitError(f"cannot read {value!r}: expected 'NUMBER UNIT' such as '450,000 CNY/t'")
    number = float(re.sub(r"[,_ ]", "", m.group("num")))
    unit = parse_unit(m.group("unit")) if m.group("unit") else None
    return number, unit


def format_price(value: float) -> str:
    """``451000.0`` -> ``451,000``; keeps up to two decimals when there are any (``1,705.5``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")
