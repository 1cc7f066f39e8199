"""Housekeeping on a clock: rq's scheduled jobs (delivery retries with backoff), taking over alerts
a dead dispatcher left unacknowledged, and trimming streams by age.

Every step is safe with several processes running it: rq's scheduler takes a lock per queue, claims
go through the consumer group, and trimming only removes entries older than every pending entry.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from alerts.settings import Settings
from alerts.store import DISPATCH_GROUP, EVALUATOR_GROUP, Keys
from workers.dispatch import Dispatcher

log = logging.getLogger("alerts.scheduler")

#: Seconds between two housekeeping passes.
TICK = 1.0
#: Seconds between two trims of the streams.
TRIM_EVERY = 300.0


def _min_pending(client: redis.Redis, stream: str, group: str) -> bytes | None:
    try:
        info = client.xpending(stream, group)
    except redis.ResponseError:
        return None
    return info.get("min") if info and info.get("pending") else None  # type: ignore[no-any-return]


def trim_stream(client: redis.Redis, stream: str, group: str, max_age_s: float) -> None:
    """XTRIM MINID to the older of (now - max age) and the oldest pending entry; never drops unread data."""
    cutoff_ms = int((time.time() - max_age_s) * 1000)
    minid = f"{cutoff_ms}-0"
    oldest = _min_pending(client, stream, group)
    if oldest is not None:
        o = oldest.decode() if isinstance(oldest, bytes) else str(oldest)
        if tuple(map(int, o.split("-"))) < (cutoff_ms, 0):
            minid = o
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return
    for g in groups:  # never trim past what a group has not read yet
        last = g.get("last-delivered-id")
        if last is not None:
            s = last.decode() if isinstance(last, bytes) else str(last)
            if tuple(map(int, s.split("-"))) < tuple(map(int, minid.split("-"))):
                minid = s
    client.execute_command("XTRIM", stream, "MINID", minid)


class Housekeeper:
    def __init__(self, client: redis.Redis, settings: Settings, dispatcher: Dispatcher | None):
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.dispatcher = dispatcher
        self.rq_scheduler = RQScheduler([settings.queue_name], connection=client, serializer=JSONSerializer)
        self._last_trim = 0.0

    def tick(self) -> None:
        if self.rq_scheduler.acquire_locks():
            self.rq_scheduler.enqueue_scheduled_jobs()
        if self.dispatcher is not None:
            self.dispatcher.claim_abandoned()
        if time.monotonic() - self._last_trim > TRIM_EVERY:
            self._last_trim = time.monotonic()
            for shard in range(self.settings.stream_shards):
                trim_stream(self.client, self.keys.events(shard), EVALUATOR_GROUP,
                            self.settings.event_retention_days * 86400)
            trim_stream(self.client, self.keys.alerts, DISPATCH_GROUP, self.settings.alert_retention_days * 86400)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except redis.RedisError as exc:
                log.error("housekeeping failed (%s); trying again", type(exc).__name__)
            stop.wait(TICK)
        try:
            self.rq_scheduler.release_locks()
        except redis.RedisError:
            pass
