"""CSV price history in (``alerts import``): each row a quote, validated with the rules of every event.

Columns are found by their header names (case-insensitive): ``product``, ``price``, ``unit``, ``as_of`` (or
``date``), and optionally ``source``, ``low``, ``high``, ``id``, ``override``; ``--map price=avg,as_of=day`` names
others.
A row is checked exactly as a published event is (``alerts.events.price_from_fields``: the same limits, catalog
aliases, units, future check and currency conversion as ``parse_event``), without a JSON object or a pydantic
model per row, and with what repeats from row to row (a product and unit, a date, a source as written) looked up
once (``alerts.events.PriceRows``). A bad row is reported as (line, reason) and skipped; the others are all
imported. Each quote passes the quote sanity check every door applies (``alerts.events.sanity``, through a
``QuoteGuard``): one that looks wrong (a per-kg product written per tonne) is held in the quarantine and reported
on its line (``held (h-...): ...``); a row whose ``override`` cell is true (yes, 1) is not checked.

Imported quotes are history: they go on the event streams marked ``history`` (``PriceEvent.history``) and the
evaluators fold them into the product states, the quote history and the spread legs without firing any alert;
``live`` publishes them as ordinary events instead. Rows are sent in time order (a file newest first is still
history in order, not a run of late quotes), and a quote the stored history already holds (same event id: the
row's ``id``, else a hash of its content) or that the file repeats is not sent again, so importing a file a
second time adds nothing.
"""

from __future__ import annotations

import csv
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import msgspec
import redis

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.events import (
    PriceEvent,
    PriceRows,
    RateLookup,
)
from alerts.events.sanity import Guard, QuoteHeld
from alerts.store.imports import StreamAppender, same_quotes_elsewhere, stored_ids
from alerts.store.keys import Keys
from alerts.store.quotes import QuoteGuard
from alerts.store.streams import shard_of

#: The columns a row may have, in the order ``price_from_fields`` takes them.
COLUMNS = ("product", "price", "unit", "as_of", "source", "low", "high", "id", "override")
REQUIRED = ("product", "price", "unit", "as_of")
#: Other header names of a column.
ALIASES = {"date": "as_of"}
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|[+-]?\.\d+(?:[eE][+-]?\d+)?")


class CsvError(EventError):
    """The file cannot be imported at all (its header, a --map): (line, reason)."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line
        self.reason = reason


def parse_map(text: str | None) -> dict[str, str]:
    """``product=name,price=avg`` -> {column: header name}. Raises CsvError (line 0) naming what is wrong."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        col, sep, name = part.partition("=")
        col, name = col.strip().lower(), name.strip()
        col = ALIASES.get(col, col)
        if not sep or not name:
            raise CsvError(0, f"--map: {part.strip()!r} is not COLUMN=HEADER, such as price=avg")
        if col not in COLUMNS:
            raise CsvError(0, f"--map: unknown column {col!r}; the columns are {', '.join(COLUMNS)}")
        out[col] = name
    return out


def header_indexes(header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Where each column is in ``header``: by --map, else by its name (case-insensitive). Raises CsvError."""
    found: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = cell.lstrip("\ufeff").strip().casefold()  # a BOM the file was not opened with utf-8-sig for
        found.setdefault(name, i)
    have = ", ".join(repr(c.strip()) for c in header)
    out: dict[str, int] = {}
    for col in COLUMNS:
        if col in mapping:
            mapped = found.get(mapping[col].strip().casefold())
            if mapped is None:
                raise CsvError(1, f"--map {col}={mapping[col]}: no column {mapping[col]!r} in the header ({have})")
            out[col] = mapped
            continue
        for name in (col, *(a for a, c in ALIASES.items() if c == col)):
            if name in found:
                out[col] = found[name]
                break
    missing = [c for c in REQUIRED if c not in out]
    if missing:
        raise CsvError(1, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}: the header has "
                          f"{have}; name them so, or map them with --map {missing[0]}=HEADER")
    return out


def _number(col: str, text: str) -> float | None:
    """A number as written in a CSV cell (``1705``, ``444,000``, ``1.2e3``); empty: None. Raises EventError."""
    if text and "0" <= text[0] <= "9" and "0" <= text[-1] <= "9" and "_" not in text and text.isascii():
        try:
            return float(text)  # digits at both ends and no "_": what float() takes is a plain number
        except ValueError:
            pass  # 444,000
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        shown = text if len(text) <= 40 else text[:35] + "..."
        raise EventError(f"{col}: must be a number, not {shown!r}")
    return float(text.replace(",", ""))


_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"", "false", "no", "n", "0"})


def _flag(text: str) -> bool:
    """An ``override`` cell: true, yes, 1 (any case) or false, no, 0, empty. Raises EventError."""
    word = text.strip().casefold()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise EventError(f"override: must be true or false (yes/no, 1/0), not {text.strip()[:40]!r}")


@dataclass
class ImportReport:
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0  # quotes sent
    already: int = 0  # quotes the stored history or an earlier row of the file already held
    out_of_order: int = 0  # the first line whose quote is older than one before it (same product and source)
    late: int = 0  # quotes sent after a newer one of theirs had been sent: stored, but late
    held: int = 0  # quotes the sanity check held in the quarantine (in ``errors`` too)
    warnings: list[str] = field(default_factory=list)  # quotes stored already under another source name
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


class Progress:
    """A progress bar on a terminal (stderr): how much of the file is read, then how much is sent."""

    def __init__(self, total_bytes: int, stream: TextIO | None = None, every: float = 0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.total = max(1, total_bytes)
        self.every = every
        self._next = 0.0
        self._shown = False

    def show(self, phase: str, done: float, total: float, rows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.every
        frac = min(1.0, done / total) if total else 1.0
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        self.stream.write(f"\r{phase:<8} [{bar}] {frac:4.0%} {rows:,} rows")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


def _position(fh: TextIO) -> Callable[[], int]:
    """How far into the file reading is, in bytes (of the underlying file; 0 when it has none)."""
    raw = getattr(fh, "buffer", None)
    if raw is None or not hasattr(raw, "tell"):
        return lambda: 0
    return lambda: int(raw.tell())


def read_rows(fh: TextIO, catalog: Catalog, tz: str, errors: list[tuple[int, str]], *,
              mapping: dict[str, str] | None = None, source: str | None = None, now: float | None = None,
              max_future_days: float | None = None, rates: RateLookup | None = None,
              fx_max_age_days: float, history: bool = True,
              tick: Callable[[int, int], None] | None = None,
              guard: Guard | None = None) -> Iterator[tuple[int, PriceEvent]]:
    """(line, quote) for each valid row of a CSV file (open it with ``newline=""``, ``utf-8-sig``); each bad row
    goes to ``errors`` as (line, reason), and so does each quote ``guard`` (the sanity check) holds, with its
    message. ``source`` is the source of rows without one. Raises CsvError when the header (or ``mapping``) cannot
    be used. ``tick(characters read, rows)`` is called now and then."""
    position = _position(fh)
    reader = csv.reader(fh)
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        raise CsvError(1, "no header: the file is empty (the first line names the columns: "
                          "product,price,unit,as_of,...)")
    try:
        at = header_indexes(header, mapping or {})
    except CsvError as exc:
        raise CsvError(reader.line_num, exc.reason) from None
    width = len(header)
    ip, ipr, iu, ia = at["product"], at["price"], at["unit"], at["as_of"]
    isrc, ilo, ihi, iid = at.get("source"), at.get("low"), at.get("high"), at.get("id")
    iov = at.get("override")
    quote = PriceRows(catalog, tz, now=now, max_future_days=max_future_days, rates=rates,
                      fx_max_age_days=fx_max_age_days, history=history, guard=guard)
    rows = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a NUL byte, a field beyond csv.field_size_limit(): this line only
            errors.append((reader.line_num, f"not a CSV row: {exc}"))
            rows += 1
            continue
        if len(row) != width:
            if not row or not any(cell.strip() for cell in row):
                continue  # an empty line
            errors.append((reader.line_num, f"{len(row)} fields, but the header has {width}"))
            rows += 1
            continue
        rows += 1
        if tick is not None and not rows & 4095:
            tick(position(), rows)
        try:
            src = row[isrc] if isrc is not None else ""
            price = _number("price", row[ipr])
            if price is None:
                raise EventError("price: empty; every row needs one")
            ev = quote(row[ip], price, row[iu], row[ia], src if src.strip() else source,
                       row[iid] if iid is not None else None,
                       _number("low", row[ilo]) if ilo is not None else None,
                       _number("high", row[ihi]) if ihi is not None else None,
                       _flag(row[iov]) if iov is not None else False)
        except QuoteHeld as held:
            errors.append((reader.line_num, guard.hold(held, reader.line_num) if guard is not None else str(held)))
            continue
        except EventError as exc:
            if any(cell.strip() for cell in row):  # else a row of empty cells (",,,"): an empty line
                errors.append((reader.line_num, str(exc)))
            continue
        except Exception as exc:  # a row must never take the valid ones around it down
            errors.append((reader.line_num, f"cannot read this row ({type(exc).__name__}: {str(exc)[:200]})"))
            continue
        yield reader.line_num, ev
    if tick is not None:
        tick(position(), rows)


#: Quotes per (product, source) compared with the other sources' stored history after an import (the first ones).
SAMPLE = 200
#: Quotes handed to the sender at a time, while the rows after them are read.
SEND_CHUNK = 2000
#: Encodes a chunk of quotes at once, one line each: the bytes of ``encode_wire`` (the same default msgspec
#: encoder; tests/test_csv_import.py holds them equal), each followed by a line break (``imports.SEP``).
_LINES = msgspec.json.Encoder()


class _Sender:
    """Sends chunks of quotes, a script call each (one argument per shard), without waiting for Redis: the main
    thread reads and checks the next rows while Redis appends the chunk before (``StreamAppender.send``).
    Chunks are sent in the order they are given."""

    def __init__(self, appender: StreamAppender):
        self.appender = appender
        self.sent = 0
        self._shards: dict[str, int] = {}  # product key -> its shard

    def put(self, events: list[PriceEvent], shards: int) -> None:
        by_shard: dict[int, list[PriceEvent]] = {}
        shard_by_key = self._shards
        for ev in events:
            shard = shard_by_key.get(ev.product_key)
            if shard is None:
                shard = shard_by_key[ev.product_key] = shard_of(ev, shards)
            group = by_shard.get(shard)
            if group is None:
                group = by_shard[shard] = []
            group.append(ev)
        self.sent += self.appender.send([(shard, _LINES.encode_lines(group)) for shard, group in
                                         sorted(by_shard.items())])

    def close(self) -> int:
        self.sent += self.appender.wait()
        return self.sent


def import_file(fh: TextIO, client: redis.Redis, catalog: Catalog, tz: str, shards: int, keys: Keys, *,
                rates: RateLookup | None, mapping: dict[str, str] | None = None, source: str | None = None,
                max_future_days: float | None = None, fx_max_age_days: float,
                live: bool = False, progress: Progress | None = None, guard: QuoteGuard | None = None) -> ImportReport:
    """Read, check and send a CSV file of quotes (see the module). Raises CsvError for an unusable header.

    While each product's quotes (per source) come in time order, they are sent a chunk at a time as the file
    is read. From the first row that goes back in time, the rest is held and sent at the end in time order; the
    quotes among them older than one already sent are history all the same, but arrive late (``report.late``).
    ``guard``: the sanity check (``QuoteGuard.from_settings(..., via="import")``); its held quotes are written to
    the quarantine at the end (``report.held``)."""
    started = time.perf_counter()
    report = ImportReport()
    bar = progress

    def tick(chars: int, rows: int) -> None:
        report.rows = rows
        if bar is not None:
            bar.show("reading", chars, bar.total, rows)

    rows = read_rows(fh, catalog, tz, report.errors, mapping=mapping, source=source, now=time.time(),
                     max_future_days=max_future_days, rates=rates, fx_max_age_days=fx_max_age_days,
                     history=not live, tick=tick, guard=guard)
    sender = _Sender(StreamAppender(client, keys))
    stored: dict[tuple[str, str], set[str]] = {}  # (product key, source) -> ids the history holds
    last: dict[tuple[str, str], float] = {}  # (product key, source) -> latest quote time read (in order)
    sent_last: dict[tuple[str, str], float] = {}  # ... and sent
    pending: list[PriceEvent] = []
    held: list[PriceEvent] | None = None  # from the first row back in time on
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}  # the first quotes sent, per (product, source)
    try:
        for line, ev in rows:
            k = (ev.product_key, ev.source)
            known = stored.get(k)
            if known is None:
                known = stored[k] = stored_ids(client, keys, {k: (-math.inf, math.inf)})
                samples[k] = []
            if ev.id in known:  # the live feed brought it (repeats in the file: the ledger of StreamAppender)
                continue
            sample = samples[k]
            if len(sample) < SAMPLE:
                sample.append((ev.as_of, ev.price))
            if held is not None:
                held.append(ev)
                continue
            if ev.as_of < last.get(k, -math.inf):
                report.out_of_order = line
                held = pending
                held.append(ev)
                continue
            last[k] = ev.as_of
            pending.append(ev)
            if len(pending) >= SEND_CHUNK:
                for e in pending:
                    sent_last[(e.product_key, e.source)] = e.as_of
                sender.put(pending, shards)
                pending = []
        if held is not None:
            held.sort(key=lambda e: e.as_of)
            report.late = sum(1 for e in held if e.as_of < sent_last.get((e.product_key, e.source), float("-inf")))
            for i in range(0, len(held), SEND_CHUNK):
                sender.put(held[i:i + SEND_CHUNK], shards)
        elif pending:
            sender.put(pending, shards)
    finally:
        report.imported = sender.close()
        if guard is not None:
            report.held = len(guard.held)
            guard.flush()
    report.already = report.rows - len(report.errors) - report.imported
    for (pkey, src), sample in samples.items():  # the same file imported before under another source name?
        for other, matches in same_quotes_elsewhere(client, keys, pkey, src, sample)[:1]:
            if matches * 2 >= len(sample):
                name = catalog.products[pkey].name if pkey in catalog.products else pkey
                report.warnings.append(
                    f"{matches:,} of the first {len(sample):,} quotes of {name} imported as source {src!r} are "
                    f"stored already under source {other!r} (same times and prices): this file was imported "
                    f"before under another name? Both are kept as separate vendors; --source (or the source "
                    "column) names the rows' vendor")
    if bar is not None:
        bar.show("done", 1, 1, report.rows, force=True)
        bar.done()
    report.errors.sort(key=lambda e: e[0])
    report.seconds = time.perf_counter() - started
    return report
