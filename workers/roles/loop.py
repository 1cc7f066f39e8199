"""The loop every worker thread runs: ``step`` until stopped. Nothing a step raises ends the thread:
Redis unavailable (a failover included: a write to a demoted primary is a ``ReadOnlyError``), streams
lost with Redis' data, Redis refusing writes at ``maxmemory``, or an error of ours is logged once per
failure (Redis unavailable or full: once per outage, without a traceback, and once when it answers again),
the worker ``recover``s (forgets what it holds, recreates what it needs) and tries again after
``RETRY_SECONDS``; what it had read but not committed stays pending in Redis and is read again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from alerts.errors import RedisOutOfMemory

log = logging.getLogger(__name__)

#: Seconds between a failed step and the next try.
RETRY_SECONDS = 1.0


def run_steps(stop: threading.Event, what: str, step: Callable[[], object], recover: Callable[[], None]) -> None:
    down = False  # Redis unavailable since the last step that went through: said once per outage
    full = False  # Redis refusing writes at maxmemory since then: said once too, without a traceback
    while not stop.is_set():
        try:
            step()
            if down:
                log.warning("%s: Redis answers again", what)
                down = False
            if full:
                log.warning("%s: Redis takes writes again", what)
                full = False
            continue
        except (redis.exceptions.OutOfMemoryError, RedisOutOfMemory):
            (log.debug if full else log.error)("%s: Redis is out of memory (maxmemory reached, writes refused); "
                                               "what it read stays pending; retrying every %gs (alerts status "
                                               "says how full)", what, RETRY_SECONDS)
            full = True
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError) as exc:
            # ReadOnlyError: a write reached a primary that was demoted (a failover); the next connection
            # goes to the new one (through the sentinels, or the URL's name once it points there)
            (log.debug if down else log.error)("%s: Redis unavailable (%s); retrying every %gs", what,
                                               type(exc).__name__, RETRY_SECONDS)
            down = True
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                log.error("%s: its stream is gone (Redis lost its data?); creating it again", what)
            else:
                log.exception("%s failed; what it read stays pending and is tried again", what)
        except Exception:
            log.exception("%s failed; what it read stays pending and is tried again", what)
        try:
            recover()
        except redis.RedisError as exc:
            (log.debug if down else log.error)("%s: cannot recover yet (%s); trying again", what,
                                               type(exc).__name__)
        stop.wait(RETRY_SECONDS)
