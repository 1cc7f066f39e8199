"""What the pollers keep in Redis per source, shared by every poller process:

- ``P:source:NAME`` (hash): the validators of the last good answer (``etag``, ``last_modified``) for conditional
  requests; ``due`` (epoch seconds of the next poll); ``failures`` in a row; ``last_success``, ``last_error``
  (time and message), ``last_published`` (count) and ``last_poll``: what the status command shows.
- ``P:source:NAME:seen`` (sorted set): the id of every event the source published, scored by when, so a feed
  read again (no ETag, or a changed body that still lists old items) publishes only what is new. Ids older than
  ``SEEN_SECONDS`` are forgotten (a feed lists recent items; the evaluators' own dedup covers the rest).
- ``P:source:NAME:lock``: one poller at a time per source (SET NX PX, released by its holder only).

The new events and their ids go in one MULTI/EXEC: an event is on the streams exactly when its id is seen."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from alerts.events.wire import Event, encode_wire
from alerts.store.keys import Keys
from alerts.store.locks import release
from alerts.store.streams import WIRE_FIELD, shard_of

#: How long an id a source published is remembered (seconds).
SEEN_SECONDS = 90 * 86400
#: Most ids remembered per source (the oldest go first).
MAX_SEEN = 200_000
#: Longest error message kept for the status command (characters).
MAX_ERROR_TEXT = 500


def source_key(keys: Keys, name: str) -> str:
    return f"{keys.prefix}:source:{name}"


@dataclass(frozen=True)
class SourceStatus:
    name: str
    etag: str | None = None
    last_modified: str | None = None
    due: float = 0.0
    failures: int = 0
    last_poll: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_published: int | None = None


def _text(raw: dict[bytes, bytes], key: str) -> str | None:
    value = raw.get(key.encode())
    return value.decode("utf-8", "replace") if value else None


def _num(raw: dict[bytes, bytes], key: str) -> float | None:
    value = raw.get(key.encode())
    try:
        return float(value) if value else None
    except ValueError:
        return None


def read_status(client: redis.Redis, keys: Keys, names: Sequence[str]) -> dict[str, SourceStatus]:
    """What is stored of each named source (one pipelined read)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(source_key(keys, name))
    out: dict[str, SourceStatus] = {}
    for name, raw in zip(names, cast(list[dict[bytes, bytes]], pipe.execute() if names else []), strict=True):
        out[name] = SourceStatus(
            name, etag=_text(raw, "etag"), last_modified=_text(raw, "last_modified"), due=_num(raw, "due") or 0.0,
            failures=int(_num(raw, "failures") or 0), last_poll=_num(raw, "last_poll"),
            last_success=_num(raw, "last_success"), last_error=_text(raw, "last_error"),
            last_error_at=_num(raw, "last_error_at"), last_published=_opt_int(_num(raw, "last_published")))
    return out


def _opt_int(x: float | None) -> int | None:
    return int(x) if x is not None else None


def take_lock(client: redis.Redis, keys: Keys, name: str, token: str, ttl_seconds: float) -> bool:
    return bool(client.set(f"{source_key(keys, name)}:lock", token, nx=True, px=max(1, int(ttl_seconds * 1000))))


def drop_lock(client: redis.Redis, keys: Keys, name: str, token: str) -> None:
    release(client, f"{source_key(keys, name)}:lock", token)


def unseen(client: redis.Redis, keys: Keys, name: str, events: Sequence[Event]) -> list[Event]:
    """The events whose id the source has not published yet (and the first of ids repeated in ``events``)."""
    if not events:
        return []
    scores: list[float | None] = client.zmscore(f"{source_key(keys, name)}:seen", [e.id for e in events])
    out: list[Event] = []
    taken: set[str] = set()
    for ev, score in zip(events, scores, strict=True):
        if score is None and ev.id not in taken:
            taken.add(ev.id)
            out.append(ev)
    return out


def publish_new(client: redis.Redis, keys: Keys, name: str, events: Iterable[Event], shards: int,
                now: float | None = None) -> int:
    """Append ``events`` to the event streams and remember their ids, in one transaction; the count."""
    now = time.time() if now is None else now
    events = list(events)
    seen = f"{source_key(keys, name)}:seen"
    pipe = client.pipeline(transaction=True)
    for ev in events:
        pipe.xadd(keys.events(shard_of(ev, shards)), {WIRE_FIELD: encode_wire(ev)})
    if events:
        pipe.zadd(seen, {ev.id: now for ev in events})
    pipe.zremrangebyscore(seen, "-inf", now - SEEN_SECONDS)
    pipe.zremrangebyrank(seen, 0, -MAX_SEEN - 1)
    pipe.execute()
    return len(events)


def record_success(client: redis.Redis, keys: Keys, name: str, *, now: float, due: float, published: int,
                   etag: str | None, last_modified: str | None, not_modified: bool) -> None:
    fields: dict[str, str | float | int] = {"last_poll": now, "last_success": now, "due": due, "failures": 0,
                                            "last_published": published}
    pipe = client.pipeline(transaction=True)
    if not not_modified:  # a 200 replaces the validators (dropping those it no longer sends)
        pipe.hdel(source_key(keys, name), "etag", "last_modified")
        if etag:
            fields["etag"] = etag
        if last_modified:
            fields["last_modified"] = last_modified
    pipe.hset(source_key(keys, name), mapping=fields)  # type: ignore[arg-type]
    pipe.execute()


def record_failure(client: redis.Redis, keys: Keys, name: str, *, now: float, due: float, error: str) -> int:
    """Store a failed poll; the number of failures in a row, this one included."""
    pipe = client.pipeline(transaction=True)
    pipe.hincrby(source_key(keys, name), "failures", 1)
    pipe.hset(source_key(keys, name), mapping={"last_poll": now, "due": due, "last_error": error[:MAX_ERROR_TEXT],
                                               "last_error_at": now})
    return int(pipe.execute()[0])

