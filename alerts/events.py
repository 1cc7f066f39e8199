"""Event models: what a price quote and a news item look like, and how a JSON line becomes one.

Events arrive as JSON objects. ``parse_event`` (pydantic, at the edge) validates one against the
catalog, resolves the product name or alias, converts the price into the product's quote unit and
gives every event a stable id (the one it carries, else a hash of its content), so the same event
published twice is recognised as one. What it returns is the typed event that goes on the stream
(``encode_wire``) and that evaluators decode (``decode_wire``, msgspec): parsed once, passed on typed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.units import UnitError, parse_unit


class _PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["price"]
    product: str = Field(min_length=1)
    price: float
    unit: str
    as_of: str  # a date or a datetime with offset, as ISO text (a bare number is not a date)
    source: str = Field(default="manual", min_length=1)
    id: str | None = Field(default=None, min_length=1)
    low: float | None = None
    high: float | None = None

    @field_validator("price", "low", "high")
    @classmethod
    def _finite_positive(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError("must be a positive number")
        return v


class _NewsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["news"]
    headline: str = Field(min_length=1)
    body: str = ""
    url: str | None = None
    published_at: str | None = None
    source: str = Field(default="manual", min_length=1)
    id: str | None = Field(default=None, min_length=1)
    tags: list[str] = []


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


Event = PriceEvent | NewsEvent


def event_time(ev: Event) -> float:
    """When an event happened: a quote's as_of, an article's publication time (epoch seconds)."""
    return ev.as_of if isinstance(ev, PriceEvent) else ev.published_at


def _digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(p) for p in parts).encode(), usedforsecurity=False).hexdigest()[:20]


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


def _parse_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise EventError(f"{field}: {value!r} is not an ISO date or datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError(f"{field}: {value.isoformat()!r} has no UTC offset; add one such as +08:00")
        return value.timestamp(), value.astimezone(_zone(tz)).date().isoformat()
    return _day_start(value, tz), value.isoformat()


def local_date(ts: float, tz: str) -> str:
    """The ISO date of an epoch time in ``tz``."""
    return datetime.fromtimestamp(ts, _zone(tz)).date().isoformat()


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


@lru_cache(maxsize=256)
def _unit(text: str) -> Any:
    return parse_unit(text)


def parse_event(obj: object, catalog: Catalog, tz: str, now: float | None = None) -> Event:
    """Validate one decoded JSON value. Raises EventError with a reason a trader can act on."""
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == "price":
        try:
            p = _PriceIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(_explain(exc)) from None
        product = catalog.find(p.product)
        if product is None:
            raise EventError(f"product: unknown product {p.product!r} (not in the catalog or a products: list)")
        try:
            factor = _unit(p.unit).factor_to(product.unit)
        except UnitError as exc:
            raise EventError(f"unit: {exc}") from None
        ts, day = parse_time(p.as_of, tz, "as_of")
        low = p.low * factor if p.low is not None else None
        high = p.high * factor if p.high is not None else None
        price = p.price * factor
        if not math.isfinite(price) or not math.isfinite(low or 1.0) or not math.isfinite(high or 1.0):
            raise EventError(f"price: {p.price} {p.unit} is out of range")
        eid = p.id or "p-" + _digest(product.key, p.source, ts, price, low, high)
        return PriceEvent(eid, product.name, product.key, price, product.unit_text, ts, day, p.source, low, high)
    if kind == "news":
        try:
            n = _NewsIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(_explain(exc)) from None
        if n.published_at is None:
            ts = now if now is not None else datetime.now(UTC).timestamp()
        else:
            ts, _ = parse_time(n.published_at, tz, "published_at")
        eid = n.id or "n-" + _digest(n.source, n.url or n.headline)
        return NewsEvent(eid, n.headline, n.body, n.url, ts, n.source, tuple(n.tags))
    raise EventError(f"type: expected 'price' or 'news', got {kind!r}")


def json_lines(lines: Iterable[str | bytes], errors: list[tuple[int, str]]) -> Iterator[tuple[int, object]]:
    """The JSON values of JSON Lines with their line numbers (from 1). Blank lines and lines starting
    with # are skipped; a line that is not UTF-8 or not JSON is added to ``errors`` as (line, reason),
    and the lines after it are still read."""
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            errors.append((n, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
            continue
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            yield n, json.loads(text)
        except ValueError as exc:
            errors.append((n, f"not valid JSON: {exc}"))


def parse_line(line: str | bytes, catalog: Catalog, tz: str, now: float | None = None) -> Event:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise EventError(f"not valid JSON: {exc}") from None
    return parse_event(obj, catalog, tz, now)


_WIRE_ENCODER = msgspec.json.Encoder()
_WIRE_DECODER = msgspec.json.Decoder(PriceEvent | NewsEvent)


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
