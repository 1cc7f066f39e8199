"""Publishing events: validate each one, report the invalid ones by line, append the valid ones to
the event streams in pipelined batches, in their typed wire form. ``alerts publish`` and the Python API
(``alerts.publish``) share this code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

import redis

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.events import encode_wire, json_lines, parse_event
from alerts.rules.load import load_catalog
from alerts.settings import Settings
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
    """Validates events and appends them to the event streams in pipelined batches."""

    def __init__(self, client: redis.Redis, catalog: Catalog, tz: str, shards: int, prefix: str = "alerts"):
        self.client = client
        self.catalog = catalog
        self.tz = tz
        self.shards = shards
        self.keys = Keys(prefix)
        check_shard_count(client, self.keys, shards)

    def publish_objects(self, items: Iterable[tuple[int, object]],
                        report: PublishReport | None = None) -> PublishReport:
        """``items`` are (line number, decoded JSON). Invalid ones are reported, valid ones published."""
        report = report or PublishReport()
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        for line_no, obj in items:
            try:
                event = parse_event(obj, self.catalog, self.tz)
            except EventError as exc:
                report.errors.append((line_no, str(exc)))
                continue
            except Exception as exc:  # a line must never take the valid ones around it down
                report.errors.append((line_no, f"cannot read this event ({type(exc).__name__}: {exc})"))
                continue
            pipe.xadd(self.keys.events(shard_of(event, self.shards)), {WIRE_FIELD: encode_wire(event)})
            pending += 1
            if pending >= PUBLISH_BATCH:
                pipe.execute()
                report.published += pending
                pending = 0
        if pending:
            pipe.execute()
            report.published += pending
        return report

    def publish_lines(self, lines: Iterable[str | bytes]) -> PublishReport:
        report = PublishReport()
        return self.publish_objects(json_lines(lines, report.errors), report)

    def publish_file(self, fh: BinaryIO | TextIO) -> PublishReport:
        return self.publish_lines(fh)

    def publish(self, *events: dict[str, Any]) -> PublishReport:
        return self.publish_objects(enumerate(events, 1))


def publish_events(events: Iterable[dict[str, Any]], settings: Settings | None = None) -> PublishReport:
    """Publish event objects with the configured Redis and catalog. Errors are numbered from 1."""
    settings = settings or Settings()
    with redis_for(settings) as client:
        return _publisher(client, settings).publish_objects(enumerate(events, 1))


def publish_lines(lines: Iterable[str | bytes], settings: Settings | None = None) -> PublishReport:
    """Publish JSON Lines (blank lines and lines starting with # are skipped)."""
    settings = settings or Settings()
    with redis_for(settings) as client:
        return _publisher(client, settings).publish_lines(lines)


def _publisher(client: redis.Redis, settings: Settings) -> Publisher:
    catalog = load_catalog(settings.rules_dir)
    return Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix)
