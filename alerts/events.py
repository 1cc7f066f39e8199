"""Event models: what a price quote and a news item look like, and how a JSON line becomes one.

Events arrive as JSON objects. ``parse_event`` (pydantic, at the edge) validates one against the
catalog, resolves the product name or alias, converts the price into the product's quote unit (a
quote in another currency with the latest exchange rate before it: ``RateBook``, ``fx_rate``) and
gives every event a stable id (the one it carries, else a hash of its content), so the same event
published twice is recognised as one. What it returns is the typed event that goes on the stream
(``encode_wire``) and that evaluators decode (``decode_wire``, msgspec): parsed once, passed on typed.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from functools import lru_cache
from typing import IO, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from alerts.catalog import Catalog, Product, product_key
from alerts.errors import EventError
from alerts.units import Unit, UnitError, parse_unit

# --- limits: what one event may hold (README "Limits"). A line or field beyond them is refused with its
# reason; nothing is truncated. ---------------------------------------------------------------------------

#: Bytes of one JSON Lines line (without its line break), checked before it is decoded.
MAX_LINE_BYTES = 2 * 1024 * 1024
#: Nesting of arrays and objects in one line; an event needs 2 (the object and its tags).
MAX_DEPTH = 16
#: Characters of each text field, after surrounding white space is stripped.
MAX_ID = 200
MAX_SOURCE = 100
MAX_PRODUCT = 100
MAX_UNIT = 32
MAX_PAIR = 32
MAX_TIME = 64
MAX_HEADLINE = 1_000
MAX_BODY = 200_000
MAX_URL = 2_048
MAX_TAGS = 50
MAX_TAG = 100
#: A quote or article dated further ahead of now than this is refused (``ALERTS_MAX_FUTURE_DAYS``).
DEFAULT_MAX_FUTURE_DAYS = 1.0
#: A quote in another currency than its product's is converted with a rate at most this much older
#: (``ALERTS_FX_MAX_AGE_DAYS``).
DEFAULT_FX_MAX_AGE_DAYS = 7.0

#: Every limit by what it limits, for the README table and the tests.
LIMITS: dict[str, int] = {
    "line (bytes)": MAX_LINE_BYTES, "nesting depth": MAX_DEPTH, "id": MAX_ID, "source": MAX_SOURCE,
    "product": MAX_PRODUCT, "unit": MAX_UNIT, "pair": MAX_PAIR, "as_of, published_at": MAX_TIME,
    "headline": MAX_HEADLINE, "body": MAX_BODY, "url": MAX_URL, "tags (count)": MAX_TAGS, "each tag": MAX_TAG,
}


_Product = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_PRODUCT)]
_Unit = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_UNIT)]
_Pair = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_PAIR)]
_Time = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TIME)]  # ISO text, not a number
_Source = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_SOURCE)]
_Id = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID)]
_Headline = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_HEADLINE)]
_Body = Annotated[str, Strict(), Field(max_length=MAX_BODY)]
_Url = Annotated[str, Strict(), Field(max_length=MAX_URL)]
_Tag = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TAG)]
#: A JSON number: an integer or a float, never a boolean or a string.
_Number = Annotated[float, Strict()]


class _PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["price"]
    product: _Product
    price: _Number
    unit: _Unit
    as_of: _Time  # a date or a datetime with offset
    source: _Source = "manual"
    id: _Id | None = None
    low: _Number | None = None
    high: _Number | None = None

    @field_validator("price", "low", "high")
    @classmethod
    def _finite_positive(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError("must be a positive number")
        return v


class _NewsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["news"]
    headline: _Headline
    body: _Body = ""
    url: _Url | None = None
    published_at: _Time | None = None
    source: _Source = "manual"
    id: _Id | None = None
    tags: list[_Tag] = Field(default=[], max_length=MAX_TAGS)


class _FxIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["fx"]
    pair: _Pair
    rate: _Number
    as_of: _Time  # a date or a datetime with offset
    source: _Source = "manual"
    id: _Id | None = None

    @field_validator("rate")
    @classmethod
    def _finite_positive(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError("must be a positive number")
        return v


_FIELDS = {"price": tuple(_PriceIn.model_fields), "news": tuple(_NewsIn.model_fields),
           "fx": tuple(_FxIn.model_fields)}


class PriceEvent(msgspec.Struct, frozen=True, tag="price", tag_field="type"):
    """A quote, validated and converted: the product by catalog name and key, the price in the product's
    quote unit, the quote time in epoch seconds and as a local date."""

    id: str
    product: str  # catalog name
    product_key: str
    price: float  # in the product's quote unit
    unit: str  # the product's quote unit
    as_of: float  # epoch seconds
    as_of_date: str  # ISO date in the service timezone
    source: str
    low: float | None = None
    high: float | None = None
    #: Imported history (``alerts import``): evaluated into state and history, but it fires no alert.
    history: bool = False


class NewsEvent(msgspec.Struct, frozen=True, tag="news", tag_field="type"):
    id: str
    headline: str
    body: str
    url: str | None
    published_at: float
    source: str
    tags: tuple[str, ...] = ()

    @property
    def article_keys(self) -> tuple[str, ...]:
        """Keys under which this article is remembered: its id and its url, when it has them."""
        keys = [f"id:{self.id}"]
        if self.url:
            keys.append("url:" + _digest(self.url.strip()))
        return tuple(keys)


class FxEvent(msgspec.Struct, frozen=True, tag="fx", tag_field="type"):
    """An exchange rate: 1 ``base`` = ``rate`` ``quote`` (``USD/CNY`` 7.10: one US dollar is 7.10 yuan)."""

    id: str
    pair: str  # "BASE/QUOTE", canonical currency codes: USD/CNY
    rate: float
    as_of: float  # epoch seconds
    as_of_date: str  # ISO date in the service timezone
    source: str

    @property
    def series(self) -> str:
        """The key of this pair's rates in event time (beside product keys): ``fx:USD/CNY``."""
        return fx_series(self.pair)


def fx_series(pair: str) -> str:
    return f"fx:{pair}"


Event = PriceEvent | NewsEvent | FxEvent


def event_time(ev: Event) -> float:
    """When an event happened: a quote's or a rate's as_of, an article's publication time (epoch seconds)."""
    return ev.published_at if isinstance(ev, NewsEvent) else ev.as_of


def _digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:20]


@lru_cache(maxsize=4096)
def _day_start(day: date, tz: str) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def parse_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    """A date (that day in ``tz``) or an ISO datetime with offset -> (epoch seconds, local ISO date)."""
    try:
        return _parse_time(value, tz, field)
    except OverflowError:
        raise EventError(f"{field}: {value!s} is out of range") from None


@lru_cache(maxsize=4096)  # quotes of one day come in runs: parsing a date is most of the time of a quote's time
def _parse_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    return _read_time(value, tz, field)


@lru_cache(maxsize=4096)
def _iso_day(ordinal: int) -> str:
    """The ISO text of a date by its ordinal: formatted once per day, not once per quote."""
    return date.fromordinal(ordinal).isoformat()


def _read_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    """``_parse_time`` without its cache (``PriceRows`` keeps its own, one entry per time as written)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise EventError(f"{field}: {value!r} is not an ISO date or datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError(f"{field}: {value.isoformat()!r} has no UTC offset; add one such as +08:00")
        return value.timestamp(), _iso_day(value.astimezone(_zone(tz)).toordinal())
    return _day_start(value, tz), value.isoformat()


def local_date(ts: float, tz: str) -> str:
    """The ISO date of an epoch time in ``tz``."""
    return datetime.fromtimestamp(ts, _zone(tz)).date().isoformat()


def _clip(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 5] + "...'"


def _kind_of(value: object) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return f"the number {text if len(text) <= 40 else text[:35] + '...'}"
    if isinstance(value, str):
        return f"the text {_clip(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (ignoring case), or ``""``."""
    folded = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(word.casefold()[:MAX_PRODUCT], list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def _explain(exc: ValidationError, kind: str) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        if len(loc) > 60:  # an unknown field's name is the sender's and may be long
            loc = loc[:55] + "..."
        typ, value, ctx = err["type"], err.get("input"), err.get("ctx", {})
        if typ == "extra_forbidden":
            msg = "unknown field" + did_you_mean(loc, _FIELDS[kind])
        elif typ == "float_type" and isinstance(value, int) and not isinstance(value, bool):
            msg = "out of range"  # an integer beyond any float
        elif typ == "float_type":
            msg = f"must be a number, not {_kind_of(value)}"
        elif typ == "string_unicode":  # a lone surrogate: Python callers can pass one, JSON cannot
            msg = "contains characters that are not Unicode text (lone surrogates)"
        elif typ == "string_type" and loc in ("as_of", "published_at"):
            msg = f'must be an ISO date or datetime in a string, such as "2025-03-11", not {_kind_of(value)}'
        elif typ == "string_type":
            msg = f"must be text (a JSON string), not {_kind_of(value)}"
        elif typ == "list_type":
            msg = f"must be an array of texts, not {_kind_of(value)}"
        elif typ == "string_too_long" and isinstance(value, str):
            msg = f"{len(value):,} characters; the limit is {ctx['max_length']:,}"
        elif typ == "too_long" and isinstance(value, list):
            msg = f"{len(value):,} items; the limit is {ctx['max_length']:,}"
        elif typ == "value_error":
            msg = err["msg"].removeprefix("Value error, ")
        else:
            msg = err["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


@lru_cache(maxsize=256)
def _unit(text: str) -> Any:
    return parse_unit(text)


def _unknown_product(name: str, catalog: Catalog) -> EventError:
    names: dict[str, str] = {}
    for product in catalog.products.values():
        for n in product.all_names:  # the catalog name first: "PrNd oxide" folds as "Pr-Nd oxide" does
            names.setdefault(product_key(n), n)
    close = difflib.get_close_matches(product_key(name)[:MAX_PRODUCT], list(names), n=1, cutoff=0.6)
    hint = f"did you mean {names[close[0]]!r}?" if close else "not in the catalog or a products: list"
    return EventError(f"product: unknown product {name!r} ({hint})")


def _num(x: float) -> str:
    return f"{x:,.12g}"


def _days(n: float) -> str:
    return f"{n:g} day" if n == 1 else f"{n:g} days"


def _check_not_future(ts: float, field: str, written: str, tz: str, now: float | None,
                      max_future_days: float | None) -> None:
    if max_future_days is None:
        return
    ref = now if now is not None else time.time()
    if ts > ref + max_future_days * 86400:
        local = datetime.fromtimestamp(ref, _zone(tz)).strftime("%Y-%m-%d %H:%M")
        raise EventError(f"{field}: {written} is in the future, more than {_days(max_future_days)} after now "
                         f"({local} {tz}); date an event when it happened (limit: ALERTS_MAX_FUTURE_DAYS)")


# --- currencies: FX pairs, the rates a quote in another currency is converted with -------------------------

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
        raise EventError(f"pair: {_clip(text)} is not two currencies separated by '/', such as USD/CNY")
    codes = []
    for part in parts:
        code = parse_currency(part)
        if code is None:
            raise EventError(f"pair: unknown currency {_clip(part.strip())} in {_clip(text)}: a currency is a "
                             "3-letter code such as USD, CNY or EUR (or yuan, RMB, $)")
        codes.append(code)
    if codes[0] == codes[1]:
        raise EventError(f"pair: {_clip(text)} names {codes[0]} twice; a pair converts between two currencies, "
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


def _currency_factor(p: _PriceIn | _PriceFields, unit: Unit, product: Product, ts: float, tz: str,
                     rates: RateLookup | None, max_age_days: float) -> float:
    """The factor from a quote in another currency than its product's to the product's unit: the rate and
    the mass. EventError saying how to fix it when there is no rate recent enough."""
    cur, pcur = unit.currency, product.unit.currency
    mass = Unit(cur, product.unit.mass)
    found = fx_rate(cur, pcur, ts, rates)
    pair = f"{cur}/{pcur}"
    fix = (f"publish an fx event for {pair} before this quote, such as "
           f'{{"type": "fx", "pair": "{pair}", "rate": ..., "as_of": "{local_date(ts, tz)}", "source": ...}}, '
           f"or quote it as a separate product in {cur} (a products: entry such as "
           f"{{name: {product.name} FOB, unit: {unit}}})")
    head = f"unit: {_num(p.price)} {p.unit} is in {cur} but {product.name} is quoted in {product.unit_text}"
    if found is None:
        raise EventError(f"{head}, and no {pair} rate is known at or before {p.as_of}; {fix}")
    multiplier, used, rate, rate_time = found
    if rate_time < ts - max_age_days * 86400:
        raise EventError(f"{head}; the latest {used} rate before it ({_num(rate)} on {local_date(rate_time, tz)}) is "
                         f"more than {_days(max_age_days)} older than the quote (ALERTS_FX_MAX_AGE_DAYS); {fix}")
    return unit.factor_to(mass) * multiplier


class _PriceFields(msgspec.Struct, frozen=True):
    """The fields of a quote, typed and within the limits (what ``_PriceIn`` or ``price_from_fields`` checked)."""

    product: str
    price: float
    unit: str
    as_of: str
    source: str = "manual"
    id: str | None = None
    low: float | None = None
    high: float | None = None


def _price_event(p: _PriceIn | _PriceFields, catalog: Catalog, tz: str, now: float | None,
                 max_future_days: float | None, rates: RateLookup | None, fx_max_age_days: float,
                 history: bool = False) -> PriceEvent:
    """The rules of a quote past its fields' types and limits: catalog, unit, range, time, currency, id."""
    product = catalog.find(p.product)
    if product is None:
        raise _unknown_product(p.product, catalog)
    try:
        unit: Unit = _unit(p.unit)
    except UnitError as exc:
        raise EventError(f"unit: {exc}") from None
    if p.low is not None and p.high is not None and p.low > p.high:
        raise EventError(f"low: {_num(p.low)} is above high {_num(p.high)}")
    if (p.low is not None and p.price < p.low) or (p.high is not None and p.price > p.high):
        span = f"{_num(p.low) if p.low is not None else ''}..{_num(p.high) if p.high is not None else ''}"
        raise EventError(f"price: {_num(p.price)} is outside its low..high range {span}")
    ts, day = parse_time(p.as_of, tz, "as_of")
    _check_not_future(ts, "as_of", p.as_of, tz, now, max_future_days)
    foreign = unit.currency != product.unit.currency
    if foreign:
        factor = _currency_factor(p, unit, product, ts, tz, rates, fx_max_age_days)
    else:
        factor = unit.factor_to(product.unit)
    low = p.low * factor if p.low is not None else None
    high = p.high * factor if p.high is not None else None
    price = p.price * factor
    if not math.isfinite(price) or not math.isfinite(low or 1.0) or not math.isfinite(high or 1.0):
        raise EventError(f"price: {p.price} {p.unit} is out of range")
    if p.id:
        eid = p.id
    elif foreign:  # the quote as written: the same quote is the same event whatever the rate
        eid = "p-" + _digest(product.key, p.source, ts, p.price, p.low, p.high, unit)
    else:
        eid = "p-" + _digest(product.key, p.source, ts, price, low, high)
    return PriceEvent(eid, product.name, product.key, price, _unit_text(product.unit), ts, day, p.source, low, high,
                      history)


@lru_cache(maxsize=256)
def _unit_text(unit: Unit) -> str:
    """``Product.unit_text``, formatted once per unit rather than once per quote."""
    return str(unit)


def _text_field(name: str, value: str | None, limit: int, required: bool) -> str | None:
    """A text field as ``_PriceIn`` takes it: stripped, not empty when given, within its limit."""
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
                      history: bool = False) -> PriceEvent:
    """A quote from fields already split and typed (a CSV row: ``alerts.ingest.csv_import``), checked with the
    same limits and rules as ``parse_event`` (and the same event id), without building a JSON object and a
    pydantic model for it. An empty ``source``, ``id``, ``low`` or ``high`` is absent. Raises EventError."""
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
    fields = _PriceFields(product, _number_field("price", price) or 0.0, unit, as_of, source or "manual", id,
                          _number_field("low", low), _number_field("high", high))
    return _price_event(fields, catalog, tz, now, max_future_days, rates, fx_max_age_days, history)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
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
                 history: bool = False):
        self.catalog = catalog
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
            self._zone: ZoneInfo | None = _zone(tz)
        except Exception:  # every row says why (the slow path)
            self._zone = None

    def _product(self, product: str, unit: str) -> tuple[str, str, float, str] | Literal[False]:
        name, text = product.strip(), unit.strip()
        found: tuple[str, str, float, str] | Literal[False] = False
        if 0 < len(name) <= MAX_PRODUCT and 0 < len(text) <= MAX_UNIT:
            p = self.catalog.find(name)
            try:
                u = _unit(text)
            except Exception:  # the slow path says why
                u = None
            if p is not None and u is not None and u.currency == p.unit.currency:
                found = (p.name, p.key, u.factor_to(p.unit), _unit_text(p.unit))
        if len(self._products) >= _ROWS_CACHE:
            self._products.clear()
        self._products[(product, unit)] = found
        return found

    def _time(self, as_of: str) -> tuple[float, str] | Literal[False]:
        """``_read_time`` of a time as written; False when it is not one (the slow path says why)."""
        text = as_of.strip()
        found: tuple[float, str] | Literal[False] = False
        if 0 < len(text) <= MAX_TIME:
            try:
                if len(text) == 10 or self._zone is None:
                    found = _read_time(text, self.tz, "as_of")
                else:
                    dt = datetime.fromisoformat(text)
                    off = dt.utcoffset()  # fromisoformat: a fixed offset, or None (the slow path refuses it)
                    if off is not None:
                        # dt.timestamp() is (dt - epoch).total_seconds(): these microseconds over 10**6, one
                        # correctly rounded division, without building two timedeltas per row
                        us = (((dt.toordinal() - _EPOCH_ORDINAL) * 86400 + dt.hour * 3600 + dt.minute * 60
                               + dt.second - off.days * 86400 - off.seconds) * 1_000_000
                              + dt.microsecond - off.microseconds)
                        found = (us / 1_000_000, _iso_day(dt.astimezone(self._zone).toordinal()))
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
                 id: str | None = None, low: float | None = None, high: float | None = None) -> PriceEvent:
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
                value = price * factor
                lo = low * factor if low is not None else None
                hi = high * factor if high is not None else None
                if math.isfinite(value) and (lo is None or math.isfinite(lo)) and (hi is None or math.isfinite(hi)):
                    eid = id.strip() if id else None
                    if not eid:
                        eid = "p-" + _digest(key, src, ts, value, lo, hi)
                    return PriceEvent(eid, name, key, value, unit_text, ts, day, src, lo, hi, self.history)
        return price_from_fields(product, price, unit, as_of, self.catalog, self.tz, source=source, id=id, low=low,
                                 high=high, now=self.now, max_future_days=self.max_future_days, rates=self.rates,
                                 fx_max_age_days=self.fx_max_age_days, history=self.history)


def parse_event(obj: object, catalog: Catalog, tz: str, now: float | None = None, *,
                max_future_days: float | None = None, rates: RateLookup | None = None,
                fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS) -> Event:
    """Validate one decoded JSON value. Raises EventError with a reason a trader can act on.

    ``now`` (epoch seconds, default the clock) is the publication time of news without one. With
    ``max_future_days``, an event dated more than that many days after ``now`` is refused: publish and
    file backtests pass ``ALERTS_MAX_FUTURE_DAYS``; rule tests, whose events live in their own time, do not.
    A quote in another currency than its product's is converted with ``rates`` (a ``RateBook``): the latest
    rate at or before the quote's time, at most ``fx_max_age_days`` older; without one it is refused.
    """
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {_kind_of(obj)}")
    kind = obj.get("type")
    if kind == "price":
        try:
            p = _PriceIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(_explain(exc, "price")) from None
        return _price_event(p, catalog, tz, now, max_future_days, rates, fx_max_age_days)
    if kind == "news":
        try:
            n = _NewsIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(_explain(exc, "news")) from None
        if n.published_at is None:
            ts = now if now is not None else time.time()
        else:
            ts, _ = parse_time(n.published_at, tz, "published_at")
            _check_not_future(ts, "published_at", n.published_at, tz, now, max_future_days)
        eid = n.id or "n-" + _digest(n.source, n.url or n.headline)
        return NewsEvent(eid, n.headline, n.body, n.url, ts, n.source, tuple(n.tags))
    if kind == "fx":
        try:
            f = _FxIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(_explain(exc, "fx")) from None
        pair = parse_pair(f.pair)
        ts, day = parse_time(f.as_of, tz, "as_of")
        _check_not_future(ts, "as_of", f.as_of, tz, now, max_future_days)
        eid = f.id or "x-" + _digest(pair, f.source, ts, f.rate)
        return FxEvent(eid, pair, f.rate, ts, day, f.source)
    if "type" not in obj:
        raise EventError("type: Field required (\"price\", \"news\" or \"fx\")")
    hint = did_you_mean(kind, _FIELDS) if isinstance(kind, str) else ""
    raise EventError(f"type: expected 'price', 'news' or 'fx', got {_clip(kind)}{hint}")


_JSON = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"


def _deeper_than(obj: object, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (without recursion)."""
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _decode(data: bytes, max_depth: int) -> object:
    """One JSON value, or EventError with the reason."""
    try:
        obj = _JSON.decode(data)
    except RecursionError:
        raise EventError(f"nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError as exc:
        raise EventError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except msgspec.ValidationError as exc:
        raise EventError(f"a number is out of range: {exc}") from None
    except msgspec.DecodeError as exc:
        try:
            data.decode("utf-8")  # only now: bytes outside strings that are not UTF-8 deserve their own reason
        except UnicodeDecodeError as bad:
            raise EventError(f"not UTF-8 text: {bad.reason} at byte {bad.start}") from None
        raise EventError(f"not valid JSON: {exc}") from None
    if isinstance(obj, dict | list) and _deeper_than(obj, max_depth):
        raise EventError(f"nested more than {max_depth} levels deep")
    return obj


def json_lines(lines: Iterable[str | bytes], errors: list[tuple[int, str]], *, max_bytes: int = MAX_LINE_BYTES,
               max_depth: int = MAX_DEPTH) -> Iterator[tuple[int, object]]:
    """The JSON values of JSON Lines with their line numbers (from 1). Blank lines and lines starting
    with # are skipped. A line that is longer than ``max_bytes``, not UTF-8, not JSON or nested deeper
    than ``max_depth`` is added to ``errors`` as (line, reason), and the lines after it are still read.
    The one decoder of publish and backtests (msgspec: no recursion, no line can exhaust the stack)."""
    for n, raw in enumerate(lines, 1):
        if isinstance(raw, str):
            try:
                data = raw.encode("utf-8")
            except UnicodeEncodeError as exc:
                errors.append((n, f"not UTF-8 text: {exc.reason} at character {exc.start}"))
                continue
        else:
            data = raw
        if n == 1 and data.startswith(_BOM):
            data = data[len(_BOM):]
        if len(data) > max_bytes and len(data.rstrip(b"\r\n")) > max_bytes:
            errors.append((n, f"line longer than {max_bytes:,} bytes; an event must be smaller (README: Limits)"))
            continue
        data = data.strip()
        if not data or data.startswith(b"#"):
            continue
        try:
            yield n, _decode(data, max_depth)
        except EventError as exc:
            errors.append((n, str(exc)))


def read_lines(fh: IO[Any], max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | str]:
    """The lines of a file, each read with a bounded buffer: a line longer than ``max_bytes`` comes out
    cut just past the limit (so ``json_lines`` reports it) and its rest is skipped, never held whole."""
    cap = max_bytes + 2  # room for \r\n
    while True:
        line = fh.readline(cap)
        if not line:
            return
        newline = b"\n" if isinstance(line, bytes) else "\n"
        if len(line) == cap and not line.endswith(newline):
            while True:
                rest = fh.readline(65536)
                if not rest or rest.endswith(newline):
                    break
        yield line


def parse_objects(items: Iterable[tuple[int, object]], catalog: Catalog, tz: str, errors: list[tuple[int, str]],
                  *, now: float | None = None, max_future_days: float | None = None, rates: RateBook | None = None,
                  fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS) -> Iterator[tuple[int, Event]]:
    """(line, event) for each (line, decoded JSON) that is a valid event; the others go to ``errors``.
    Every fx event is added to ``rates`` (default: a new ``RateBook``) as it is read, so a quote in another
    currency is converted with the rates of the lines before it (and those ``rates`` knew before)."""
    book = rates if rates is not None else RateBook()
    for n, obj in items:
        try:
            event = parse_event(obj, catalog, tz, now, max_future_days=max_future_days, rates=book,
                                fx_max_age_days=fx_max_age_days)
        except EventError as exc:
            errors.append((n, str(exc)))
            continue
        except Exception as exc:  # a line must never take the valid ones around it down
            errors.append((n, f"cannot read this event ({type(exc).__name__}: {_clip(str(exc), 200)})"))
            continue
        if isinstance(event, FxEvent):
            book.add(event)
        yield n, event


def parse_lines(lines: Iterable[str | bytes], catalog: Catalog, tz: str, errors: list[tuple[int, str]], *,
                now: float | None = None, max_future_days: float | None = None, rates: RateBook | None = None,
                fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS) -> Iterator[tuple[int, Event]]:
    """JSON Lines -> (line, event) for each valid line; every other line goes to ``errors`` once, as
    (line, reason), in line order. What ``alerts publish`` and ``alerts backtest --events`` read (a quote in
    another currency is converted with the fx lines before it: ``parse_objects``)."""
    return parse_objects(json_lines(lines, errors), catalog, tz, errors, now=now, max_future_days=max_future_days,
                         rates=rates, fx_max_age_days=fx_max_age_days)


def parse_line(line: str | bytes, catalog: Catalog, tz: str, now: float | None = None, *,
               max_future_days: float | None = None, rates: RateLookup | None = None,
               fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS) -> Event:
    """One JSON line -> its event, or EventError (a blank or # line is not an event)."""
    errors: list[tuple[int, str]] = []
    decoded = list(json_lines([line], errors))
    if errors:
        raise EventError(errors[0][1])
    if not decoded:
        raise EventError("no event on this line (blank, or a # comment)")
    return parse_event(decoded[0][1], catalog, tz, now, max_future_days=max_future_days, rates=rates,
                       fx_max_age_days=fx_max_age_days)


_WIRE_ENCODER = msgspec.json.Encoder()
_WIRE_DECODER = msgspec.json.Decoder(PriceEvent | NewsEvent | FxEvent)


def encode_wire(event: Event) -> bytes:
    """The event as it goes on the event stream: its typed form, already validated and converted, so
    the evaluator decodes it without validating it again (``decode_wire``)."""
    return _WIRE_ENCODER.encode(event)


def decode_wire(raw: bytes | str) -> Event:
    """An event from ``encode_wire``. Raises EventError when the bytes are not one."""
    try:
        event: Event = _WIRE_DECODER.decode(raw)
        return event
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventError(f"not an event on the wire: {exc}") from None
