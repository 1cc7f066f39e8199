"""Housekeeping on a clock: rq's scheduled jobs (delivery retries with backoff), taking over alerts
a dead dispatcher left unacknowledged, and trimming streams by age.

Every step is safe with several processes running it: rq's scheduler takes a lock per queue, claims
go through the consumer group, and trimming only removes entries older than every pending entry.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import cast

import redis
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from alerts.evaluate.composite import evaluate_stale
from alerts.model import Alert
from alerts.notify.digest import run_due
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.state import decode_state
from alerts.store.streams import alert_entries
from workers.dispatch import Dispatcher

log = logging.getLogger("alerts.scheduler")

#: Seconds between two housekeeping passes.
TICK = 1.0
#: Seconds between two trims of the streams.
TRIM_EVERY = 300.0
#: Seconds between two checks of the stale-feed rules and of digests that are due (retrying a digest
#: whose mail relay was down at the same pace).
STALE_EVERY = 60.0


def _id(value: bytes | str) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def trim_stream(client: redis.Redis, stream: str, max_age_s: float) -> None:
    """XTRIM MINID to (now - max age), never past an entry a consumer group has not read or acknowledged.

    The groups' read positions are read before their pending entries: an entry delivered in between
    is newer than the position read, so one of the two always protects it. A stream no group reads
    yet is left alone.
    """
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return
    if not groups:
        return
    minid = (int((time.time() - max_age_s) * 1000), 0)
    for g in groups:
        minid = min(minid, _id(g["last-delivered-id"]))
    for g in groups:
        info = client.xpending(stream, g["name"])
        if info and info.get("pending"):
            minid = min(minid, _id(info["min"]))
    client.xtrim(stream, minid=f"{minid[0]}-{minid[1]}", approximate=False)


def check_stale(client: redis.Redis, keys: Keys, rules: RuleSet, now: float | None = None) -> list[Alert]:
    """Evaluate the stale-feed rules against the clock; report each outage once, whatever the number of
    schedulers running (the rule's state is WATCHed while the alert is written)."""
    now = time.time() if now is None else now
    sent = []
    for rule in rules.stale:
        state = decode_state(cast(dict[bytes, bytes], client.hgetall(keys.state(rule.product.key))))
        last = max(state.quotes.values(), key=lambda q: q.as_of) if state and state.quotes else None
        key = keys.shared(rule.fp)
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.watch(key)
                raw = pipe.get(key)
                fired_for = json.loads(raw)["fired_for"] if raw else None
                alert = evaluate_stale(rule, last, now, rules.timezone, rules.holidays, fired_for)
                if alert is None or last is None:
                    continue
                pipe.multi()
                pipe.set(key, json.dumps({"fired_for": last.as_of, "fired_at": now}))
                for entry in alert_entries([alert.to_dict()]):
                    pipe.xadd(keys.alerts, entry)  # type: ignore[arg-type]
                pipe.execute()
                sent.append(alert)
        except redis.WatchError:
            continue  # another scheduler reported it
    return sent


class Housekeeper:
    def __init__(self, client: redis.Redis, settings: Settings, dispatcher: Dispatcher | None,
                 rules: Callable[[], RuleSet] | None = None):
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.dispatcher = dispatcher
        self.rules = rules
        self._last_stale = 0.0
        self.rq_scheduler = RQScheduler([settings.queue_name], connection=client, serializer=JSONSerializer)
        self.started = StartedJobRegistry(settings.queue_name, connection=client, serializer=JSONSerializer)
        self._last_trim = 0.0

    def tick(self) -> None:
        if self.rq_scheduler.acquire_locks():
            self.rq_scheduler.enqueue_scheduled_jobs()
            # deliveries of a worker that died: rq retries them once their heartbeat has expired
            self.started.cleanup()
        if self.dispatcher is not None:
            self.dispatcher.claim_abandoned()
        if self.rules is not None and time.monotonic() - self._last_stale > STALE_EVERY:
            self._last_stale = time.monotonic()
            rules = self.rules()
            for a in check_stale(self.client, self.keys, rules):
                log.warning("stale feed: %s", a.text)
            run_due(self.client, self.settings, rules)
        if time.monotonic() - self._last_trim > TRIM_EVERY:
            self._last_trim = time.monotonic()
            for shard in range(self.settings.stream_shards):
                trim_stream(self.client, self.keys.events(shard), self.settings.event_retention_days * 86400)
            trim_stream(self.client, self.keys.alerts, self.settings.alert_retention_days * 86400)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except redis.RedisError as exc:
                log.error("housekeeping failed (%s); trying again", type(exc).__name__)
            except Exception:  # this thread moves every rescheduled delivery: it must not die
                log.exception("housekeeping failed; trying again")
            stop.wait(TICK)
        try:
            self.rq_scheduler.release_locks()
        except redis.RedisError:
            pass
