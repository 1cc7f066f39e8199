"""Publishing events: validate each one, report the invalid ones by line, append the valid ones to
the event streams in pipelined batches, in their typed wire form. ``alerts publish`` and the Python API
(``alerts.publish``) share this code. Lines are decoded with the limits of ``alerts.events`` (line size,
nesting, each field) and events dated in the future are refused (``ALERTS_MAX_FUTURE_DAYS``): one bad
line is reported with its number and never costs the valid ones around it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

import redis

from alerts.catalog import Catalog
from alerts.events import DEFAULT_MAX_FUTURE_DAYS, Event, encode_wire, parse_lines, parse_objects, read_lines
from alerts.rules.load import load_catalog
from alerts.settings import Settings, load_settings
from alerts.store.keys import Keys
from alerts.store.server import redis_for
from alerts.store.streams import WIRE_FIELD, check_shard_count, shard_of

#: Events XADDed per pipeline round trip.
PUBLISH_BATCH = 1000


@dataclass
class PublishReport:
    published: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def ok(self) -> bool:
        return not self.errors


class Publisher:
    """Validates events and appends them to the event streams in pipelined batches.

    ``max_future_days``: events dated further ahead of the clock are refused (None: no such check)."""

    def __init__(self, client: redis.Redis, catalog: Catalog, tz: str, shards: int, prefix: str = "alerts", *,
                 max_future_days: float | None = DEFAULT_MAX_FUTURE_DAYS):
        self.client = client
        self.catalog = catalog
        self.tz = tz
        self.shards = shards
        self.max_future_days = max_future_days
        self.keys = Keys(prefix)
        check_shard_count(client, self.keys, shards)

    def publish_objects(self, items: Iterable[tuple[int, object]],
                        report: PublishReport | None = None) -> PublishReport:
        """``items`` are (line number, decoded JSON). Invalid ones are reported, valid ones published."""
        report = report or PublishReport()
        events = parse_objects(items, self.catalog, self.tz, report.errors, max_future_days=self.max_future_days)
        return self._append(events, report)

    def publish_lines(self, lines: Iterable[str | bytes]) -> PublishReport:
        """JSON Lines (blank lines and lines starting with # are skipped), each decoded with the limits."""
        report = PublishReport()
        events = parse_lines(lines, self.catalog, self.tz, report.errors, max_future_days=self.max_future_days)
        return self._append(events, report)

    def publish_file(self, fh: BinaryIO | TextIO) -> PublishReport:
        """A JSON Lines file, read line by line with a bounded buffer (a huge line is reported, not held)."""
        return self.publish_lines(read_lines(fh))

    def publish(self, *events: dict[str, Any]) -> PublishReport:
        return self.publish_objects(enumerate(events, 1))

    def _append(self, events: Iterable[tuple[int, Event]], report: PublishReport) -> PublishReport:
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        for _line, event in events:
            pipe.xadd(self.keys.events(shard_of(event, self.shards)), {WIRE_FIELD: encode_wire(event)})
            pending += 1
            if pending >= PUBLISH_BATCH:
                pipe.execute()
                report.published += pending
                pending = 0
        if pending:
            pipe.execute()
            report.published += pending
        report.errors.sort(key=lambda e: e[0])
        return report


def publish_events(events: Iterable[dict[str, Any]], settings: Settings | None = None) -> PublishReport:
    """Publish event objects with the configured Redis and catalog. Errors are numbered from 1."""
    settings = settings or load_settings()
    with redis_for(settings) as client:
        return _publisher(client, settings).publish_objects(enumerate(events, 1))


def publish_lines(lines: Iterable[str | bytes], settings: Settings | None = None) -> PublishReport:
    """Publish JSON Lines (blank lines and lines starting with # are skipped)."""
    settings = settings or load_settings()
    with redis_for(settings) as client:
        return _publisher(client, settings).publish_lines(lines)


def _publisher(client: redis.Redis, settings: Settings) -> Publisher:
    catalog = load_catalog(settings.rules_dir)
    return Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix,
                     max_future_days=settings.max_future_days)
