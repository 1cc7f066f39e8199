"""The event evaluator: reads event streams in batches and turns events into alerts, exactly once.

Events are spread over ``ALERTS_STREAM_SHARDS`` streams by product. Each shard is owned by one
evaluator at a time through a lease (a Redis key with a token and an expiry); live evaluators split
the shards evenly and take over the shards of one that stops heartbeating. Owning a shard means its
products' state can be cached in memory and its quotes are evaluated in order.

A batch commits in one MULTI/EXEC, guarded by WATCH on the leases: new state, quote history, the
alerts (appended to the alert stream) and the XACK of the batch. Killed before EXEC, nothing of the
batch happened and its entries are still pending; the next owner claims and re-evaluates them and
gets the same alerts with the same ids. Killed after EXEC, the batch is acknowledged and is never
evaluated again. Either way: no event lost, no alert doubled.

Spreads and all_of rules combine products that live on different shards: a batch only records
their inputs, and the event-time stage (``workers.roles.composer``) evaluates them.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from alerts.errors import EventError
from alerts.evaluate.session import Session
from alerts.events import Event, NewsEvent, NoticeEvent, PriceEvent, decode_wire, parse_event
from alerts.model import Alert, ProductState
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.batch import BatchCommit, InvalidEntry, LeaseLost, commit_batch, read_batch
from alerts.store.breaker import apply_breaker
from alerts.store.corrections import late_corrections
from alerts.store.keys import EVALUATOR_GROUP, Keys
from alerts.store.locks import release, renew
from alerts.store.metrics import EVALUATION_SECONDS, EVENTS_EVALUATED, EVENTS_REJECTED, PUBLISH_TO_EVALUATION, Recorder
from alerts.store.streams import (
    LEGACY_FIELD,
    WIRE_FIELD,
    check_shard_count,
    consumer_name,
    ensure_group,
    read_group,
)
from workers.roles.loop import run_steps

log = logging.getLogger(__name__)

_WIRE, _LEGACY = WIRE_FIELD.encode(), LEGACY_FIELD.encode()

#: One entry read from an event stream: (shard, entry id, fields).
Entry = tuple[int, bytes, dict[bytes, bytes]]


@dataclass
class BatchResult:
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)
    invalid: int = 0


@dataclass
class Decoded:
    """A batch of stream entries decoded once: the events in stream order, and the entries that are not
    events."""

    entries: list[Entry]
    events: list[tuple[bytes, Event]]  # (entry id, event)
    invalid: list[InvalidEntry]


class Evaluator:
    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet],
                 name: str | None = None):
        self.client = client
        self.settings = settings
        self.current_rules = rules
        self.keys = Keys(settings.key_prefix)
        self.name = name or consumer_name("evaluator")
        self.token = self.name.encode()
        self.owned: set[int] = set()
        self.needs_pending: set[int] = set()
        self.cache: dict[str, ProductState | None] = {}
        self._next_lease_check = 0.0
        self.commits: dict[int, int] = {}  # shard -> its commit counter as of our last commit
        self.metrics = Recorder(self.keys)  # counted per batch, flushed at most once a second
        check_shard_count(client, self.keys, settings.stream_shards)

    # --- shard leases ----------------------------------------------------------------------------

    def maintain_leases(self, force: bool = False) -> None:
        now = time.time()
        if not force and time.monotonic() < self._next_lease_check:
            return
        self._next_lease_check = time.monotonic() + self.settings.lease_seconds / 3
        ttl_ms = int(self.settings.lease_seconds * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self.keys.evaluators, {self.name: now})
        pipe.zremrangebyscore(self.keys.evaluators, "-inf", now - self.settings.lease_seconds)
        pipe.zcard(self.keys.evaluators)
        live = max(1, pipe.execute()[2])
        shards = self.settings.stream_shards
        fair = math.ceil(shards / live)
        for shard in sorted(self.owned):
            if not renew(self.client, self.keys.lease(shard), self.token, ttl_ms):
                log.warning("lost the lease of shard %d", shard)
                self._drop(shard)
        for shard in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - fair)]:
            release(self.client, self.keys.lease(shard), self.token)
            self._drop(shard)
        if len(self.owned) < fair:
            free = [s for s in range(shards) if s not in self.owned]
            random.shuffle(free)
            for shard in free:
                if len(self.owned) >= fair:
                    break
                if self.client.set(self.keys.lease(shard), self.token, nx=True, px=ttl_ms):
                    self._acquire(shard)

    def _acquire(self, shard: int) -> None:
        stream = self.keys.events(shard)
        ensure_group(self.client, stream, EVALUATOR_GROUP)
        self.commits[shard] = int(self.client.get(self.keys.commits(shard)) or 0)
        # Whatever is pending in this shard belongs to an owner that lost the lease: take it over.
        start: str | bytes = "0-0"
        while True:
            resp = self.client.xautoclaim(stream, EVALUATOR_GROUP, self.name, 0, start_id=start, count=1000)
            start = resp[0]
            if start in (b"0-0", "0-0"):
                break
        self.owned.add(shard)
        self.needs_pending.add(shard)
        log.debug("%s owns shard %d", self.name, shard)

    def _drop(self, shard: int) -> None:
        self.owned.discard(shard)
        self.needs_pending.discard(shard)
        self.commits.pop(shard, None)
        self.cache.clear()  # cheap to rebuild; avoids tracking which products live in which shard

    def release_all(self) -> None:
        for shard in list(self.owned):
            release(self.client, self.keys.lease(shard), self.token)
            self._drop(shard)
        self.client.zrem(self.keys.evaluators, self.name)

    # --- reading and evaluating ------------------------------------------------------------------

    def step(self) -> BatchResult:
        """Read one batch from the owned shards (waiting up to block_ms) and evaluate it."""
        self.maintain_leases()
        if not self.owned:
            time.sleep(min(1.0, self.settings.block_ms / 1000))
            return BatchResult()
        resp = None
        pending = sorted(self.needs_pending & self.owned)
        if pending:  # first what this consumer read (or claimed) but did not acknowledge
            streams = {self.keys.events(s): "0" for s in pending}
            resp = read_group(self.client, EVALUATOR_GROUP, self.name, streams, self.settings.batch_size)
            got = {self._shard_of_stream(name) for name, msgs in resp or [] if msgs}
            self.needs_pending -= set(pending) - got
        if not any(msgs for _, msgs in resp or []):
            streams = {self.keys.events(s): ">" for s in sorted(self.owned)}
            resp = read_group(self.client, EVALUATOR_GROUP, self.name, streams, self.settings.batch_size,
                              self.settings.block_ms)
        batch = [(shard, mid, fields) for name, msgs in resp or [] if msgs
                 for shard in (self._shard_of_stream(name),) for mid, fields in msgs]
        if not batch:
            self.metrics.maybe_flush(self.client)
            return BatchResult()
        try:
            return self.process(batch)
        except LeaseLost:
            shards = {s for s, _, _ in batch}
            log.warning("shards %s changed hands or lost data during a batch; their events stay pending and are "
                        "evaluated again from the stored state", sorted(shards))
            self._reset(shards)
            return BatchResult()

    def _reset(self, shards: set[int]) -> None:
        """Forget what we know of these shards and take them again from what Redis holds."""
        for s in shards:
            if s in self.owned:
                release(self.client, self.keys.lease(s), self.token)
            self._drop(s)
        self.maintain_leases(force=True)

    def _forget(self) -> None:
        """After an error: drop every shard locally (no Redis call); the next step takes them again."""
        for s in list(self.owned):
            self._drop(s)
        self._next_lease_check = 0.0

    def _shard_of_stream(self, name: bytes | str) -> int:
        n = name.decode() if isinstance(name, bytes) else name
        return int(n.rsplit(":", 1)[1])

    def process(self, batch: list[Entry]) -> BatchResult:
        """Evaluate and commit a batch. Raises LeaseLost when a shard changed hands (or Redis lost writes)
        before the commit: nothing of the batch was written, its events stay pending."""
        began = time.perf_counter()
        decoded = self.decode(batch)
        commit = self.prepare(decoded)
        try:
            self.commit(commit)
        except redis.WatchError:  # a lease moved between the check and the commit
            raise LeaseLost("a shard lease changed during the commit") from None
        for bad in decoded.invalid:
            log.error("shard %d entry %s rejected: %s", bad.shard, bad.entry_id.decode(), bad.reason)
        self._count(commit, len(decoded.events), len(decoded.invalid), time.perf_counter() - began)
        return BatchResult(len(decoded.events), commit.verdict.alerts, len(decoded.invalid))

    def _count(self, c: BatchCommit, events: int, invalid: int, seconds: float) -> None:
        """The metrics of a committed batch: a few counts per batch, not per event."""
        m = self.metrics
        m.inc(EVENTS_EVALUATED, events)
        m.inc(EVENTS_REJECTED, invalid, "evaluate")
        m.observe(EVALUATION_SECONDS, seconds)
        oldest = min(int(ids[0].partition(b"-")[0]) for ids in c.entry_ids.values())  # each shard's in order
        m.observe(PUBLISH_TO_EVALUATION, max(0.0, time.time() - oldest / 1000))
        m.verdict(c.verdict)
        m.maybe_flush(self.client)

    def decode(self, batch: list[Entry]) -> Decoded:
        """Each entry decoded once, from its typed wire form; entries of older versions (the published JSON
        object) are parsed as publish parses them."""
        events: list[tuple[bytes, Event]] = []
        invalid: list[InvalidEntry] = []
        for shard, mid, fields in batch:
            wire = fields.get(_WIRE)
            raw = wire if wire is not None else fields.get(_LEGACY, b"")
            try:
                if wire is not None:
                    events.append((mid, decode_wire(wire)))
                else:
                    rules = self.current_rules()
                    events.append((mid, parse_event(json.loads(raw), rules.catalog, self.settings.timezone)))
            except (EventError, ValueError) as exc:
                invalid.append(InvalidEntry(shard, mid, raw, str(exc)))
            except Exception as exc:  # one poisonous entry must not block its shard
                invalid.append(InvalidEntry(shard, mid, raw, f"{type(exc).__name__}: {exc}"))
        return Decoded(batch, events, invalid)

    def prepare(self, decoded: Decoded) -> BatchCommit:
        """Read what the batch needs (one round trip), evaluate it, and say what to commit."""
        rules = self.current_rules()
        events = [ev for _, ev in decoded.events]
        news = [ev for ev in events if isinstance(ev, NewsEvent | NoticeEvent)]  # remembered by article key
        missing = {ev.product_key for ev in events if isinstance(ev, PriceEvent)} - self.cache.keys()
        reads = read_batch(self.client, self.keys, sorted(missing),
                           sorted({k for ev in news for k in ev.article_keys}), bool(news))
        self.cache.update(reads.states)
        session = Session(rules, self.cache, reads.seen, reads.news_fired, arrived=time.time(),
                          fx_max_age=self.settings.fx_max_age_days * 86400)
        fired: list[Alert] = []
        for mid, ev in decoded.events:
            new = session.apply(ev, mid.decode())
            if new:
                published = int(mid.partition(b"-")[0]) / 1000  # the entry id's time: when it was published
                for a in new:
                    a.published = published
                fired.extend(new)
        session.corrections.extend(late_corrections(self.client, self.keys, session))
        verdict = apply_breaker(self.client, self.keys, fired, self.settings.breaker_max_alerts,
                                self.settings.breaker_window_seconds)
        entry_ids: dict[int, list[bytes]] = {}
        for shard, mid, _ in decoded.entries:
            entry_ids.setdefault(shard, []).append(mid)
        return BatchCommit(self.token, entry_ids, self.commits, session, verdict, decoded.invalid)

    def commit(self, c: BatchCommit) -> None:
        """Write a prepared batch (``alerts.store.batch.commit_batch``) and keep what it wrote in the cache."""
        commit_batch(self.client, self.keys, c, int(self.settings.lease_seconds * 1000),
                     self.settings.breaker_window_seconds)
        for shard in c.shards:
            self.commits[shard] += 1
        self.cache.update(c.session.changed)

    def run(self, stop: threading.Event) -> None:
        log.info("evaluator %s started", self.name)
        run_steps(stop, f"evaluator {self.name}", self.step, self._forget)
        try:
            self.release_all()
            self.metrics.flush(self.client)
        except redis.RedisError:
            pass
        log.info("evaluator %s stopped", self.name)
