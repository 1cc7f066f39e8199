"""The service commands as a user runs them: a private redis-server, the demo, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

import alerts.settings as settings_module
from alerts.settings import Settings
from alerts.store.server import PrivateRedis
from tests.conftest import env_for
from workers.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def private_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"ALERTS_DATA_DIR": str(tmp_path / "data"), "ALERTS_RULES_DIR": str(REPO / "rules"),
                "ALERTS_HTTP_PORT": "0", **extra})  # the HTTP app on any free port
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
    assert err.count("ALERTS_SLACK_BOT_TOKEN is not set") == 1
    # details are for --verbose: shard leases, rq's scheduler lock, an empty digest not sent
    assert "owns shard" not in err and "scheduler lock" not in err and "empty" not in err, err
    # the >450k alert fired once, not every day the price stayed above, and is printed once for both its targets
    (line,) = [line for line in lines if "[prnd-oxide-450k]" in line]
    assert line.rstrip().endswith("-> slack:#rare-earths (Slack not configured), console")
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


# --- settings and the rules directory are checked at start (issue 8) ------------------------------------------

@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The working directory (no .env of the developer's) and fresh once-only warnings, for main() in process."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings_module, "_warned", set())
    monkeypatch.setenv("ALERTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALERTS_RULES_DIR", str(REPO / "rules"))
    return tmp_path


COMMANDS = [["run"], ["run", "--demo"], ["worker"], ["worker", "--role", "deliver"], ["publish", "-"],
            ["rules", "check"], ["rules", "explain", "x"], ["backtest", "--events", "-"], ["failed"],
            ["digest", "preview", "x"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_bad_setting_stops_every_command_with_one_line(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    monkeypatch.setenv("ALERTS_STREAM_SHARDS", "abc")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "alerts: ALERTS_STREAM_SHARDS='abc': must be a whole number\n")
    assert not (isolated / "data").exists()  # nothing was started


def test_a_bad_setting_in_a_real_process(tmp_path: Path) -> None:
    env = private_env(tmp_path, ALERTS_TIMEZONE="Europe/Berlim", ALERTS_BATCH_SIZE="-1")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], env=env, input="{}\n",
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "alerts: ALERTS_TIMEZONE='Europe/Berlim': unknown time zone; did you mean Europe/Berlin?",
        "alerts: ALERTS_BATCH_SIZE='-1': must be at least 1",
    ]
    assert proc.stdout == ""


def test_an_unknown_variable_is_warned_about_once(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ALERTS_TIMEZOME=UTC\n")
    env = private_env(tmp_path, ALERTS_STREAM_SHARD="4")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(REPO / "rules")], env=env,
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("alerts: warning:")]
    assert warnings == [
        "alerts: warning: ALERTS_STREAM_SHARD is not a setting, ignored; did you mean ALERTS_STREAM_SHARDS?",
        "alerts: warning: ALERTS_TIMEZOME is not a setting, ignored; did you mean ALERTS_TIMEZONE?",
    ]


@pytest.mark.parametrize("argv", [["run"], ["worker"], ["worker", "--role", "evaluate"]], ids=" ".join)
def test_a_missing_rules_directory_stops_the_service(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    missing = isolated / "no-rules"
    monkeypatch.setenv("ALERTS_RULES_DIR", str(missing))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"alerts: the rules directory {missing} (ALERTS_RULES_DIR, from {isolated}) does not exist: "
                   "create it, or set ALERTS_RULES_DIR to the folder of your rule files (`alerts rules check DIR` "
                   "checks one)\n")
    assert not (isolated / "data").exists()  # no redis-server was started


def test_the_demo_without_its_rules_says_where_to_run_it(tmp_path: Path) -> None:
    """The README's first command, run from another folder: a clear line, no service without rules."""
    env = private_env(tmp_path)
    del env["ALERTS_RULES_DIR"]  # the default, ./rules, in a folder that has none
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "run", "--demo"], env=env, capture_output=True,
                          text=True, check=False, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == (f"alerts: the demo needs the example rules, and the rules directory rules "
                           f"(ALERTS_RULES_DIR, from {tmp_path}) does not exist: run it from the project folder, or "
                           "set ALERTS_RULES_DIR to its rules/ folder\n")
    assert not (tmp_path / "data").exists()


def test_publish_without_the_rules_directory_warns_and_publishes(client: redis.Redis, settings: Settings,
                                                                 tmp_path: Path) -> None:
    env = env_for(settings, ALERTS_RULES_DIR=str(tmp_path / "none"))
    line = '{"type": "price", "product": "Dy oxide", "price": 1710, "unit": "CNY/kg", "as_of": "2025-02-28"}\n'
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], env=env, input=line,
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr == (f"alerts: warning: the rules directory {tmp_path / 'none'} (ALERTS_RULES_DIR) does not "
                           "exist: only the built-in products are known\n")
    assert sum(client.xlen(f"alerts:events:{s}") for s in range(settings.stream_shards)) == 1


def test_an_unreachable_redis_is_one_line_without_the_password(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALERTS_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")  # nothing listens on port 1
    assert main(["failed"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alerts: Redis unreachable at 127.0.0.1:1 (ALERTS_REDIS_URL): ") and err.count("\n") == 1
    assert "127.0.0.1:1" in err and "hunter2" not in err
