"""Quote units: a currency per mass unit, the aliases traders write, and conversion between masses.

A unit is ``Unit(currency, mass)`` such as CNY/t, or ``Unit(currency, mass, scale)`` for a multiple of the
currency as Chinese desks write it: ``万元/吨`` is ``Unit("CNY", "t", 10000)`` (10,000 CNY per tonne),
``千元/吨`` ``Unit("CNY", "t", 1000)``. Converting between masses and scales of one currency is exact
arithmetic (450 CNY/kg = 450,000 CNY/t; 45 万元/吨 = 450,000 CNY/t); converting between currencies is
refused, because an exchange rate is market data, not a unit. A product's quote unit has no scale (CNY/t):
the catalog refuses one (``alerts.catalog.Catalog.add``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from alerts.errors import AlertsError

#: Kilograms in one unit of mass.
MASS_KG: dict[str, float] = {"t": 1000.0, "kg": 1.0}

_CURRENCY_ALIASES = {
    "cny": "CNY", "rmb": "CNY", "yuan": "CNY", "¥": "CNY", "￥": "CNY", "元": "CNY", "人民币": "CNY",
    "usd": "USD", "美元": "USD", "$": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD",
}
#: A multiple written before the currency word: 万元 (10,000 yuan), 千元 (1,000 yuan), 万美元.
_SCALE_PREFIXES = {"万": 10_000.0, "萬": 10_000.0, "千": 1_000.0}
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
    #: units of the currency in one unit of this price's money: 10,000 for 万元/吨. CNY/t and
    #: Unit("CNY", "t", 1.0) are one unit (equal, one hash): a scale of 1 changes nothing.
    scale: float = 1.0

    def __str__(self) -> str:
        if self.scale == 1:
            return f"{self.currency}/{self.mass}"
        return f"({format_price(self.scale)} {self.currency})/{self.mass}"

    @property
    def base(self) -> Unit:
        """The unit without its scale: CNY/t for 万元/吨."""
        return self if self.scale == 1 else Unit(self.currency, self.mass)

    def factor_to(self, other: Unit) -> float:
        """Multiply a price in ``self`` by this to get it in ``other``."""
        if self.currency != other.currency:
            raise UnitError(f"cannot convert {self} to {other}: different currencies")
        # price per kg-of-self-mass -> per other mass: more mass per unit, higher price
        if self.scale == other.scale:
            return MASS_KG[other.mass] / MASS_KG[self.mass]
        # 45 万元/吨 -> 450,000 CNY/t: one division of exact integers (10,000 x 1,000 / 1), no rounding on the way
        return (MASS_KG[other.mass] * self.scale) / (MASS_KG[self.mass] * other.scale)


def parse_unit(text: str) -> Unit:
    """Parse ``CNY/t``, ``yuan/mt``, ``RMB / kg``, ``USD/kg``, ``元/公斤``, ``万元/吨``, ``万元/t``, ``千元/吨``,
    ``元每吨`` and the like."""
    raw = text.strip()
    norm = re.sub(r"\s+", "", raw.lower()).replace("per", "/").replace("每", "/")
    if norm.count("/") != 1:
        raise UnitError(f"unknown unit {raw!r}: expected CURRENCY/MASS such as CNY/t, USD/kg or 万元/吨")
    cur, mass = norm.split("/")
    scale = 1.0
    if cur[:1] in _SCALE_PREFIXES and cur[1:] in ("元", "美元"):
        scale, cur = _SCALE_PREFIXES[cur[0]], cur[1:]
    currency = _CURRENCY_ALIASES.get(cur)
    mass_unit = _MASS_ALIASES.get(mass)
    if currency is None or mass_unit is None:
        raise UnitError(f"unknown unit {raw!r}: expected CURRENCY/MASS such as CNY/t, USD/kg or 万元/吨")
    return Unit(currency, mass_unit, scale)


_AMOUNT = re.compile(r"^\s*(?P<num>[+-]?(?:\d{1,3}(?:[,_ ]\d{3})+|\d+)(?:\.\d+)?)\s*(?P<unit>\S.*)?$")


def parse_amount(value: object) -> tuple[float, Unit | None]:
    """Parse ``450000``, ``"450,000 CNY/t"``, ``"450 CNY/kg"`` or ``"45万元/吨"`` into (number, unit or None).
    A scaled unit is folded into the number: ``"45万元/吨"`` is (450000.0, CNY/t)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a number or 'NUMBER UNIT', got {value!r}")
    if isinstance(value, int | float):
        return float(value), None
    if not isinstance(value, str):
        raise UnitError(f"expected a number or 'NUMBER UNIT', got {value!r}")
    m = _AMOUNT.match(value)
    if not m:
        raise UnitError(f"cannot read {value!r}: expected 'NUMBER UNIT' such as '450,000 CNY/t'")
    digits = re.sub(r"[,_ ]", "", m.group("num"))
    unit = parse_unit(m.group("unit")) if m.group("unit") else None
    if unit is not None and unit.scale != 1:  # 45万元/吨: 450,000 CNY/t, the scale applied in decimal (exact)
        return float(Decimal(digits) * Decimal(repr(unit.scale))), unit.base
    return float(digits), unit


def convert(value: float, factor: float) -> float:
    """``value * factor`` in decimal arithmetic, rounded once: 0.07 万元/吨 is 700 CNY/t, not
    700.0000000000001 (``factor`` from ``Unit.factor_to``)."""
    if factor == 1:
        return value
    return float(Decimal(repr(value)) * Decimal(repr(factor)))


def format_price(value: float) -> str:
    """``451000.0`` -> ``451,000``; keeps up to two decimals when there are any (``1,705.5``)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")
