"""Redis restarts under a running service: ``alerts worker --role deliver --role dispatch --role evaluate``
rides it out by itself (no exit, one line per role for the outage, not one per try) and an event
published after Redis is back is delivered."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.conftest import env_for
from tests.servers import RestartableRedisServer, wait_for, write_rules

RULES = "rules:\n  - id: licences\n    news: {any: [export licen*]}\n    notify: [console]\n"


def publish(url: str, s: Settings, n: int) -> None:
    rs = load_rules(s.rules_dir, timezone=s.timezone)
    with redis.Redis.from_url(url) as client:
        report = Publisher(client, rs.catalog, s.timezone, s.stream_shards, s.key_prefix).publish(
            {"type": "news", "id": f"n{n}", "headline": f"Export licences, round {n}", "source": "smm"})
        assert report.ok, report.errors


def delivered(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return len(list(client.scan_iter("alerts:delivered:*:console")))


def outage_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(r"Redis unavailable|could not connect", line)]


def outage_threads(text: str) -> Counter[str]:
    """How many outage lines each role's thread logged (the text before "Redis unavailable")."""
    return Counter(line.split("ERROR ", 1)[-1].split("Redis unavailable")[0] for line in outage_lines(text))


@pytest.mark.parametrize("command", [["worker", "--role", "deliver", "--role", "dispatch", "--role", "evaluate"],
                                     ["run"]], ids=["worker", "run"])
def test_every_role_rides_out_a_redis_restart(settings: Settings, rules_dir: Path, tmp_path: Path,
                                              command: list[str]) -> None:
    server = RestartableRedisServer()
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"redis_url": SecretStr(server.url)})
    err = tmp_path / "stderr.log"
    with open(tmp_path / "stdout.log", "wb") as out, open(err, "wb") as errf:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", *command], env=env_for(s), stdout=out,
                                stderr=errf)
        try:
            publish(server.url, s, 1)
            wait_for(lambda: delivered(server.url) == 1, 20, "the first alert delivered")
            server.halt()
            # Redis comes back once each role has said it is gone (a fixed wait missed a role on a busy machine)
            wait_for(lambda: len(outage_threads(err.read_text())) >= 4 + (command == ["run"])
                     or proc.poll() is not None, 30, "every role's line that Redis is unavailable")
            time.sleep(2.0)  # several tries more while Redis is away: still one line per role
            assert proc.poll() is None, err.read_text()
            server.start()
            back = time.monotonic()
            publish(server.url, s, 2)
            wait_for(lambda: delivered(server.url) == 2, 20, "the alert published after the restart delivered")
            assert time.monotonic() - back < 20
            assert proc.poll() is None
            # each role says Redis answers again at its next try (the periodic jobs try once a second)
            wait_for(lambda: err.read_text().count("answers again") >= len(outage_threads(err.read_text())), 30,
                     "every role's line that Redis answers again")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, err.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            server.stop()
    text = err.read_text()
    outage = outage_lines(text)
    by_thread = outage_threads(text)
    # the deliver role once for its workers; the dispatcher, the evaluator and its event-time stage once each;
    # with `run`, the periodic jobs too
    assert len(by_thread) == 4 + (command == ["run"]) and all(n == 1 for n in by_thread.values()), "\n".join(outage)
    assert text.count("answers again") == len(by_thread), text
