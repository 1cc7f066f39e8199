"""The circuit breaker pauses a rule that fires too often, tells its targets once, and resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules

RULES = """
rules:
  - id: flappy
    price: {product: Pr-Nd oxide, crosses_above: 450000}
    notify: [console]
"""


def flaps(start: int, n: int) -> list[dict[str, object]]:
    return [quote(440_000 if i % 2 == 0 else 460_000, f"2025-01-01T00:{i:02d}:00+08:00")
            for i in range(start, start + n)]


def test_breaker_pauses_notifies_once_and_resumes(client: redis.Redis, settings: Settings,
                                                  rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"breaker_max_alerts": 3})
    p = Pipeline(client, s)
    out = p.run(*flaps(0, 12))  # six crossings
    assert [a.kind for a in out] == ["price", "price", "price", "notice"]
    notice = out[-1]
    assert "fired more than 3 times in 10 minutes and is paused" in notice.text
    assert "alerts rules resume flappy" in notice.text and notice.targets == ("console",)
    assert p.run(*flaps(12, 4)) == []  # still paused: held, no second notice
    stream = p.alert_stream()
    assert [a["kind"] for a in stream] == ["price", "price", "price", "notice"]

    env = env_for(s)
    explained = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "explain", "flappy"], env=env,
                               capture_output=True, text=True, check=False).stdout
    assert "PAUSED by the circuit breaker" in explained
    resumed = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "resume", "flappy"], env=env,
                             capture_output=True, text=True, check=False)
    assert resumed.returncode == 0 and "flappy: resumed" in resumed.stdout
    assert [a.kind for a in p.run(*flaps(16, 2))] == ["price"]
    again = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "resume", "flappy"], env=env,
                           capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "was not paused" in again.stderr
