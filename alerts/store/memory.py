"""Redis out of memory: a Redis at ``maxmemory`` with the ``noeviction`` policy (the one this service asks for:
``alerts status`` warns about the others) refuses every write with ``OOM command not allowed when used memory >
'maxmemory'``, while reads, PING and INFO still answer. Nothing is lost, nothing new is stored: the publisher says
which events were stored (``alerts.errors.RedisOutOfMemory``), the heartbeats cannot be written (so a live process
looks silent), and ``alerts status`` says Redis is full instead of blaming the processes.

``is_oom`` tells that refusal from other errors (redis-py raises ``redis.exceptions.OutOfMemoryError``, a
``ResponseError``, and puts it in a pipeline's results with ``raise_on_error=False``); ``read_memory`` reads
``INFO memory``; ``describe`` names what it says in a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import OutOfMemoryError

#: What Redis answers a write it refuses at maxmemory (redis-py keeps the text after the ``OOM`` code).
OOM_REPLY = "OOM command not allowed"


def is_oom(exc: object) -> bool:
    """Whether ``exc`` (an exception, or a pipeline's result) is Redis refusing a write at maxmemory."""
    if isinstance(exc, OutOfMemoryError):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(("OOM", "command not allowed when used memory"))


@dataclass(frozen=True)
class Memory:
    """What ``INFO memory`` says: bytes used, ``maxmemory`` (0: no limit) and the policy at the limit."""

    used: int
    maxmemory: int
    policy: str
    used_human: str = ""
    maxmemory_human: str = ""

    @property
    def refuses_writes_when_full(self) -> bool:
        return self.maxmemory > 0 and self.policy == "noeviction"

    @property
    def full(self) -> bool:
        """At or over maxmemory with noeviction: Redis refuses writes."""
        return self.refuses_writes_when_full and self.used >= self.maxmemory

    def __str__(self) -> str:
        used = self.used_human or f"{self.used:,} bytes"
        limit = (self.maxmemory_human or f"{self.maxmemory:,} bytes") if self.maxmemory else "no limit"
        return f"used {used} of maxmemory {limit}, maxmemory-policy {self.policy}"


def memory_of(info: dict[str, Any]) -> Memory:
    """A ``Memory`` from an INFO reply (``INFO`` or ``INFO memory``)."""
    return Memory(int(info.get("used_memory", 0)), int(info.get("maxmemory", 0) or 0),
                  str(info.get("maxmemory_policy", "?")), str(info.get("used_memory_human", "")),
                  str(info.get("maxmemory_human", "")))


def read_memory(client: redis.Redis) -> Memory | None:
    """``INFO memory``, or None when it cannot be read (Redis gone, INFO renamed away)."""
    try:
        return memory_of(client.info("memory"))
    except (redis.RedisError, ValueError, TypeError):
        return None


def describe(client: redis.Redis) -> str:
    """"Redis is out of memory (used 1.04M of maxmemory 1.00M, maxmemory-policy noeviction)", for a message."""
    mem = read_memory(client)
    return f"Redis is out of memory ({mem if mem is not None else 'INFO memory unreadable'}; it answered " \
           f"{OOM_REPLY!r})"


def write_refused(client: redis.Redis, key: str) -> bool:
    """Whether Redis refuses a write now (a ``SET key`` that expires in 10 s: the probe of ``alerts status``)."""
    try:
        client.set(key, b"1", px=10_000)
    except redis.ResponseError as exc:
        if is_oom(exc):
            return True
        raise
    return False
