"""Process heartbeats: every service process (``alerts run``, ``alerts worker``) says every
``HEARTBEAT_SECONDS`` that it is alive, with its host, pid, roles and what each role owns or is doing, so the
status command and ``/readyz`` can tell live processes from dead ones.

Keys: ``P:procs`` (sorted set: process id -> time of its last beat) and ``P:proc:{id}`` (hash: host, pid,
roles, started, beat, doing as JSON). A process that stops cleanly removes itself; one that dies (SIGKILL, a
lost machine) stops beating and is shown as dead for ``FORGET_AFTER_SECONDS``, then forgotten."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import redis

from alerts.store.keys import Keys

#: Seconds between two heartbeats of a process.
HEARTBEAT_SECONDS = 5.0
#: A process whose last beat is older than this (seconds) is dead: four beats missed.
DEAD_AFTER_SECONDS = 20.0
#: A dead process is shown (and its roles counted as expected) this long after its last beat (seconds).
FORGET_AFTER_SECONDS = 3600.0


def procs_key(keys: Keys) -> str:
    return f"{keys.prefix}:procs"


def proc_key(keys: Keys, proc_id: str) -> str:
    return f"{keys.prefix}:proc:{proc_id}"


@dataclass(frozen=True)
class Proc:
    id: str
    host: str
    pid: int
    roles: tuple[str, ...]
    started: float
    beat: float
    doing: Mapping[str, str] = field(default_factory=dict)
    alive: bool = True


def beat(client: redis.Redis, keys: Keys, proc_id: str, *, host: str, pid: int, roles: Sequence[str],
         started: float, doing: Mapping[str, str], now: float | None = None) -> None:
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=True)
    pipe.hset(proc_key(keys, proc_id), mapping={
        "host": host, "pid": pid, "roles": ",".join(roles), "started": started, "beat": now,
        "doing": json.dumps(dict(doing), ensure_ascii=False)})
    pipe.expire(proc_key(keys, proc_id), int(FORGET_AFTER_SECONDS))
    pipe.zadd(procs_key(keys), {proc_id: now})
    pipe.zremrangebyscore(procs_key(keys), "-inf", now - FORGET_AFTER_SECONDS)
    pipe.execute()


def remove(client: redis.Redis, keys: Keys, proc_id: str) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(proc_key(keys, proc_id))
    pipe.zrem(procs_key(keys), proc_id)
    pipe.execute()


def processes(client: redis.Redis, keys: Keys, now: float | None = None) -> list[Proc]:
    """Every process seen within ``FORGET_AFTER_SECONDS``, live ones first, each group by host and pid."""
    now = time.time() if now is None else now
    ids = [m.decode() for m in cast(list[bytes], client.zrangebyscore(procs_key(keys), now - FORGET_AFTER_SECONDS,
                                                                         "+inf"))]
    pipe = client.pipeline(transaction=False)
    for pid in ids:
        pipe.hgetall(proc_key(keys, pid))
    out: list[Proc] = []
    for proc_id, raw in zip(ids, cast(list[dict[bytes, bytes]], pipe.execute() if ids else []), strict=True):
        if not raw:
            continue
        try:
            last = float(raw[b"beat"])
            doing = json.loads(raw.get(b"doing", b"{}"))
            out.append(Proc(proc_id, raw.get(b"host", b"?").decode(), int(raw.get(b"pid", b"0")),
                            tuple(r for r in raw.get(b"roles", b"").decode().split(",") if r),
                            float(raw.get(b"started", b"0")), last,
                            {str(k): str(v) for k, v in doing.items()} if isinstance(doing, dict) else {},
                            alive=now - last <= DEAD_AFTER_SECONDS))
        except (KeyError, ValueError):
            continue
    out.sort(key=lambda p: (not p.alive, p.host, p.pid))
    return out
