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
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from alerts.errors import EventError
from alerts.evaluate.session import Session, shared_rules
from alerts.events import NewsEvent, PriceEvent, parse_event
from alerts.model import Alert, ProductState
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.breaker import BreakerVerdict, apply_breaker, record
from alerts.store.keys import EVALUATOR_GROUP, INVALID_MAXLEN, SEEN_TTL, Keys
from alerts.store.state import decode_state, encode_state, history_member, news_member
from alerts.store.streams import alert_entries, check_shard_count, read_group

log = logging.getLogger("alerts.evaluator")

_RENEW = """
local owner = redis.call('get', KEYS[1])
if owner == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not owner and ARGV[3] == '1' then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


#: Times a batch is evaluated again when shared state changed under it before it gives the shards up.
WATCH_RETRIES = 5


class LeaseLost(Exception):
    pass


@dataclass
class BatchResult:
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)
    invalid: int = 0


def consumer_name(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Evaluator:
    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet],
                 name: str | None = None, on_alert: Callable[[Alert], None] | None = None):
        self.client = client
        self.settings = settings
        self.rules = rules
        self.keys = Keys(settings.key_prefix)
        self.name = name or consumer_name("evaluator")
        self.token = self.name.encode()
        self.owned: set[int] = set()
        self.needs_pending: set[int] = set()
        self.cache: dict[str, ProductState | None] = {}
        self.on_alert = on_alert
        self._next_lease_check = 0.0
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.commits: dict[int, int] = {}  # shard -> its commit counter as of our last commit
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
            if not self._renew(keys=[self.keys.lease(shard)], args=[self.token, ttl_ms, 0]):
                log.warning("lost the lease of shard %d", shard)
                self._drop(shard)
        for shard in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - fair)]:
            self._release(keys=[self.keys.lease(shard)], args=[self.token])
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
        try:
            self.client.xgroup_create(stream, EVALUATOR_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
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
        log.info("%s owns shard %d", self.name, shard)

    def _drop(self, shard: int) -> None:
        self.owned.discard(shard)
        self.needs_pending.discard(shard)
        self.commits.pop(shard, None)
        self.cache.clear()  # cheap to rebuild; avoids tracking which products live in which shard

    def release_all(self) -> None:
        for shard in list(self.owned):
            self._release(keys=[self.keys.lease(shard)], args=[self.token])
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
        batch = [(self._shard_of_stream(name), mid, fields) for name, msgs in resp or [] for mid, fields in msgs]
        if not batch:
            return BatchResult()
        try:
            for _ in range(WATCH_RETRIES):
                try:
                    return self.process(batch)
                except redis.WatchError:  # shared state moved under us, or the lease: evaluate again
                    continue
            raise LeaseLost("the batch kept conflicting")
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
                self._release(keys=[self.keys.lease(s)], args=[self.token])
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

    def process(self, batch: list[tuple[int, bytes, dict[bytes, bytes]]]) -> BatchResult:
        rules = self.rules()
        tz = self.settings.timezone
        result = BatchResult()
        parsed: list[tuple[int, bytes, PriceEvent | NewsEvent]] = []
        invalid: list[tuple[int, bytes, bytes, str]] = []
        for shard, mid, fields in batch:
            raw = fields.get(b"e", b"")
            try:
                parsed.append((shard, mid, parse_event(json.loads(raw), rules.catalog, tz)))
            except (EventError, ValueError) as exc:
                invalid.append((shard, mid, raw, str(exc)))
            except Exception as exc:  # one poisonous entry must not block its shard
                invalid.append((shard, mid, raw, f"{type(exc).__name__}: {exc}"))
        # state of the products in this batch: from the cache, else one pipelined read
        missing = {ev.product_key for _, _, ev in parsed if isinstance(ev, PriceEvent)} - self.cache.keys()
        news = [ev for _, _, ev in parsed if isinstance(ev, NewsEvent)]
        pipe = self.client.pipeline(transaction=False)
        missing_list = sorted(missing)
        for pk in missing_list:
            pipe.hgetall(self.keys.state(pk))
        article_keys = sorted({k for ev in news for k in ev.article_keys})
        for ak in article_keys:
            pipe.smembers(self.keys.seen(ak))
        if news:
            pipe.hgetall(self.keys.news_fired)
        shared_fps = sorted(shared_rules(rules, [ev for _, _, ev in parsed]))
        for fp in shared_fps:
            pipe.get(self.keys.shared(fp))
        replies = pipe.execute() if (missing_list or news or shared_fps) else []
        shared_raw = replies[len(replies) - len(shared_fps):]
        shared = {fp: json.loads(v) for fp, v in zip(shared_fps, shared_raw, strict=True) if v}
        replies = replies[:len(replies) - len(shared_fps)]
        for pk, raw in zip(missing_list, replies, strict=False):
            self.cache[pk] = decode_state(raw)
        seen = {ak: {m.decode() for m in r} for ak, r in
                zip(article_keys, replies[len(missing_list):], strict=False)}
        news_fired = {k.decode(): float(v) for k, v in replies[-1].items()} if news else {}
        session = Session(rules, self.cache, seen, news_fired, shared)
        fired: list[Alert] = []
        for _shard, mid, ev in parsed:
            fired.extend(session.apply(ev, mid.decode()))
        verdict = apply_breaker(self.client, self.keys, fired, self.settings.breaker_max_alerts,
                                self.settings.breaker_window_seconds)
        result.alerts = verdict.alerts
        self._commit(batch, session, verdict, invalid, dict(zip([self.keys.shared(fp) for fp in shared_fps],
                                                                 shared_raw, strict=True)))
        self.cache.update(session.changed)
        result.events = len(parsed)
        result.invalid = len(invalid)
        for shard, mid, _raw, reason in invalid:
            log.error("shard %d entry %s rejected: %s", shard, mid.decode(), reason)
        if self.on_alert:
            for a in result.alerts:
                self.on_alert(a)
        return result

    def _commit(self, batch: list[tuple[int, bytes, dict[bytes, bytes]]], session: Session,
                verdict: BreakerVerdict, invalid: list[tuple[int, bytes, bytes, str]],
                shared_read: dict[str, bytes | None]) -> None:
        """``shared_read``: the shared-state keys this batch read, with what it read."""
        shards = sorted({s for s, _, _ in batch})
        lease_keys = [self.keys.lease(s) for s in shards]
        commit_keys = [self.keys.commits(s) for s in shards]
        ttl_ms = int(self.settings.lease_seconds * 1000)
        for key in lease_keys:  # a long batch may have outlived its lease: renew it, or take it back if free
            if not self._renew(keys=[key], args=[self.token, ttl_ms, 1]):
                raise LeaseLost(shards)
        history: dict[str, dict[str, float]] = {}
        for ev, late, seq in session.prices:
            key = self.keys.history(ev.product_key, ev.source)
            history.setdefault(key, {})[history_member(ev, late, seq)] = ev.as_of
        with self.client.pipeline(transaction=True) as pipe:
            # shared state (spreads, all_of) may be moved by evaluators of other shards: optimistic locking
            pipe.watch(*lease_keys, *commit_keys, *shared_read)
            values = pipe.mget(lease_keys + commit_keys + list(shared_read))
            if any(v != self.token for v in values[:len(shards)]):
                raise LeaseLost(shards)
            # Another commit since ours (an owner in between) or fewer commits (Redis lost writes):
            # the cached state is not Redis' state.
            counters = [int(v or 0) for v in values[len(shards):2 * len(shards)]]
            if counters != [self.commits.get(s, -1) for s in shards]:
                raise LeaseLost(shards)
            if values[2 * len(shards):] != list(shared_read.values()):
                raise redis.WatchError("shared rule state changed since this batch read it")
            pipe.multi()
            for pk, st in session.changed.items():
                pipe.hset(self.keys.state(pk), mapping=encode_state(st))  # type: ignore[arg-type]
            for key, members in history.items():
                pipe.zadd(key, members)  # type: ignore[arg-type]
            if session.news:
                pipe.zadd(self.keys.news_history, {news_member(ev, seq): ev.published_at for ev, seq in session.news})
            for ak, rule_ids in session.seen_added.items():
                pipe.sadd(self.keys.seen(ak), *sorted(rule_ids))
                pipe.expire(self.keys.seen(ak), SEEN_TTL)
            for fp in session.shared_changed:
                pipe.set(self.keys.shared(fp), json.dumps(session.shared[fp], separators=(",", ":")))
            if session.news_fired_changed:
                pipe.hset(self.keys.news_fired, mapping=session.news_fired_changed)  # type: ignore[arg-type]
            record(pipe, self.keys, verdict, self.settings.breaker_window_seconds)
            for entry in alert_entries([a.to_dict() for a in verdict.alerts]):
                pipe.xadd(self.keys.alerts, entry)  # type: ignore[arg-type]
            for shard, _mid, raw, reason in invalid:
                pipe.xadd(self.keys.invalid, {"e": raw, "reason": reason, "stream": self.keys.events(shard)},
                          maxlen=INVALID_MAXLEN, approximate=True)
            by_shard: dict[int, list[bytes]] = {}
            for s, entry_id, _ in batch:
                by_shard.setdefault(s, []).append(entry_id)
            for s, mids in by_shard.items():
                pipe.xack(self.keys.events(s), EVALUATOR_GROUP, *mids)
                pipe.incr(self.keys.commits(s))
            pipe.execute()
        for s in shards:
            self.commits[s] += 1

    def run(self, stop: threading.Event) -> None:
        log.info("evaluator %s started", self.name)
        while not stop.is_set():
            try:
                self.step()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.error("Redis unavailable (%s); retrying in 1s", type(exc).__name__)
                self._forget()
                stop.wait(1.0)
            except Exception as exc:
                if isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc):
                    log.error("event streams are gone (Redis lost its data?); taking the shards again")
                else:
                    log.exception("evaluation failed; the batch stays pending and is tried again")
                self._forget()
                stop.wait(1.0)
        try:
            self.release_all()
        except redis.RedisError:
            pass
        log.info("evaluator %s stopped", self.name)
