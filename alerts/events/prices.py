"""Quotes from typed fields: the one form a quote takes before its rules are checked (``PriceFields``), those
rules (``price_event``: catalog, unit, range, time, currency, id), a quote from fields already split and typed
(``price_from_fields``, a CSV row) and the same for the rows of a whole file with what repeats looked up once
(``PriceRows``). A JSON quote comes here too, its fields checked by ``alerts.events.schema`` first."""

from __future__ import annotations

import difflib
import math
import time
from datetime import datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from alerts.catalog import Catalog, product_key
from alerts.errors import EventError
from alerts.events.fx import RateLookup, currency_factor
from alerts.events.limits import DEFAULT_FX_MAX_AGE_DAYS, MAX_ID, MAX_PRODUCT, MAX_SOURCE, MAX_TIME, MAX_UNIT
from alerts.events.sanity import MAX_PRICE, MIN_PRICE, Guard, check_magnitude
from alerts.events.times import EPOCH_ORDINAL, check_not_future, iso_day, parse_time, read_time, zone
from alerts.events.wire import PriceEvent, digest
from alerts.events.words import num
from alerts.units import Unit, UnitError, convert, parse_unit


class PriceFields(msgspec.Struct, frozen=True):
    """The fields of a quote, typed, stripped and within the limits: what ``price_event`` takes, made at the edge
    (from a JSON object its schema checked, or from the fields ``price_from_fields`` checked)."""

    product: str
    price: float
    unit: str
    as_of: str
    source: str = "manual"
    id: str | None = None
    low: float | None = None
    high: float | None = None
    override: bool = False  # a real break: the sanity check (``alerts.events.sanity``) is skipped


@lru_cache(maxsize=256)
def _unit(text: str) -> Unit:
    return parse_unit(text)


@lru_cache(maxsize=256)
def _unit_text(unit: Unit) -> str:
    """``Product.unit_text``, formatted once per unit rather than once per quote."""
    return str(unit)


def _unknown_product(name: str, catalog: Catalog) -> EventError:
    names: dict[str, str] = {}
    for product in catalog.products.values():
        for n in product.all_names:  # the catalog name first: "PrNd oxide" folds as "Pr-Nd oxide" does
            names.setdefault(product_key(n), n)
    close = difflib.get_close_matches(product_key(name)[:MAX_PRODUCT], list(names), n=1, cutoff=0.6)
    hint = f"did you mean {names[close[0]]!r}?" if close else "not in the catalog or a products: list"
    return EventError(f"product: unknown product {name!r} ({hint})")


def price_event(p: PriceFields, catalog: Catalog, tz: str, now: float | None, max_future_days: float | None,
                rates: RateLookup | None, fx_max_age_days: float, history: bool = False,
                guard: Guard | None = None) -> PriceEvent:
    """The rules of a quote past its fields' types and limits: catalog, unit, range, time, currency, id, and the
    sanity check of ``guard`` (raises QuoteHeld, an EventError, with the quote; none with ``p.override``)."""
    product = catalog.find(p.product)
    if product is None:
        raise _unknown_product(p.product, catalog)
    try:
        unit = _unit(p.unit)
    except UnitError as exc:
        raise EventError(f"unit: {exc}") from None
    if p.low is not None and p.high is not None and p.low > p.high:
        raise EventError(f"low: {num(p.low)} is above high {num(p.high)}")
    if (p.low is not None and p.price < p.low) or (p.high is not None and p.price > p.high):
        span = f"{num(p.low) if p.low is not None else ''}..{num(p.high) if p.high is not None else ''}"
        raise EventError(f"price: {num(p.price)} is outside its low..high range {span}")
    ts, day = parse_time(p.as_of, tz, "as_of")
    check_not_future(ts, "as_of", p.as_of, tz, now, max_future_days)
    foreign = unit.currency != product.unit.currency
    if foreign:
        factor = currency_factor(p.price, p.unit, p.as_of, unit, product, ts, tz, rates, fx_max_age_days)
    else:
        factor = unit.factor_to(product.unit)
    low = convert(p.low, factor) if p.low is not None else None  # in decimal: 0.07 万元/吨 is 700 CNY/t
    high = convert(p.high, factor) if p.high is not None else None
    price = convert(p.price, factor)
    if not math.isfinite(price) or not math.isfinite(low or 1.0) or not math.isfinite(high or 1.0):
        raise EventError(f"price: {p.price} {p.unit} is out of range")
    check_magnitude(price, f"{p.price:g} {p.unit}")
    if p.id:
        eid = p.id
    elif foreign:  # the quote as written: the same quote is the same event whatever the rate
        eid = "p-" + digest(product.key, p.source, ts, p.price, p.low, p.high, unit)
    else:
        eid = "p-" + digest(product.key, p.source, ts, price, low, high)
    ev = PriceEvent(eid, product.name, product.key, price, _unit_text(product.unit), ts, day, p.source, low, high,
                    history)
    if guard is not None:
        if p.override:
            guard.admit(ev)
        else:
            guard.check(ev, p.price, p.unit)
    return ev


def _text_field(name: str, value: str | None, limit: int, required: bool) -> str | None:
    """A text field as the JSON schema takes it: stripped, not empty when given, within its limit."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        if required:
            raise EventError(f"{name}: String should have at least 1 character")
        return None
    if len(value) > limit:
        raise EventError(f"{name}: {len(value):,} characters; the limit is {limit:,}")
    return value


def _number_field(name: str, value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise EventError(f"{name}: must be a positive number")
    return value


def price_from_fields(product: str, price: float, unit: str, as_of: str, catalog: Catalog, tz: str, *,
                      source: str | None = None, id: str | None = None, low: float | None = None,
                      high: float | None = None, now: float | None = None, max_future_days: float | None = None,
                      rates: RateLookup | None = None, fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS,
                      history: bool = False, guard: Guard | None = None, override: bool = False) -> PriceEvent:
    """A quote from fields already split and typed (a CSV row: ``alerts.ingest.csv_import``), checked with the
    same limits and rules as ``parse_event`` (and the same event id), without building a JSON object and a
    pydantic model for it. An empty ``source``, ``id``, ``low`` or ``high`` is absent. Raises EventError (QuoteHeld
    when ``guard`` holds it)."""
    product, unit, as_of = product.strip(), unit.strip(), as_of.strip()
    source = source.strip() if source else None
    if not (0 < len(product) <= MAX_PRODUCT and 0 < len(unit) <= MAX_UNIT and 0 < len(as_of) <= MAX_TIME
            and (not source or len(source) <= MAX_SOURCE) and (not id or len(id) <= MAX_ID)):
        _text_field("product", product, MAX_PRODUCT, True)  # the slow path only to say which field is wrong
        _text_field("unit", unit, MAX_UNIT, True)
        _text_field("as_of", as_of, MAX_TIME, True)
        _text_field("source", source, MAX_SOURCE, False)
        _text_field("id", id, MAX_ID, False)
    if id:
        id = id.strip() or None
    fields = PriceFields(product, _number_field("price", price) or 0.0, unit, as_of, source or "manual", id,
                         _number_field("low", low), _number_field("high", high), override)
    return price_event(fields, catalog, tz, now, max_future_days, rates, fx_max_age_days, history, guard)


#: Entries each cache of a ``PriceRows`` holds before it starts over (a file of all-different times stays bounded).
_ROWS_CACHE = 65_536


class PriceRows:
    """``price_from_fields`` for the rows of one file: the same checks and the same events, with what repeats from
    row to row looked up once per distinct text as written (a product and unit, a quote time, a source) rather
    than once per row. A row its fast path is not sure of (any check that fails, a quote in another currency,
    which needs the rate at its time) goes through ``price_from_fields`` itself, which gives the event or the
    reason. The catalog must not change while the rows are read; the other arguments are fixed at creation."""

    def __init__(self, catalog: Catalog, tz: str, *, now: float | None = None, max_future_days: float | None = None,
                 rates: RateLookup | None = None, fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS,
                 history: bool = False, guard: Guard | None = None):
        self.catalog = catalog
        self.guard = guard
        self.tz = tz
        self.now = now
        self.max_future_days = max_future_days
        self.rates = rates
        self.fx_max_age_days = fx_max_age_days
        self.history = history
        # (product, unit) as written -> (name, key, factor to the product's unit, its unit text); False: slow path
        self._products: dict[tuple[str, str], tuple[str, str, float, str] | Literal[False]] = {}
        self._times: dict[str, tuple[float, str] | Literal[False]] = {}  # as_of as written -> (epoch, local date)
        self._sources: dict[str | None, str | Literal[False]] = {}  # source as written -> as stored
        try:
            self._zone: ZoneInfo | None = zone(tz)
        except Exception:  # every row says why (the slow path)
            self._zone = None

    def _product(self, product: str, unit: str) -> tuple[str, str, float, str] | Literal[False]:
        name, text = product.strip(), unit.strip()
        found: tuple[str, str, float, str] | Literal[False] = False
        if 0 < len(name) <= MAX_PRODUCT and 0 < len(text) <= MAX_UNIT:
            p = self.catalog.find(name)
            try:
                u: Unit | None = _unit(text)
            except Exception:  # the slow path says why
                u = None
            if p is not None and u is not None and u.currency == p.unit.currency:
                found = (p.name, p.key, u.factor_to(p.unit), _unit_text(p.unit))
        if len(self._products) >= _ROWS_CACHE:
            self._products.clear()
        self._products[(product, unit)] = found
        return found

    def _time(self, as_of: str) -> tuple[float, str] | Literal[False]:
        """``read_time`` of a time as written; False when it is not one (the slow path says why)."""
        text = as_of.strip()
        found: tuple[float, str] | Literal[False] = False
        if 0 < len(text) <= MAX_TIME:
            try:
                if len(text) == 10 or self._zone is None:
                    found = read_time(text, self.tz, "as_of")
                else:
                    dt = datetime.fromisoformat(text)
                    off = dt.utcoffset()  # fromisoformat: a fixed offset, or None (the slow path refuses it)
                    if off is not None:
                        # dt.timestamp() is (dt - epoch).total_seconds(): these microseconds over 10**6, one
                        # correctly rounded division, without building two timedeltas per row
                        us = (((dt.toordinal() - EPOCH_ORDINAL) * 86400 + dt.hour * 3600 + dt.minute * 60
                               + dt.second - off.days * 86400 - off.seconds) * 1_000_000
                              + dt.microsecond - off.microseconds)
                        found = (us / 1_000_000, iso_day(dt.astimezone(self._zone).toordinal()))
            except Exception:  # the slow path says why
                found = False
        if len(self._times) >= _ROWS_CACHE:
            self._times.clear()
        self._times[as_of] = found
        return found

    def _source(self, source: str | None) -> str | Literal[False]:
        text = source.strip() if source else None
        found: str | Literal[False] = False if text and len(text) > MAX_SOURCE else text or "manual"
        if len(self._sources) >= _ROWS_CACHE:
            self._sources.clear()
        self._sources[source] = found
        return found

    def __call__(self, product: str, price: float, unit: str, as_of: str, source: str | None = None,
                 id: str | None = None, low: float | None = None, high: float | None = None,
                 override: bool = False) -> PriceEvent:
        """The quote of one row, as ``price_from_fields`` makes it (the same arguments). Raises EventError."""
        resolved = self._products.get((product, unit))
        if resolved is None:
            resolved = self._product(product, unit)
        when = self._times.get(as_of)
        if when is None:
            when = self._time(as_of)
        src = self._sources.get(source)
        if src is None:
            src = self._source(source)
        if (resolved and when and src and 0 < price < math.inf and (low is None or 0 < low < math.inf)
                and (high is None or 0 < high < math.inf) and (not id or len(id) <= MAX_ID)
                and (low is None or price >= low) and (high is None or price <= high)):  # so low <= high
            name, key, factor, unit_text = resolved
            ts, day = when
            if self.max_future_days is None or ts <= (self.now if self.now is not None else time.time()) \
                    + self.max_future_days * 86400:
                if factor == 1.0:
                    value, lo, hi = price, low, high
                else:  # as price_event converts: in decimal
                    value = convert(price, factor)
                    lo = convert(low, factor) if low is not None else None
                    hi = convert(high, factor) if high is not None else None
                if MIN_PRICE <= value <= MAX_PRICE and (lo is None or math.isfinite(lo)) \
                        and (hi is None or math.isfinite(hi)):
                    eid = id.strip() if id else None
                    if not eid:
                        eid = "p-" + digest(key, src, ts, value, lo, hi)
                    ev = PriceEvent(eid, name, key, value, unit_text, ts, day, src, lo, hi, self.history)
                    guard = self.guard
                    if guard is not None:
                        if override:
                            guard.admit(ev)
                        else:
                            guard.check(ev, price, unit)
                    return ev
        return price_from_fields(product, price, unit, as_of, self.catalog, self.tz, source=source, id=id, low=low,
                                 high=high, now=self.now, max_future_days=self.max_future_days, rates=self.rates,
                                 fx_max_age_days=self.fx_max_age_days, history=self.history, guard=self.guard,
                                 override=override)
