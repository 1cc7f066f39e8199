"""Quote sanity: whether a quote looks like the product's price at all, before any rule sees it.

A wrong number costs more than a late one: a per-kg product written per tonne (``1705 CNY/t`` for Dy oxide's
1,705 CNY/kg), a price in 万元/吨 written as CNY/t (``44.4`` for 444,000), a thousands slip, or a jump far beyond
the product's usual daily moves. ``judge`` says why a quote should be held rather than used, or None; it is pure
(the quote, the product's reference, the limits). Every door (``alerts publish``, POST /events, ``alerts import``,
the pollers, articles) asks the same ``QuoteGuard`` (``alerts.store.quotes``), which keeps each product's
reference and holds what ``judge`` flags in the quarantine (``alerts quotes held``).

What is held, in order (README "Quote sanity"):

- **a scale slip**: the price is about 10x, 1,000x or 10,000x away from the product's last quote (or, with no
  quote yet, from its typical range in the catalog) while that power of ten puts it right: the message names the
  slip (``a per-kg price?``);
- **far off**: more than ``FAR_OFF`` times away from the last quote, or outside the typical range by more than
  that, with no slip that explains it;
- **a jump**: a move from the last quote larger than the allowed move: ``max(floor, USUAL_MULTIPLE`` x the
  product's median daily move) scaled by the square root of the days between the two quotes (a quote 9 days after
  the last may move 3x as far as one a day after it).

A quote sent with ``override`` (a field, a CSV column) or released from the quarantine skips the check: real
breaks happen (April 2025's export controls moved Dy and Tb prices outside China several-fold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from alerts.catalog import Product
from alerts.errors import EventError
from alerts.events.wire import PriceEvent
from alerts.units import format_price

#: A quote this many times away from the reference, or beyond the typical range by as much, and no slip: held.
FAR_OFF = 5.0
#: How close (in log10) a ratio must be to a power of ten to read as that slip: 10**0.2 is 1.58x either way.
SLIP_TOLERANCE = 0.2
#: The powers of ten that are slips, and what each usually is: 万 (10,000), a kg/t or yuan/kiloyuan slip
#: (1,000), a digit (10).
SLIPS = (4, 3, 1)
#: The allowed move is at least this many times the product's median daily move (when its history shows one).
USUAL_MULTIPLE = 8.0
#: Days the square-root scaling of the allowed move counts at most (a quote after a long gap is still checked).
MAX_GAP_DAYS = 90.0
#: The smallest and largest price any quote may have, in its product's unit: outside, the quote is refused (not
#: held): 5e-324 is no price.
MIN_PRICE = 1e-6
MAX_PRICE = 1e12


class QuoteHeld(EventError):
    """A quote that failed the sanity check: held in the quarantine, not used. ``event`` is the quote as it would
    have been published, ``reason`` what it looks like."""

    def __init__(self, reason: str, event: object):
        super().__init__(reason)
        self.reason = reason
        self.event = event


class Guard(Protocol):
    """What a door hands the quote parsers (``alerts.store.quotes.QuoteGuard``): ``check`` a quote (raises
    QuoteHeld), ``admit`` one sent with ``override`` unchecked, ``hold`` what ``check`` raised (of line or item
    ``n``), which gives the message for its sender."""

    def check(self, ev: PriceEvent, written_price: float, written_unit: str) -> None: ...

    def admit(self, ev: PriceEvent) -> None: ...

    def hold(self, held: QuoteHeld, n: int) -> str: ...


@dataclass(slots=True)
class Reference:
    """What a product's new quote is compared with: its last trusted quote (price in the product's unit, quote
    time, vendor) and its median daily move (an absolute log change per day; 0 when not known). Mutable: a guard
    moves it on to each quote it lets through (one per quote of an import: no new object each time)."""

    price: float
    t: float
    source: str
    daily_move: float = 0.0


def median_daily_move(points: Sequence[tuple[float, float]]) -> float:
    """The median absolute log change per day between consecutive (time, price) points (in time order), each
    change scaled by the square root of its gap in days; 0 with fewer than 3 changes."""
    moves = []
    for (t0, p0), (t1, p1) in pairwise(points):
        days = (t1 - t0) / 86400
        if days > 0 and p0 > 0 and p1 > 0:
            moves.append(abs(math.log(p1 / p0)) / math.sqrt(days))
    if len(moves) < 3:
        return 0.0
    moves.sort()
    return moves[len(moves) // 2]


def _times(k: int) -> str:
    return f"{10 ** k:,}x"


def slip_hint(k: int, written_unit: str, product: Product) -> str:
    """What a quote ``10**k`` times the right price (k < 0: below it) most likely is, from the unit it was
    written in and the product's."""
    mass = product.unit.mass
    wrote = written_unit.replace(" ", "").lower()
    if abs(k) == 3 and mass == "kg" and wrote.endswith(("/t", "/mt", "/tonne", "/吨")):
        return "a per-kg price?"
    if abs(k) == 3 and mass == "t" and wrote.endswith(("/kg", "/kilogram", "/公斤", "/千克")):
        return "a per-tonne price?"
    if abs(k) == 3:
        return "a per-kg/per-tonne or yuan/thousand-yuan slip?"
    if k == -4:
        return "a price in 万元 (10,000 CNY) written as CNY?"
    if k == 4:
        return "a price in CNY written as 万元 (10,000 CNY)?"
    return "a digit too many or too few?"


def _slip(ratio: float) -> int | None:
    """The power of ten (signed) that ``ratio`` is a slip of, or None."""
    lg = math.log10(ratio)
    for k in SLIPS:
        for signed in (k, -k):
            if abs(lg - signed) <= SLIP_TOLERANCE:
                return signed
    return None


def judge(price: float, t: float, product: Product, ref: Reference | None, written: str, written_unit: str,
          floor_move: float) -> str | None:
    """Why a quote (``price`` in the product's unit at quote time ``t``; ``written``: the price and unit as sent)
    should be held, or None. ``floor_move``: the smallest allowed daily move, as a fraction (0.25: 25%)."""
    name, unit = product.name, product.unit_text
    if ref is not None:
        ratio = price / ref.price
        last = f"{name}'s last {format_price(ref.price)} {unit} ({ref.source})"
        if 1 / FAR_OFF < ratio < FAR_OFF:
            days = min(max(abs(t - ref.t) / 86400, 1.0), MAX_GAP_DAYS)
            allowed = max(math.log1p(floor_move), USUAL_MULTIPLE * ref.daily_move) * math.sqrt(days)
            move = math.log(ratio)
            if abs(move) <= allowed:
                return None
            return (f"{written} is a {abs(ratio - 1):.0%} {'rise' if move > 0 else 'fall'} from {last}, more than "
                    f"the {math.expm1(allowed):.0%} {name} may move in {days:g} days: a wrong number, or a real "
                    "break (release it, or send it with override)")
        k = _slip(ratio)
        how = f"{_times(abs(k))} {'above' if k > 0 else 'below'}" if k is not None else \
            f"{max(ratio, 1 / ratio):,.4g}x {'above' if ratio > 1 else 'below'}"
        hint = slip_hint(k, written_unit, product) if k is not None else "not a price of this product?"
        return f"{written} is {how} {last}: {hint}"
    if product.typical is None:
        return None
    low, high = product.typical
    if low <= price <= high:
        return None
    ratio = price / (high if price > high else low)
    span = f"{name}'s typical range {format_price(low)}..{format_price(high)} {unit}"
    k = _slip(price / math.sqrt(low * high))
    if k is not None and low <= price / 10 ** k <= high:
        return f"{written} is about {_times(abs(k))} {'above' if k > 0 else 'below'} {span}: " \
               f"{slip_hint(k, written_unit, product)}"
    if 1 / FAR_OFF < ratio < FAR_OFF:
        return None  # outside the wide range, but not by much: a new level, not a slip
    return f"{written} is {max(ratio, 1 / ratio):,.4g}x {'above' if ratio > 1 else 'below'} {span} and this " \
           "product has no quote yet: not a price of this product?"


def check_magnitude(price: float, written: str) -> None:
    """Refuse (EventError) a price no product has, in its product's unit: below ``MIN_PRICE`` or above
    ``MAX_PRICE`` (5e-324, 1e300)."""
    if not MIN_PRICE <= price <= MAX_PRICE:
        raise EventError(f"price: {written} is not a price (the limits are {MIN_PRICE:g} to {MAX_PRICE:g} in the "
                         "product's unit)")
