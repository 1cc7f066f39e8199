"""A service started before its Redis waits for it (one log line), then runs; ``alerts publish`` without Redis
says so in one line, with no password and no traceback."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from alerts.settings import Settings
from alerts.store.server import redis_server_binary
from tests.conftest import env_for
from tests.servers import free_port, wait_for, write_rules


def test_a_worker_started_before_redis_waits_for_it_then_evaluates(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, "rules:\n  - id: r\n    price: {product: Pr-Nd oxide, above: 450000 CNY/t}\n"
                           "    notify: [console]\n")
    port = free_port()
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"],
                            env=env_for(settings, ALERTS_REDIS_URL=url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    data = tempfile.mkdtemp(prefix="alerts-test-late-redis-")
    server = None
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:  # Redis comes up once the worker said it waits (a busy machine may take seconds to start the worker)
        wait_for(lambda: any("Redis unreachable at" in line for line in lines) or proc.poll() is not None, 60,
                 "the worker's line that it waits for Redis")
        time.sleep(0.5)
        assert proc.poll() is None, "the worker must wait for Redis, not exit"
        server = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", data, "--requirepass", "s3cret"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(url)
        wait_for(lambda: _answers(client), 15, "redis-server")
        pub = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], input=json.dumps(
            {"type": "price", "product": "Pr-Nd oxide", "price": 455000, "unit": "CNY/t", "as_of": "2025-03-11"}),
            env=env_for(settings, ALERTS_REDIS_URL=url), capture_output=True, text=True, timeout=60)
        assert pub.returncode == 0, pub.stderr
        wait_for(lambda: client.xlen("alerts:alerts") >= 1, 30, "the alert of the event published after the wait")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(10)
        proc.stderr.close()  # type: ignore[union-attr]
        err = "".join(lines)
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(data, ignore_errors=True)
    assert proc.returncode == 0, err
    waits = [line for line in err.splitlines() if "Redis unreachable at" in line]
    assert len(waits) == 1 and f"127.0.0.1:{port}" in waits[0], err
    assert "s3cret" not in err
    assert "answers again; starting" in err


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_publish_without_redis_is_one_line(settings: Settings, tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"type": "news", "headline": "x"}\n')
    out = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(events)],
                         env=env_for(settings, ALERTS_REDIS_URL=f"redis://:hunter2@127.0.0.1:{free_port()}/0"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alerts: Redis unreachable at 127.0.0.1:"), out.stderr
    assert "(ALERTS_REDIS_URL)" in lines[0] and "Traceback" not in out.stderr
    assert "hunter2" not in out.stderr


def test_a_sigterm_while_waiting_for_redis_stops_the_worker_cleanly(settings: Settings, rules_dir: Path) -> None:
    """The signal is the service's from its start: a worker stopped before its Redis ever answered (or while its
    roles start) exits 0 at once, not killed by the signal's default action."""
    write_rules(rules_dir, "rules:\n  - id: r\n    price: {product: Pr-Nd oxide, above: 450000 CNY/t}\n"
                           "    notify: [console]\n")
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"],
                            env=env_for(settings, ALERTS_REDIS_URL=url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # until it says it waits
            if "Redis unreachable at" in line:
                break
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10  # not after the next try
    assert "Traceback" not in err
