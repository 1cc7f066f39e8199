"""Periodic jobs: the work that runs on a clock rather than on an event, each a named job with its own
interval, run by the ``Periodic`` loop of every process with the scheduler role.

- ``rq-scheduled`` (every second): rq's scheduled jobs (retries with backoff, paced and rescheduled
  deliveries) moved to their queues, and deliveries of a worker that died handed back to rq (run again, or
  failed for good and kept for ``alerts failed`` on their last try: ``workers.roles.delivery_worker.abandoned``);
- ``abandoned-alerts`` (every second): alerts a dead dispatcher read but never handed to rq, taken over;
- ``stale-feeds`` (every minute): stale-feed rules checked against the clock; their alerts take the
  way of every alert (circuit breaker, alert stream, dispatch);
- ``digests`` (every minute): digests whose scheduled time has come, sent (a relay that was down is
  retried at this pace);
- ``trim-streams`` (every five minutes): event and alert streams trimmed by age, never past an entry
  not yet read and acknowledged (and silences ended long ago purged);
- ``silences`` (every 30 seconds): until-resolved silences whose rule holds on none of their products any
  more (it re-armed) expired, by "resolved" (``alerts.store.silences.end_resolved``).

Each is safe with several schedulers running: rq's scheduler takes a lock per queue, claims go
through the consumer group, a stale outage is reported under WATCH once, a digest slot is sent once
(``alerts.notify.digest``), trimming never removes a pending entry. One job failing does not stop
the others.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from alerts.evaluate.composite import evaluate_stale
from alerts.model import Alert
from alerts.notify.digest import run_due
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.breaker import apply_breaker
from alerts.store.digests import DigestStore
from alerts.store.keys import Keys
from alerts.store.retention import apply_retention
from alerts.store.silences import end_resolved
from alerts.store.state import decode_state
from alerts.store.streams import append_alerts
from workers.deliver import REDIS_UNAVAILABLE, Delivery
from workers.roles.delivery_worker import abandoned
from workers.roles.dispatch import Dispatcher, queue_names

log = logging.getLogger(__name__)

#: Seconds between two looks at which periodic jobs are due.
TICK = 1.0
#: Seconds between two runs of each periodic job.
RQ_SCHEDULED_EVERY = 1.0
ABANDONED_ALERTS_EVERY = 1.0
STALE_FEEDS_EVERY = 60.0
DIGESTS_EVERY = 60.0
TRIM_STREAMS_EVERY = 300.0
SILENCES_EVERY = 30.0


def check_stale(client: redis.Redis, settings: Settings, rules: RuleSet, now: float | None = None) -> list[Alert]:
    """Evaluate the stale-feed rules against the clock; report each outage once, whatever the number of
    schedulers running (the rule's state is WATCHed while the alert is written). The alerts go through
    the circuit breaker onto the alert stream, like every other alert."""
    now = time.time() if now is None else now
    keys = Keys(settings.key_prefix)
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
                verdict = apply_breaker(client, keys, [alert], settings.breaker_max_alerts,
                                        settings.breaker_window_seconds, now)
                pipe.multi()
                pipe.set(key, json.dumps({"fired_for": last.as_of, "fired_at": now}))
                append_alerts(pipe, keys, verdict, settings.breaker_window_seconds)
                pipe.execute()
                sent.extend(verdict.alerts)
        except redis.WatchError:
            continue  # another scheduler reported it
    return sent


def longest_window(rs: RuleSet) -> float:
    """The longest change window (seconds) of any rule: how much quote history the rules need."""
    indexed = max((ix.max_window for ix in rs.by_product.values()), default=0.0)
    return max(indexed, max((float(getattr(r, "window", 0.0) or 0.0) for rules in rs.by_id.values()
                             for r in rules), default=0.0))


@dataclass
class Job:
    name: str
    every: float  # seconds
    run: Callable[[], object]
    last: float = -math.inf  # monotonic time of the last run


class Periodic:
    """Runs the periodic jobs of one process. ``dispatcher`` None: no abandoned-alert claims (a process
    without the dispatch role)."""

    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet], delivery: Delivery,
                 dispatcher: Dispatcher | None = None):
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.rules = rules
        self.delivery = delivery
        self.down = False  # Redis unavailable since the last job that went through
        # rq logs each lock it takes at INFO: a detail, shown with --verbose only
        rq_level = logging.INFO if log.isEnabledFor(logging.DEBUG) else logging.WARNING
        self.queue_names = queue_names(settings)
        self.rq_scheduler = RQScheduler(self.queue_names, connection=client, serializer=JSONSerializer,
                                        logging_level=rq_level)
        self.jobs = [
            Job("rq-scheduled", RQ_SCHEDULED_EVERY, self.rq_scheduled),
            *([Job("abandoned-alerts", ABANDONED_ALERTS_EVERY, dispatcher.claim_abandoned)] if dispatcher else []),
            Job("stale-feeds", STALE_FEEDS_EVERY, self.stale_feeds),
            Job("digests", DIGESTS_EVERY, self.digests),
            Job("trim-streams", TRIM_STREAMS_EVERY, self.trim_streams),
            Job("silences", SILENCES_EVERY, self.end_silences),
        ]

    def rq_scheduled(self) -> None:
        if self.rq_scheduler.acquire_locks():
            self.rq_scheduler.enqueue_scheduled_jobs()
            abandoned(self.client, self.queue_names, self.delivery)  # deliveries whose worker died

    def stale_feeds(self) -> None:
        for a in check_stale(self.client, self.settings, self.rules()):
            log.warning("stale feed: %s", a.text)

    def digests(self) -> None:
        run_due(DigestStore(self.client, self.keys), self.settings, self.rules())

    def trim_streams(self) -> None:
        s = self.settings
        got = apply_retention(self.client, self.keys, shards=s.stream_shards, event_days=s.event_retention_days,
                              alert_days=s.alert_retention_days, quote_days=s.quote_retention_days,
                              max_window=longest_window(self.rules()))
        if got.quotes or got.news or got.failures or got.set_aside or got.silences:
            log.debug("retention: %d quotes, %d news, %d failures, %d set-aside entries, %d silences removed",
                      got.quotes, got.news, got.failures, got.set_aside, got.silences)

    def end_silences(self) -> None:
        for s in end_resolved(self.client, self.keys, self.rules()):
            log.info("silence %s ended: %s", s.id, s.expired_why)

    def tick(self) -> None:
        """Run every job that is due; one that fails is logged and tried again at its next interval."""
        for job in self.jobs:
            if time.monotonic() - job.last < job.every:
                continue
            job.last = time.monotonic()
            try:
                job.run()
            except REDIS_UNAVAILABLE as exc:  # every job needs Redis: said once per outage, the others skipped
                if not self.down:
                    log.error("periodic jobs: Redis unavailable (%s); trying again every %gs", type(exc).__name__,
                              TICK)
                    self.down = True
                job.last = -math.inf  # due again as soon as Redis is back
                return
            except redis.RedisError as exc:
                log.error("periodic job %s failed (%s: %s); trying again in %gs", job.name, type(exc).__name__,
                          exc, job.every)
            except Exception:  # this thread moves every rescheduled delivery: it must not die
                log.exception("periodic job %s failed; trying again in %gs", job.name, job.every)
            else:
                if self.down:
                    log.warning("periodic jobs: Redis answers again")
                    self.down = False

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick()
            stop.wait(TICK)
        try:
            self.rq_scheduler.release_locks()
        except redis.RedisError:
            pass
