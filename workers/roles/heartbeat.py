"""The heartbeat thread of a service process (``alerts.store.heartbeats``): every ``HEARTBEAT_SECONDS`` it
writes the process's host, pid, roles and what each role owns or is doing, asked of the role objects.

A beat Redis refuses because it is out of memory (maxmemory, noeviction) is logged once, naming used/maxmemory,
and once more when beats are written again: meanwhile ``alerts status`` reports the process's state as unknown
(Redis full), not dead (``alerts.store.memory``)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping

import redis

from alerts.store import heartbeats, memory
from alerts.store.keys import Keys

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, client: redis.Redis, keys: Keys, doing: Mapping[str, Callable[[], str]],
                 interval: float = heartbeats.HEARTBEAT_SECONDS):
        self.client = client
        self.keys = keys
        self.doing = dict(doing)
        self.interval = interval
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:6]}"
        self.started = time.time()
        self.refused = False  # the last beat was refused: Redis out of memory (logged once)

    def describe(self) -> dict[str, str]:
        out = {}
        for role, what in self.doing.items():
            try:
                out[role] = what()
            except Exception as exc:  # a description must never stop the beat
                out[role] = f"? ({type(exc).__name__})"
        return out

    def beat_once(self) -> None:
        """One beat; Redis refusing it for want of memory is logged once (and its end), other outages not at all:
        the roles log those, and the next beat says the process is alive."""
        try:
            self.beat()
        except redis.RedisError as exc:
            if memory.is_oom(exc) and not self.refused:
                self.refused = True
                log.error("heartbeat of %s not written: %s; alerts status shows this process as unknown (Redis "
                          "full) until Redis has room", self.id, memory.describe(self.client))
            return
        if self.refused:
            self.refused = False
            log.warning("heartbeat of %s written again: Redis has room", self.id)

    def beat(self) -> None:
        heartbeats.beat(self.client, self.keys, self.id, host=self.host, pid=self.pid, roles=list(self.doing),
                        started=self.started, doing=self.describe())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.beat_once()
            stop.wait(self.interval)
        try:
            heartbeats.remove(self.client, self.keys, self.id)
        except redis.RedisError:
            log.debug("could not remove the heartbeat of %s", self.id)
