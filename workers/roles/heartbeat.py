"""The heartbeat thread of a service process (``alerts.store.heartbeats``): every ``HEARTBEAT_SECONDS`` it
writes the process's host, pid, roles and what each role owns or is doing, asked of the role objects."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping

import redis

from alerts.store import heartbeats
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

    def describe(self) -> dict[str, str]:
        out = {}
        for role, what in self.doing.items():
            try:
                out[role] = what()
            except Exception as exc:  # a description must never stop the beat
                out[role] = f"? ({type(exc).__name__})"
        return out

    def beat(self) -> None:
        heartbeats.beat(self.client, self.keys, self.id, host=self.host, pid=self.pid, roles=list(self.doing),
                        started=self.started, doing=self.describe())

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.beat()
            except redis.RedisError:
                pass  # the roles log Redis outages; the next beat says we are alive
            stop.wait(self.interval)
        try:
            heartbeats.remove(self.client, self.keys, self.id)
        except redis.RedisError:
            log.debug("could not remove the heartbeat of %s", self.id)
