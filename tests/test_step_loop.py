"""The step loop every worker thread runs rides out a full Redis as it rides out an unreachable one: one log line
per outage, no traceback, one line when writes are taken again, and the thread goes on."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from alerts.errors import RedisOutOfMemory
from workers.roles import loop


@pytest.mark.parametrize("full", [redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > "
                                                                    "'maxmemory'."),
                                  RedisOutOfMemory("Redis out of memory: used 2.0 MB of maxmemory 2.0 MB")])
def test_a_full_redis_is_said_once_without_a_traceback(full: Exception, caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    calls = {"step": 0, "recover": 0}

    def step() -> None:
        calls["step"] += 1
        if calls["step"] <= 2:
            raise full
        if calls["step"] >= 4:
            stop.set()

    def recover() -> None:
        calls["recover"] += 1

    with caplog.at_level(logging.DEBUG, logger=loop.__name__):
        loop.run_steps(stop, "evaluator e1", step, recover)
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in said] == ["ERROR", "WARNING"]
    assert "out of memory" in said[0].getMessage() and "takes writes again" in said[1].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert calls == {"step": 4, "recover": 2}
