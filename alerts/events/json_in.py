"""JSON in: how bytes from a sender become events, the one path of ``alerts publish``, backtests, feeds and the
HTTP app. A line is bounded in bytes and in nesting before anything is built from it (``json_lines``, msgspec:
no recursion, no line can exhaust the stack), a decoded object is checked against its schema and the catalog
(``parse_event``), and a run of them is read with the fx events among them converting the quotes after
(``parse_objects``). Every refusal is (line, reason); the valid events around a bad one still come through."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

import msgspec
from pydantic import ValidationError

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.events.fx import RateBook, RateLookup, parse_pair
from alerts.events.limits import DEFAULT_FX_MAX_AGE_DAYS, MAX_DEPTH, MAX_LINE_BYTES
from alerts.events.notice import notice_event
from alerts.events.prices import PriceFields, price_event
from alerts.events.sanity import Guard, QuoteHeld
from alerts.events.schema import FIELDS, FxIn, NewsIn, NoticeIn, PriceIn, explain
from alerts.events.times import check_not_future, parse_time
from alerts.events.wire import Event, FxEvent, NewsEvent, digest
from alerts.events.words import clip, did_you_mean, kind_of


def parse_event(obj: object, catalog: Catalog, tz: str, now: float | None = None, *,
                max_future_days: float | None = None, rates: RateLookup | None = None,
                fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS, guard: Guard | None = None) -> Event:
    """Validate one decoded JSON value. Raises EventError with a reason a trader can act on (QuoteHeld when
    ``guard``, the sanity check, holds a quote).

    ``now`` (epoch seconds, default the clock) is the publication time of news without one. With
    ``max_future_days``, an event dated more than that many days after ``now`` is refused: publish and
    file backtests pass ``ALERTS_MAX_FUTURE_DAYS``; rule tests, whose events live in their own time, do not.
    A quote in another currency than its product's is converted with ``rates`` (a ``RateBook``): the latest
    rate at or before the quote's time, at most ``fx_max_age_days`` older; without one it is refused.
    """
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {kind_of(obj)}")
    kind = obj.get("type")
    if kind == "price":
        try:
            p = PriceIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(explain(exc, "price")) from None
        fields = PriceFields(p.product, p.price, p.unit, p.as_of, p.source, p.id, p.low, p.high, p.override)
        return price_event(fields, catalog, tz, now, max_future_days, rates, fx_max_age_days, guard=guard)
    if kind == "news":
        try:
            n = NewsIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(explain(exc, "news")) from None
        if n.published_at is None:
            ts = now if now is not None else time.time()
        else:
            ts, _ = parse_time(n.published_at, tz, "published_at")
            check_not_future(ts, "published_at", n.published_at, tz, now, max_future_days)
        eid = n.id or "n-" + digest(n.source, n.url or n.headline)
        return NewsEvent(eid, n.headline, n.body, n.url, ts, n.source, tuple(n.tags))
    if kind == "fx":
        try:
            f = FxIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(explain(exc, "fx")) from None
        pair = parse_pair(f.pair)
        ts, day = parse_time(f.as_of, tz, "as_of")
        check_not_future(ts, "as_of", f.as_of, tz, now, max_future_days)
        eid = f.id or "x-" + digest(pair, f.source, ts, f.rate)
        return FxEvent(eid, pair, f.rate, ts, day, f.source)
    if kind == "notice":
        try:
            v = NoticeIn.model_validate(obj)
        except ValidationError as exc:
            raise EventError(explain(exc, "notice")) from None
        return notice_event(v, catalog, tz, now, max_future_days)
    if "type" not in obj:
        raise EventError("type: Field required (\"price\", \"news\", \"fx\" or \"notice\")")
    hint = did_you_mean(kind, FIELDS) if isinstance(kind, str) else ""
    raise EventError(f"type: expected 'price', 'news', 'fx' or 'notice', got {clip(kind)}{hint}")


_JSON = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"


def deeper_than(obj: object, limit: int) -> bool:
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


def decode_value(data: bytes, max_depth: int = MAX_DEPTH) -> object:
    """One JSON value (a line, an item of a batch), or EventError with the reason: not UTF-8, not JSON, a number out
    of range, nested deeper than ``max_depth``."""
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
    if isinstance(obj, dict | list) and deeper_than(obj, max_depth):
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
            yield n, decode_value(data, max_depth)
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
                  fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS,
                  guard: Guard | None = None) -> Iterator[tuple[int, Event]]:
    """(line, event) for each (line, decoded JSON) that is a valid event; the others go to ``errors``. A quote the
    sanity check (``guard``) holds goes to ``errors`` with the guard's message and is kept by the guard.
    Every fx event is added to ``rates`` (default: a new ``RateBook``) as it is read, so a quote in another
    currency is converted with the rates of the lines before it (and those ``rates`` knew before)."""
    book = rates if rates is not None else RateBook()
    for n, obj in items:
        try:
            event = parse_event(obj, catalog, tz, now, max_future_days=max_future_days, rates=book,
                                fx_max_age_days=fx_max_age_days, guard=guard)
        except QuoteHeld as held:
            errors.append((n, guard.hold(held, n) if guard is not None else str(held)))
            continue
        except EventError as exc:
            errors.append((n, str(exc)))
            continue
        except Exception as exc:  # a line must never take the valid ones around it down
            errors.append((n, f"cannot read this event ({type(exc).__name__}: {clip(str(exc), 200)})"))
            continue
        if isinstance(event, FxEvent):
            book.add(event)
        yield n, event


def parse_lines(lines: Iterable[str | bytes], catalog: Catalog, tz: str, errors: list[tuple[int, str]], *,
                now: float | None = None, max_future_days: float | None = None, rates: RateBook | None = None,
                fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS,
                guard: Guard | None = None) -> Iterator[tuple[int, Event]]:
    """JSON Lines -> (line, event) for each valid line; every other line goes to ``errors`` once, as
    (line, reason), in line order. What ``alerts publish`` and ``alerts backtest --events`` read (a quote in
    another currency is converted with the fx lines before it: ``parse_objects``)."""
    return parse_objects(json_lines(lines, errors), catalog, tz, errors, now=now, max_future_days=max_future_days,
                         rates=rates, fx_max_age_days=fx_max_age_days, guard=guard)


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
