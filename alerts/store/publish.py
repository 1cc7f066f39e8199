"""Publishing events: validate each one, report the invalid ones by line, append the valid ones to
the event streams in pipelined batches, in their typed wire form. ``alerts publish`` and the Python API
(``alerts.publish``) share this code. Lines are decoded with the limits of ``alerts.events`` (line size,
nesting, each field) and events dated in the future are refused (``ALERTS_MAX_FUTURE_DAYS``): one bad
line is reported with its number and never costs the valid ones around it.

A quote in another currency than its product's is converted with the latest exchange rate at or before
its time (``alerts.events.RateBook``): from the fx events earlier in the same call, else those published
before it, whether the evaluators have committed them (``P:legs:fx:PAIR``) or not yet (the tail of the
news shard).

Redis refusing a write at maxmemory (``OOM command not allowed``) raises ``RedisOutOfMemory`` at once, naming
used/maxmemory, with the report so far: ``stored`` and ``refused`` say exactly which lines (items) were stored and
which were not, read from each command's reply in the batch (a batch may have stored some entries before Redis
filled up), and ``unread_after`` from which line on the input was not read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO, cast

import redis

from alerts.catalog import Catalog
from alerts.errors import EventError, NotReplicatedError, RedisOutOfMemory
from alerts.evaluate.eventtime import decode_point, latest
from alerts.events import (
    DEFAULT_FX_MAX_AGE_DAYS,
    DEFAULT_MAX_FUTURE_DAYS,
    Event,
    FxEvent,
    RateBook,
    decode_wire,
    encode_wire,
    fx_series,
    parse_lines,
    parse_objects,
    read_lines,
)
from alerts.rules.load import load_catalog
from alerts.settings import Settings, load_settings
from alerts.store.keys import Keys
from alerts.store.memory import describe, is_oom
from alerts.store.metrics import count_publish
from alerts.store.quotes import DEFAULT_MAX_DAILY_MOVE_PCT, QuoteGuard
from alerts.store.server import redis_for
from alerts.store.streams import NEWS_SHARD, WIRE_FIELD, check_shard_count, evaluator_group, shard_of

#: Events XADDed per pipeline round trip.
PUBLISH_BATCH = 1000
#: Stored points of a pair read per rate lookup, newest time first (the newest by arrival among them wins).
RATE_SCAN = 20
#: How an fx event starts on the wire (``encode_wire`` writes the tag first): the others are not decoded.
_FX_WIRE = b'{"type":"fx"'


def committed_rate(client: redis.Redis, keys: Keys, pair: str, t: float) -> tuple[float, float] | None:
    """The latest rate of ``pair`` at or before ``t`` that an evaluator committed: (rate, its time)."""
    raw = cast(list[bytes], client.zrevrangebyscore(keys.legs(fx_series(pair)), t, "-inf", start=0, num=RATE_SCAN))
    point = latest([decode_point(m) for m in raw])
    return (point.price, point.t) if point is not None else None


def uncommitted_rates(client: redis.Redis, keys: Keys) -> Iterator[FxEvent]:
    """The fx events on the news shard that no evaluator has committed yet (not read by the evaluators'
    group, or read and still pending), in stream order. The group's position is read before its pending
    entries: an entry committed in between is in the committed rates (read after this)."""
    stream = keys.events(NEWS_SHARD)
    exists, group = evaluator_group(client, stream)
    if not exists:
        return  # nothing published
    start: bytes | str = "-"
    if group is not None:
        last = group["last-delivered-id"]
        start = b"(" + (last if isinstance(last, bytes) else str(last).encode())
        info = client.xpending(stream, group["name"])
        if info and info.get("pending"):
            start = info["min"]
    while True:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                       client.xrange(stream, min=start, max="+", count=PUBLISH_BATCH))  # type: ignore[arg-type]
        for _id, fields in entries:
            raw = fields.get(WIRE_FIELD.encode())
            if raw is not None and raw.startswith(_FX_WIRE):
                try:
                    ev = decode_wire(raw)
                except EventError:
                    continue
                if isinstance(ev, FxEvent):
                    yield ev
        if len(entries) < PUBLISH_BATCH:
            return
        start = b"(" + entries[-1][0]


class StoredRates:
    """The rates published before a publish call (a ``RateLookup``): those not committed yet, read once
    when first needed, and, older in arrival, those the evaluators committed. Lookups are cached."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self._pending: RateBook | None = None
        self._cache: dict[tuple[str, float], tuple[float, float] | None] = {}

    def _committed(self, pair: str, t: float) -> tuple[float, float] | None:
        return committed_rate(self.client, self.keys, pair, t)

    def __call__(self, pair: str, t: float) -> tuple[float, float] | None:
        if self._pending is None:
            self._pending = RateBook(stored=self._committed)
            for ev in uncommitted_rates(self.client, self.keys):
                self._pending.add(ev)
        key = (pair, t)
        if key not in self._cache:
            self._cache[key] = self._pending(pair, t)
        return self._cache[key]


Runs = list[tuple[int, int]]


def format_runs(runs: Runs, what: str = "lines") -> str:
    """``lines 1-1342, 1400`` (``what`` names the numbers: lines, items); ``no lines`` when empty."""
    if not runs:
        return f"no {what}"
    return f"{what} " + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


@dataclass
class PublishReport:
    """``published``: events stored; ``errors``: invalid lines (line number, reason). After a
    ``RedisOutOfMemory``, ``stored`` and ``refused`` are the runs of line numbers (first, last) whose events Redis
    stored and refused (a run's invalid, blank and comment lines are in neither: they held no event), and
    ``unread_after`` the last line read (later lines were not read); ``stored`` is kept on every publish."""

    published: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    stored: Runs = field(default_factory=list)
    refused: Runs = field(default_factory=list)
    unread_after: int | None = None
    held: int = 0  # quotes the sanity check held (in ``errors`` too, with the id to release them by)
    _last: bool | None = field(default=None, repr=False, compare=False)  # whether the last event was stored

    @property
    def ok(self) -> bool:
        return not self.errors

    def _add(self, lines: list[int], stored: list[bool]) -> None:
        """Events sent, in line order, and whether each was stored: runs extended, or new ones begun."""
        for line, kept in zip(lines, stored, strict=True):
            runs = self.stored if kept else self.refused
            if self._last is kept and runs:
                runs[-1] = (runs[-1][0], line)
            else:
                runs.append((line, line))
            self._last = kept
        self.published += sum(stored)

    def _add_stored(self, lines: list[int]) -> None:
        """``_add`` of a batch Redis stored whole, without a step per event (the publishing hot path)."""
        if not lines:
            return
        if self._last is True and self.stored:
            self.stored[-1] = (self.stored[-1][0], lines[-1])
        else:
            self.stored.append((lines[0], lines[-1]))
        self._last = True
        self.published += len(lines)


class Publisher:
    """Validates events and appends them to the event streams in pipelined batches.

    ``max_future_days``: events dated further ahead of the clock are refused (None: no such check).
    ``max_daily_move_pct``: the quote sanity check's floor (``ALERTS_QUOTE_MAX_DAILY_MOVE_PCT``; None: no check):
    each publish call checks its quotes with a ``QuoteGuard`` (``alerts.store.quotes``) and reports a held one as an
    error of its line or item (``held (h-...): ...``), kept in the quarantine. ``origin``: the held quotes' origin
    (a file's name, a feed source).
    ``fx_max_age_days``: a quote in another currency is converted with a rate at most this much older
    (``ALERTS_FX_MAX_AGE_DAYS``), else refused. ``min_replicas``: each batch must reach that many replicas
    within ``wait_timeout_ms`` (``WAIT``), else NotReplicatedError (``ALERTS_REDIS_MIN_REPLICAS``)."""

    def __init__(self, client: redis.Redis, catalog: Catalog, tz: str, shards: int, prefix: str = "alerts", *,
                 max_future_days: float | None = DEFAULT_MAX_FUTURE_DAYS,
                 fx_max_age_days: float = DEFAULT_FX_MAX_AGE_DAYS, via: str = "publish",
                 min_replicas: int = 0, wait_timeout_ms: int = 1000,
                 max_daily_move_pct: float | None = DEFAULT_MAX_DAILY_MOVE_PCT, origin: str = ""):
        self.client = client
        self.max_daily_move_pct = max_daily_move_pct
        self.origin = origin
        self.min_replicas = min_replicas  # ALERTS_REDIS_MIN_REPLICAS: replicas that must have a batch (WAIT)
        self.wait_timeout_ms = wait_timeout_ms
        self.via = via  # the ``via`` label of the events counted (alerts.store.metrics): http or publish
        self.catalog = catalog
        self.tz = tz
        self.shards = shards
        self.max_future_days = max_future_days
        self.fx_max_age_days = fx_max_age_days
        self.keys = Keys(prefix)
        try:
            check_shard_count(client, self.keys, shards)
        except redis.ResponseError as exc:
            if is_oom(exc):  # the first publisher of a deployment, on a full Redis
                raise RedisOutOfMemory(f"{describe(client)}: nothing was stored", PublishReport()) from None
            raise

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings, catalog: Catalog | None = None, *,
                      via: str = "publish", origin: str = "") -> Publisher:
        """The publisher of the settings, for every caller (the CLI, the HTTP app, the poller, the demo): the
        time zone, shards and key prefix, ALERTS_MAX_FUTURE_DAYS, ALERTS_FX_MAX_AGE_DAYS, and
        ALERTS_REDIS_MIN_REPLICAS / ALERTS_REDIS_WAIT_TIMEOUT_MS. ``catalog``: the products to validate against
        (default: those of ALERTS_RULES_DIR); ``via``: the metrics label (``http`` for POST /events, else
        ``publish``)."""
        return cls(client, catalog if catalog is not None else load_catalog(settings.rules_dir), settings.timezone,
                   settings.stream_shards, settings.key_prefix, max_future_days=settings.max_future_days,
                   fx_max_age_days=settings.fx_max_age_days, via=via, min_replicas=settings.redis_min_replicas,
                   wait_timeout_ms=settings.redis_wait_timeout_ms,
                   max_daily_move_pct=settings.quote_max_daily_move_pct, origin=origin)

    def guard(self, origin: str | None = None) -> QuoteGuard | None:
        """The sanity check of one publish call (None when this publisher has none); ``origin``: where its quotes
        come from, for the quarantine's record (default: this publisher's)."""
        if self.max_daily_move_pct is None:
            return None
        return QuoteGuard(self.client, self.keys, self.catalog, self.max_daily_move_pct / 100, self.via,
                          self.origin if origin is None else origin)

    def rates(self) -> RateBook:
        """The rates one publish call converts quotes with: its own fx events as they come, then the stored ones."""
        return RateBook(stored=StoredRates(self.client, self.keys))

    def publish_objects(self, items: Iterable[tuple[int, object]],
                        report: PublishReport | None = None) -> PublishReport:
        """``items`` are (line number, decoded JSON). Invalid ones are reported, valid ones published."""
        report = report or PublishReport()
        guard = self.guard()
        events = parse_objects(items, self.catalog, self.tz, report.errors, max_future_days=self.max_future_days,
                               rates=self.rates(), fx_max_age_days=self.fx_max_age_days, guard=guard)
        return self._append(events, report, guard)

    def publish_lines(self, lines: Iterable[str | bytes]) -> PublishReport:
        """JSON Lines (blank lines and lines starting with # are skipped), each decoded with the limits."""
        report = PublishReport()
        guard = self.guard()
        events = parse_lines(lines, self.catalog, self.tz, report.errors, max_future_days=self.max_future_days,
                             rates=self.rates(), fx_max_age_days=self.fx_max_age_days, guard=guard)
        return self._append(events, report, guard)

    def publish_file(self, fh: BinaryIO | TextIO) -> PublishReport:
        """A JSON Lines file, read line by line with a bounded buffer (a huge line is reported, not held)."""
        return self.publish_lines(read_lines(fh))

    def publish(self, *events: dict[str, Any]) -> PublishReport:
        return self.publish_objects(enumerate(events, 1))

    def _append(self, events: Iterable[tuple[int, Event]], report: PublishReport,
                guard: QuoteGuard | None = None) -> PublishReport:
        pipe = self.client.pipeline(transaction=False)
        lines: list[int] = []
        refused = len(report.errors)
        try:
            for line, event in events:
                pipe.xadd(self.keys.events(shard_of(event, self.shards)), {WIRE_FIELD: encode_wire(event)})
                lines.append(line)
                if len(lines) >= PUBLISH_BATCH:
                    count_publish(pipe, self.keys, self.via, len(lines), 0)
                    self._execute(pipe, lines, report, last_read=line)
                    lines = []
            refused = len(report.errors) - refused
            held = len(guard.held) if guard is not None else 0
            if guard is not None and held:
                report.held += held
                refused -= held  # counted as held (alerts_quotes_held_total), not as rejected
                guard.flush(pipe)
            if lines or refused or held:
                count_publish(pipe, self.keys, self.via, len(lines), refused)
                self._execute(pipe, lines, report, last_read=None)
        finally:
            report.errors.sort(key=lambda e: e[0])
        return report

    def _execute(self, pipe: Any, lines: list[int], report: PublishReport, last_read: int | None) -> None:
        """Send a batch (the events of ``lines``, then the counters); with ``min_replicas``, WAIT (on the batch's
        connection, in the same round trip) for that many replicas to have it, and raise NotReplicatedError when
        fewer acknowledge it in time. Each command's reply is read: Redis refusing some at maxmemory raises
        RedisOutOfMemory with exactly what was stored. ``last_read``: the input's last line read (None: all)."""
        pending = len(lines)
        wait = bool(self.min_replicas and pending)
        if wait:
            pipe.execute_command("WAIT", self.min_replicas, self.wait_timeout_ms)
        results = pipe.execute(raise_on_error=False)
        failed = [r for r in results if isinstance(r, Exception)]
        if any(is_oom(r) for r in failed):
            stored = [not isinstance(r, Exception) for r in results[:pending]]
            report._add(lines, stored)
            report.unread_after = last_read
            raise RedisOutOfMemory(self._oom_message(report, pending - sum(stored), pending), report)
        if failed:
            raise failed[0]  # what execute() raises by itself: the first error
        if wait and int(results[-1]) < self.min_replicas:
            report.errors.sort(key=lambda e: e[0])
            raise NotReplicatedError(
                f"not replicated: {pending} events written to the Redis primary were acknowledged by "
                f"{int(results[-1])} replicas, not the {self.min_replicas} ALERTS_REDIS_MIN_REPLICAS asks for, "
                f"within {self.wait_timeout_ms} ms (ALERTS_REDIS_WAIT_TIMEOUT_MS); {report.published} events "
                "before them were; publish again (an event evaluated before is not evaluated again)", report)
        report._add_stored(lines)

    def _oom_message(self, report: PublishReport, refused: int, sent: int) -> str:
        what = "items" if self.via == "http" else "lines"
        # events all stored and nothing refused: only the batch's event counters were not
        not_stored = format_runs(report.refused, what) if report.refused or refused else "its event counters"
        text = (f"{describe(self.client)}: {refused:,} of the last {sent:,} events sent were refused; "
                f"stored: {format_runs(report.stored, what)} ({report.published:,} events); not stored: {not_stored}")
        if report.unread_after is not None:
            text += f" and every {what[:-1]} after {what[:-1]} {report.unread_after} (not read)"
        return text + "; publish those again once Redis has room (free memory or raise maxmemory)"


def publish_events(events: Iterable[dict[str, Any]], settings: Settings | None = None) -> PublishReport:
    """Publish event objects with the configured Redis and catalog. Errors are numbered from 1."""
    settings = settings or load_settings()
    with redis_for(settings) as client:
        return Publisher.from_settings(client, settings).publish_objects(enumerate(events, 1))


def publish_lines(lines: Iterable[str | bytes], settings: Settings | None = None) -> PublishReport:
    """Publish JSON Lines (blank lines and lines starting with # are skipped)."""
    settings = settings or load_settings()
    with redis_for(settings) as client:
        return Publisher.from_settings(client, settings).publish_lines(lines)
