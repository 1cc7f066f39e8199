"""Currencies: FX pairs (``parse_currency``, ``parse_pair``), the rates seen and stored (``RateBook``), the rate
a quote in another currency than its product's is converted with (``fx_rate``), and the whole factor from such
a quote to its product's unit, or the reason there is none (``currency_factor``)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from alerts.catalog import Product
from alerts.errors import EventError
from alerts.events.times import local_date
from alerts.events.wire import FxEvent
from alerts.events.words import clip, days, num
from alerts.units import Unit, UnitError, parse_unit

_CODE = re.compile(r"[A-Za-z]{3}")

#: (canonical pair, time) -> (rate, rate time) of the pair's latest rate at or before that time, or None.
RateLookup = Callable[[str, float], "tuple[float, float] | None"]


def parse_currency(text: str) -> str | None:
    """A currency as the units know it (``yuan``, ``RMB``, ``$`` -> CNY, USD), else a 3-letter code
    (upper-cased: ``EUR``); None when it is neither."""
    word = text.strip()
    if not word or "/" in word:
        return None
    try:
        return parse_unit(f"{word}/t").currency  # the currency aliases of alerts.units
    except UnitError:
        pass
    return word.upper() if _CODE.fullmatch(word) else None


def parse_pair(text: str) -> str:
    """``usd / yuan`` -> ``USD/CNY``: two currencies separated by ``/``, canonical codes. Raises EventError."""
    parts = text.split("/")
    if len(parts) != 2:
        raise EventError(f"pair: {clip(text)} is not two currencies separated by '/', such as USD/CNY")
    codes = []
    for part in parts:
        code = parse_currency(part)
        if code is None:
            raise EventError(f"pair: unknown currency {clip(part.strip())} in {clip(text)}: a currency is a "
                             "3-letter code such as USD, CNY or EUR (or yuan, RMB, $)")
        codes.append(code)
    if codes[0] == codes[1]:
        raise EventError(f"pair: {clip(text)} names {codes[0]} twice; a pair converts between two currencies, "
                         "such as USD/CNY")
    return f"{codes[0]}/{codes[1]}"


class RateBook:
    """Exchange rates for converting quotes: those seen so far (``add``, in the order they came, such as the
    fx lines earlier in a file) and, older in arrival, those a ``stored`` lookup knows (the rates in Redis).
    Called as a ``RateLookup``: the latest rate of a pair at or before a time (by time, then arrival)."""

    def __init__(self, stored: RateLookup | None = None):
        self.stored = stored
        self._seen: dict[str, list[tuple[float, int, float]]] = {}
        self._added = 0

    def add(self, ev: FxEvent) -> None:
        self._added += 1
        bisect.insort(self._seen.setdefault(ev.pair, []), (ev.as_of, self._added, ev.rate))

    def __call__(self, pair: str, t: float) -> tuple[float, float] | None:
        points = self._seen.get(pair, [])
        i = bisect.bisect_right(points, t, key=lambda p: p[0])
        mine = (points[i - 1][2], points[i - 1][0]) if i else None
        if self.stored is None or (mine is not None and mine[1] >= t):
            return mine  # nothing stored can be later than one at t: at the same time, the later arrival wins
        stored = self.stored(pair, t)
        if stored is None or (mine is not None and stored[1] <= mine[1]):
            return mine
        return stored


def fx_rate(from_currency: str, to_currency: str, t: float,
            rates: RateLookup | None) -> tuple[float, str, float, float] | None:
    """How to convert an amount in ``from_currency`` into ``to_currency`` at time ``t``: (multiplier, the pair
    used, its rate, the rate's time), with the latest rate at or before ``t`` of ``FROM/TO`` (multiplier: the
    rate) or ``TO/FROM`` (1/rate), whichever is later (``FROM/TO`` at the same time); None with no rate."""
    if rates is None:
        return None
    direct, inverse = f"{from_currency}/{to_currency}", f"{to_currency}/{from_currency}"
    d, i = rates(direct, t), rates(inverse, t)
    if d is not None and (i is None or d[1] >= i[1]):
        return d[0], direct, d[0], d[1]
    if i is not None:
        return 1.0 / i[0], inverse, i[0], i[1]
    return None


def currency_factor(price: float, written_unit: str, written_time: str, unit: Unit, product: Product, ts: float,
                    tz: str, rates: RateLookup | None, max_age_days: float) -> float:
    """The factor from a quote (``price`` in ``unit``, written ``written_unit``, at ``ts``, written
    ``written_time``) in another currency than its product's to the product's unit: the rate and the mass.
    EventError saying how to fix it when there is no rate recent enough."""
    cur, pcur = unit.currency, product.unit.currency
    mass = Unit(cur, product.unit.mass)
    found = fx_rate(cur, pcur, ts, rates)
    pair = f"{cur}/{pcur}"
    fix = (f"publish an fx event for {pair} before this quote, such as "
           f'{{"type": "fx", "pair": "{pair}", "rate": ..., "as_of": "{local_date(ts, tz)}", "source": ...}}, '
           f"or quote it as a separate product in {cur} (a products: entry such as "
           f"{{name: {product.name} FOB, unit: {unit}}})")
    head = f"unit: {num(price)} {written_unit} is in {cur} but {product.name} is quoted in {product.unit_text}"
    if found is None:
        raise EventError(f"{head}, and no {pair} rate is known at or before {written_time}; {fix}")
    multiplier, used, rate, rate_time = found
    if rate_time < ts - max_age_days * 86400:
        raise EventError(f"{head}; the latest {used} rate before it ({num(rate)} on {local_date(rate_time, tz)}) is "
                         f"more than {days(max_age_days)} older than the quote (ALERTS_FX_MAX_AGE_DAYS); {fix}")
    return unit.factor_to(mass) * multiplier
