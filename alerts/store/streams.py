"""Streams: which shard an event goes to, the shard count every process must agree on, consumer groups
and reading them with typed replies, and the entries of the alert stream."""

from __future__ import annotations

import os
import socket
import time
import uuid
import zlib
from typing import Any, cast

import redis

from alerts.errors import ConfigError
from alerts.evaluate.breaker import BreakerVerdict
from alerts.events.wire import Event, PriceEvent
from alerts.model import Alert, decode_alerts, encode_alerts
from alerts.store.breaker import record
from alerts.store.keys import EVALUATOR_GROUP, Keys

#: The field of an event stream entry that holds the event's typed wire form (``alerts.events.encode_wire``).
#: Entries of versions before it hold the published JSON object in ``LEGACY_FIELD``, parsed again on reading.
WIRE_FIELD = "w"
LEGACY_FIELD = "e"

#: News and exchange rates all go to this shard: one owner evaluates them in order, so de-duplication
#: and cooldowns of news rules never race and each pair's rates are recorded in order. Both are a trickle
#: next to prices.
NEWS_SHARD = 0


def shard_of(event: Event, shards: int) -> int:
    """Events of one product always land on the same shard; news and fx (exchange rates) on NEWS_SHARD."""
    if isinstance(event, PriceEvent):
        return zlib.crc32(event.product_key.encode()) % shards
    return NEWS_SHARD


def check_shard_count(client: redis.Redis, keys: Keys, shards: int) -> None:
    """Every publisher and evaluator must use the same ALERTS_STREAM_SHARDS; the first one fixes it."""
    stored = client.hget(keys.config, "stream_shards")
    if stored is None:  # read first: a Redis out of memory refuses the write, and the read still answers
        client.hsetnx(keys.config, "stream_shards", shards)
        stored = client.hget(keys.config, "stream_shards")
    fixed = int(stored or shards)
    if fixed != shards:
        raise ConfigError(f"ALERTS_STREAM_SHARDS is {shards} here but {fixed} in Redis (prefix {keys.prefix!r}); "
                          "every process of a deployment must use the same value")


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def read_group(client: redis.Redis, group: str, consumer: str, streams: dict[str, str], count: int,
               block: int | None = None) -> list[tuple[bytes, StreamEntries]]:
    """XREADGROUP with the reply typed: [(stream name, [(entry id, fields)])]."""
    reply = client.xreadgroup(group, consumer, streams, count=count, block=block)  # type: ignore[arg-type]
    return cast(list[tuple[bytes, StreamEntries]], reply or [])


#: Alerts per entry of the alert stream: one XADD per hundred alerts, not one per alert (hot path).
ALERTS_PER_ENTRY = 100


def alert_entries(alerts: list[Alert]) -> list[dict[str, bytes]]:
    """Alert stream entries (``{"alerts": JSON list}``) holding these alerts, in order."""
    return [{"alerts": encode_alerts(alerts[i:i + ALERTS_PER_ENTRY])} for i in range(0, len(alerts), ALERTS_PER_ENTRY)]


def read_alerts(fields: dict[bytes, bytes]) -> list[Alert]:
    """The alerts of one alert stream entry, types checked. Raises ValueError saying what is wrong."""
    raw = fields.get(b"alerts")
    if raw is None:
        raise ValueError("not an alert entry (no alerts field)")
    return decode_alerts(raw)


def append_alerts(pipe: redis.client.Pipeline, keys: Keys, verdict: BreakerVerdict, window: float) -> None:
    """Queue, in a transaction, what the circuit breaker let through: its bookkeeping and the alerts on the
    alert stream (the dispatcher's input and the alert history). Every alert takes this one way out."""
    record(pipe, keys, verdict, window)
    for entry in alert_entries(verdict.alerts):
        pipe.xadd(keys.alerts, entry)  # type: ignore[arg-type]


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create a consumer group reading ``stream`` from its start (and the stream), unless it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def consumer_name(role: str) -> str:
    """A consumer (and process) name unique across hosts and restarts: role, host, pid, random."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


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


#: Entries counted at most per shard by ``waiting_events`` on a Redis without XINFO's lag (6.2).
WAITING_COUNT_MAX = 10_000


def evaluator_group(client: redis.Redis, stream: str) -> tuple[bool, dict[str, Any] | None]:
    """(whether the stream exists, the evaluators' consumer group of it as XINFO GROUPS gives it, or None)."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return False, None  # no such stream
    return True, next((g for g in groups if g["name"] in (EVALUATOR_GROUP, EVALUATOR_GROUP.encode())), None)


def waiting_events(client: redis.Redis, keys: Keys, shards: int) -> int:
    """Events on the event streams that no evaluator has committed yet: not read by the evaluators' group
    (every entry of a stream the group does not read yet) or read and still pending. On Redis 6.2, whose XINFO
    has no lag, the unread entries are counted by a read of at most ``WAITING_COUNT_MAX`` per shard."""
    total = 0
    for shard in range(shards):
        stream = keys.events(shard)
        exists, group = evaluator_group(client, stream)
        if not exists:
            continue  # nothing published to this shard
        if group is None:
            total += int(client.xlen(stream))
            continue
        total += int(group.get("pending") or 0)
        lag = group.get("lag")
        if lag is not None:
            total += int(lag)
            continue
        last = group["last-delivered-id"]
        after = b"(" + (last if isinstance(last, bytes) else str(last).encode())
        total += len(client.xrange(stream, min=after, max="+", count=WAITING_COUNT_MAX))  # type: ignore[arg-type]
    return total
