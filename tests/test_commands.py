"""The service commands as a user runs them: a private redis-server, the demo, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

from alerts.store.server import PrivateRedis

REPO = Path(__file__).resolve().parents[1]


def private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"ALERTS_DATA_DIR": str(tmp_path / "data"), "ALERTS_RULES_DIR": str(REPO / "rules"), **extra})
    return env


def test_demo_fires_alerts_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--demo"], env=private_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    wanted = ("[prnd-oxide-450k] Pr-Nd oxide 452,000 CNY/t on 2025-02-25", "[quota-news]")
    while not all(any(w in line for line in lines) for w in wanted):
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    err = proc.stderr.read()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    assert "ALERTS_SLACK_BOT_TOKEN is not set" in err
    # the >450k alert fired once, not every day the price stayed above
    assert sum("[prnd-oxide-450k]" in line and "console" not in line for line in lines) == 2  # Slack + console
    assert not (tmp_path / "data" / "redis.sock").exists(), "the private redis-server it started is stopped"


def test_events_published_while_nothing_runs_survive_in_the_private_server(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    line = '{"type": "price", "product": "Dy oxide", "price": 1710, "unit": "CNY/kg", "as_of": "2025-02-28"}\n'
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], env=env, input=line * 3,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    private = PrivateRedis(tmp_path / "data")
    assert not private.running()  # publish started it and stopped it again
    private.start()
    try:
        client = redis.Redis(unix_socket_path=str(private.socket))
        total = sum(client.xlen(k) for k in client.scan_iter("alerts:events:*"))
        assert total == 3
        client.close()
    finally:
        private.stop()
