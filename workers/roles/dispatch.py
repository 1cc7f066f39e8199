"""Dispatch: alerts become rq jobs, one per target, and the job delivers it.

``Dispatcher`` reads the alert stream in a consumer group and, in one MULTI/EXEC guarded by WATCH on
per-alert markers, enqueues the delivery jobs (``Queue.enqueue_many`` on the transaction's pipeline),
sets the markers and acknowledges the alerts. A dispatcher killed before EXEC leaves the alerts
pending; another claims them after ``claim_idle_seconds``. One killed after EXEC leaves markers that
stop anyone enqueueing them again. Job ids are deterministic (``deliver-{alert}-{hash of target}``).

The delivery itself is the rq job ``workers.deliver.deliver``, in one rq queue per kind of channel
(``{queue_name}:slack``, ``:email``, ``:webhook``, ``:other`` for console and digests): a channel that is
slow or down holds up only its own queue.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from alerts.model import Alert
from alerts.settings import Settings
from alerts.store.keys import DISPATCH_GROUP, MARKER_TTL, Keys
from alerts.store.streams import consumer_name, ensure_group, read_alerts, read_group
from alerts.targets import QUEUE_KINDS, queue_of
from workers.deliver import DELIVER, job_options, retry_policy
from workers.roles.loop import run_steps

log = logging.getLogger(__name__)

#: Alerts read from the alert stream per round trip.
DISPATCH_BATCH = 200


def queue_names(settings: Settings) -> list[str]:
    """Every delivery queue: one per kind of channel, then the single queue of releases before them (its jobs,
    queued before an upgrade, are still run)."""
    return [f"{settings.queue_name}:{kind}" for kind in QUEUE_KINDS] + [settings.queue_name]


def make_queue(client: redis.Redis, settings: Settings, target: str | None = None) -> Queue:
    """The queue of deliveries to ``target`` (None: the single queue of earlier releases)."""
    name = settings.queue_name if target is None else f"{settings.queue_name}:{queue_of(target)}"
    return Queue(name, connection=client, serializer=JSONSerializer)


def make_queues(client: redis.Redis, settings: Settings) -> list[Queue]:
    return [Queue(name, connection=client, serializer=JSONSerializer) for name in queue_names(settings)]


def job_id(alert_id: str, target: str) -> str:
    return f"deliver-{alert_id}-{hashlib.sha1(target.encode(), usedforsecurity=False).hexdigest()[:10]}"


class Dispatcher:
    def __init__(self, client: redis.Redis, settings: Settings, name: str | None = None):
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.name = name or consumer_name("dispatcher")
        self.queues = {kind: make_queue(client, settings, kind) for kind in QUEUE_KINDS}
        self.read_pending = True
        self.ensure_group()

    def claim_abandoned(self) -> int:
        """Take over alerts another dispatcher read but did not acknowledge within claim_idle_seconds."""
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        ids = self.client.xautoclaim(self.keys.alerts, DISPATCH_GROUP, self.name, idle_ms, count=1000, justid=True)
        if ids:
            self.read_pending = True
        return len(ids)

    def step(self, block_ms: int | None = None) -> int:
        msgs: list[tuple[bytes, dict[bytes, bytes]]] = []
        if self.read_pending:  # first what this consumer read (or claimed) but did not acknowledge
            resp = read_group(self.client, DISPATCH_GROUP, self.name, {self.keys.alerts: "0"}, DISPATCH_BATCH)
            msgs = [m for _, ms in resp or [] for m in ms]
            self.read_pending = bool(msgs)
        if not msgs:
            resp = read_group(self.client, DISPATCH_GROUP, self.name, {self.keys.alerts: ">"}, DISPATCH_BATCH,
                              self.settings.block_ms if block_ms is None else block_ms)
            msgs = [m for _, ms in resp or [] for m in ms]
        if msgs:
            try:
                self.enqueue(msgs)
            except redis.RedisError:
                raise
            except Exception:  # find the entry that cannot be enqueued, set it aside, keep the rest flowing
                for m in msgs:
                    try:
                        self.enqueue([m])
                    except redis.RedisError:
                        raise
                    except Exception as exc:
                        with self.client.pipeline(transaction=True) as pipe:
                            self._set_aside(pipe, m[0], m[1], f"{type(exc).__name__}: {exc}")
                            pipe.xack(self.keys.alerts, DISPATCH_GROUP, m[0])
                            pipe.execute()
        return len(msgs)

    def ensure_group(self) -> None:
        ensure_group(self.client, self.keys.alerts, DISPATCH_GROUP)

    def enqueue(self, msgs: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """One transaction: a delivery job per target of every alert not enqueued before, the markers that
        say so, entries that hold no valid alerts set aside with the reason, and the XACK of them all."""
        alerts: list[Alert] = []
        bad: list[tuple[bytes, dict[bytes, bytes], str]] = []
        written: dict[str, int] = {}  # alert id -> its alert stream entry's time (ms), for the delivery latency
        for mid, fields in msgs:
            try:
                got = read_alerts(fields)
            except ValueError as exc:
                bad.append((mid, fields, str(exc)))
                continue
            alerts.extend(got)
            ms = int(mid.partition(b"-")[0])
            for a in got:
                written.setdefault(a.id, ms)
        # the same alert twice in one batch is enqueued once
        markers = list(dict.fromkeys(self.keys.enqueued(a.id) for a in alerts))
        retry = retry_policy(self.settings)
        while True:
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    if markers:
                        pipe.watch(*markers)
                        done = {m for m, v in zip(markers, pipe.mget(markers), strict=True) if v is not None}
                    else:
                        done = set()
                    pipe.multi()
                    datas: dict[str, list[Any]] = {}  # queue kind -> its jobs
                    for a in alerts:
                        marker = self.keys.enqueued(a.id)
                        if marker in done:
                            continue
                        done.add(marker)
                        wire = a.to_wire()
                        for target in a.targets:
                            datas.setdefault(queue_of(target), []).append(Queue.prepare_data(
                                DELIVER, args=(wire, target), job_id=job_id(a.id, target),
                                **job_options(self.settings, description=f"deliver {a.rule_id} to {target}",
                                              meta={"alert_at": written[a.id]}, retry=retry, prepared=True),
                            ))
                        pipe.set(marker, 1, ex=MARKER_TTL)
                    for kind, jobs in datas.items():
                        self.queues[kind].enqueue_many(jobs, pipeline=pipe)
                    for mid, fields, reason in bad:
                        self._set_aside(pipe, mid, fields, reason)
                    pipe.xack(self.keys.alerts, DISPATCH_GROUP, *(mid for mid, _ in msgs))
                    pipe.execute()
                return
            except redis.WatchError:
                continue  # another dispatcher enqueued some of these meanwhile: look again

    def _set_aside(self, pipe: redis.client.Pipeline, mid: bytes, fields: dict[bytes, bytes], reason: str) -> None:
        log.error("alert stream entry %s cannot be dispatched (%s); moved to %s", mid.decode(), reason,
                  self.keys.dead_alerts)
        entry: dict[Any, Any] = {**fields, b"reason": reason.encode(), b"id": mid}
        pipe.xadd(self.keys.dead_alerts, entry)

    def run(self, stop: threading.Event) -> None:
        log.info("dispatcher %s started", self.name)
        run_steps(stop, f"dispatcher {self.name}", self.step, self.recover)

    def recover(self) -> None:
        """After a failed step: read what this consumer holds again, with the group there to read it."""
        self.read_pending = True
        self.ensure_group()
