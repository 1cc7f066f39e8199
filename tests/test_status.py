"""``alerts status`` and ``alerts history`` against a real Redis and real processes: a dead worker, a stuck
consumer group and a failing source each make the service unhealthy (exit status 1) and are named; a stale feed
is named in the data freshness section (tests/test_status_freshness.py: its own exit status)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import heartbeats
from alerts.store.keys import DISPATCH_GROUP, EVALUATOR_GROUP, Keys
from alerts.store.publish import publish_events
from alerts.store.streams import ensure_group
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import SlackServer, free_port, redis_major, wait_for, write_rules
from workers.cli import main as cli
from workers.cli.status import STUCK_SECONDS, collect, render

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [slack:#desk, console]
  - id: tb-stale
    stale: {product: terbium oxide, after: 3 business days}
    notify: [console]
"""


def fails(st_text: str) -> list[str]:
    return [line for line in st_text.splitlines() if line.startswith("FAIL")]


def stale(st_text: str) -> list[str]:
    return [line for line in st_text.splitlines() if line.startswith("STALE")]


def run_cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env_for(settings, **env),
                          capture_output=True, text=True, timeout=60)


def test_a_live_worker_is_healthy_and_a_sigkilled_one_is_reported_dead(settings: Settings, client: redis.Redis,
                                                                       rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"],
                            env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keys = Keys()
    try:
        # a lone evaluator takes the shards' leases one after another: wait until its beat names all four
        wait_for(lambda: any(p.pid == proc.pid and "shards 0,1,2,3" in p.doing.get("evaluate", "")
                             for p in heartbeats.processes(client, keys)), 30,
                 "the worker's heartbeat naming its shards")
        st = collect(client, settings)
        text = render(st)
        assert st.healthy, text
        assert f"pid {proc.pid}: evaluate, up" in text and "shards 0,1,2,3" in text
        assert "WARN  redis       appendonly is off" in text  # the suite's redis-server keeps nothing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    later = time.time() + heartbeats.DEAD_AFTER_SECONDS + 1
    st = collect(client, settings, now=later)
    assert not st.healthy
    assert any(f"pid {proc.pid} (evaluate) is dead: last heartbeat" in line and "no live process runs evaluate"
               in line for line in fails(render(st))), render(st)
    out = run_cli(settings, "status", "--format", "json")
    doc = json.loads(out.stdout)
    assert out.returncode in (0, 1) and doc["processes"][0]["pid"] == proc.pid


def test_a_clean_stop_removes_the_process(settings: Settings, client: redis.Redis, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "dispatch"],
                            env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: heartbeats.processes(client, Keys()) != [], 30, "the heartbeat")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert heartbeats.processes(client, Keys()) == []
    st = collect(client, settings)
    assert "FAIL  processes   no service process has run in the last hour" in render(st)


def test_a_stuck_consumer_group_is_named(settings: Settings, client: redis.Redis, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    keys = Keys()
    stream = keys.events(2)
    ensure_group(client, stream, EVALUATOR_GROUP)
    old = int((time.time() - 600) * 1000)
    for i in range(3):
        client.xadd(stream, {"w": b"{}"}, id=f"{old}-{i}")
    heartbeats.beat(client, keys, "h:1", host="h", pid=1, roles=["evaluate"], started=time.time(), doing={})
    st = collect(client, settings)
    (line,) = [f for f in fails(render(st)) if "streams" in f]
    assert f"{stream}: 3 entries" in line and "stuck: the oldest has waited 10m" in line
    assert "evaluators" in line
    # read but never acknowledged: stuck too, by the time it was read
    client.xreadgroup(EVALUATOR_GROUP, "c1", {stream: ">"}, count=10)
    st = collect(client, settings, now=time.time() + STUCK_SECONDS + 5)
    assert any("3 pending; stuck" in f for f in fails(render(st))), render(st)
    client.xack(stream, EVALUATOR_GROUP, *[f"{old}-{i}" for i in range(3)])
    st = collect(client, settings)
    assert not [f for f in fails(render(st)) if "streams" in f]


@pytest.mark.parametrize("dispatcher_ran_before", [True, False])
def test_alerts_no_dispatcher_reads_are_unread_then_stuck(settings: Settings, client: redis.Redis, rules_dir: Path,
                                                          dispatcher_ran_before: bool) -> None:
    """An evaluator-only process writes alerts that no dispatcher takes: status counts them unread on the alert
    stream in the dispatchers' group (the one ``workers.roles.dispatch`` reads), then calls the group stuck."""
    write_rules(rules_dir, RULES)
    keys = Keys()
    if dispatcher_ran_before:  # what a dispatcher does when it starts (then it stopped)
        ensure_group(client, keys.alerts, DISPATCH_GROUP)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"],
                            env=env_for(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(p.pid == proc.pid for p in heartbeats.processes(client, keys)), 30, "the heartbeat")
        report = publish_events(({"type": "price", "product": "Pr-Nd oxide", "price": 451_000 + i, "unit": "CNY/t",
                                "as_of": f"2025-03-{10 + i}"} for i in range(3)), settings)
        assert report.ok and report.published == 3
        wait_for(lambda: client.xlen(keys.alerts) >= 1, 30, "the evaluator's alert")
        out = run_cli(settings, "status", "--format", "json")
        doc = json.loads(out.stdout)
        (row,) = [r for r in doc["streams"] if r["stream"] == keys.alerts]
        # no group: all of it unread; a group's lag: XINFO GROUPS has none before Redis 7
        lag = row["length"] if redis_major(client) >= 7 or not dispatcher_ran_before else None
        assert row["length"] >= 1 and row["lag"] == lag and row["pending"] == 0, row
        if dispatcher_ran_before:
            assert row["group"] == DISPATCH_GROUP == "dispatch"
        later = collect(client, settings, now=time.time() + STUCK_SECONDS + 5)
        (line,) = [f for f in fails(render(later)) if "streams" in f]
        assert line.startswith(f"FAIL  streams     {keys.alerts}: ") and "unread" in line, line
        assert "stuck: the oldest has waited 2m" in line and "are the dispatchers running?" in line, line
        assert not later.healthy
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_a_failing_source_and_a_stale_feed_make_it_unhealthy(settings: Settings, client: redis.Redis,
                                                             rules_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    write_rules(rules_dir, RULES)
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - {{name: dead-vendor, kind: json, url: 'http://127.0.0.1:{free_port()}/p',"
                       " every: 15m}\n")
    s = settings.model_copy(update={"sources_file": sources})
    p = Pipeline(client, s)
    today = time.strftime("%Y-%m-%d")
    p.run({"type": "price", "product": "terbium oxide", "price": 7000, "unit": "CNY/kg", "as_of": "2024-03-11"},
          {"type": "price", "product": "Pr-Nd oxide", "price": 440000, "unit": "CNY/t", "as_of": today})
    for k, v in env_for(s, ALERTS_SOURCES_FILE=str(sources)).items():
        monkeypatch.setenv(k, v)
    assert cli.main(["poll", "--once"]) == 1
    heartbeats.beat(client, Keys(), "h:1", host="h", pid=1, roles=["evaluate"], started=time.time(), doing={})
    capsys.readouterr()
    assert cli.main(["status"]) == 1
    out = capsys.readouterr().out
    failed = fails(out)
    assert any(line.startswith("FAIL  sources     dead-vendor: failing, 1 polls in a row; last error") and
               "ConnectError" in line and "never succeeded" in line for line in failed), out
    (old,) = stale(out)  # in the data freshness section, below the service's lines
    assert old.startswith("STALE quotes      terbium oxide: 7,000 CNY/kg as of 2024-03-11"), out
    assert "stale (rule tb-stale: 3 business days)" in old, out
    lines = out.splitlines()
    assert lines.index("Service health") < lines.index("Data freshness") < lines.index(old)
    assert any(line.startswith("ok    quotes      Pr-Nd oxide: 440,000 CNY/t as of " + today) for line in
               out.splitlines()), out
    assert lines[-1] == "UNHEALTHY: 1 problem, 1 warning; data STALE: 1 product (exit status 1)"
    assert cli.main(["status", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["healthy"] is False and doc["fresh"] is False and doc["exit_status"] == 1
    assert [q["product"] for q in doc["quotes"] if q["stale"]] == ["terbium oxide"]
    assert doc["sources"][0]["name"] == "dead-vendor" and doc["sources"][0]["failing"] is True


def test_paused_rules_and_rule_errors_are_unhealthy(settings: Settings, client: redis.Redis,
                                                   rules_dir: Path) -> None:
    write_rules(rules_dir, RULES + "  - id: broken\n    price: {product: unobtainium, above: 1}\n"
                                   "    notify: [console]\n")
    client.hset(Keys().paused, "prnd-450k", json.dumps({"since": time.time(), "count": 21}))
    heartbeats.beat(client, Keys(), "h:1", host="h", pid=1, roles=["evaluate"], started=time.time(), doing={})
    text = render(collect(client, settings))
    assert "FAIL  breaker     rule prnd-450k is paused by the circuit breaker (alerts rules resume prnd-450k)" in text
    assert any("rules.yaml" in f and "broken" in f and "unobtainium" in f for f in fails(text)), text


def test_redis_unreachable_is_one_line_and_exit_1(settings: Settings) -> None:
    out = run_cli(settings, "status", ALERTS_REDIS_URL=f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    assert out.returncode == 1
    assert out.stdout.splitlines()[1].startswith("FAIL  redis       unreachable:")
    assert out.stdout.splitlines()[-1] == "UNHEALTHY: 1 problem; data freshness unknown (exit status 1)"
    assert "hunter2" not in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_the_status_read_is_bounded_by_what_it_shows_not_the_events_stored(settings: Settings,
                                                                             client: redis.Redis,
                                                                             rules_dir: Path) -> None:
    """Counted in Redis commands, not seconds: 200,000 stored events cost the read no more commands than 10."""
    write_rules(rules_dir, RULES)
    keys = Keys()
    heartbeats.beat(client, keys, "h:1", host="h", pid=1, roles=["evaluate"], started=time.time(), doing={})

    def commands_for_status() -> int:
        before = int(client.info("stats")["total_commands_processed"])
        collect(client, settings, rules=load_rules(rules_dir))
        return int(client.info("stats")["total_commands_processed"]) - before - 1

    for shard in range(settings.stream_shards):
        ensure_group(client, keys.events(shard), EVALUATOR_GROUP)
        client.xadd(keys.events(shard), {"w": b"{}"})
    few = commands_for_status()
    pipe = client.pipeline(transaction=False)
    for i in range(200_000):
        pipe.xadd(keys.events(i % settings.stream_shards), {"w": b"{}"})
        if i % 10_000 == 0:
            pipe.execute()
    pipe.execute()
    assert commands_for_status() == few


def test_history_shows_each_target_delivered_held_or_failed(client: redis.Redis, settings: Settings,
                                                           slack: SlackServer, rules_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    write_rules(rules_dir, """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [slack:#desk, console]
  - id: dy-up
    price: {product: dysprosium oxide, above: 1600 CNY/kg}
    notify: [slack:#gone]
""")
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "delivery_retry_intervals_seconds": [0, 0]})
    p = Pipeline(client, s)
    slack.script = [("error", "channel_not_found")]
    p.run({"type": "price", "product": "Dy oxide", "price": 1700, "unit": "CNY/kg", "as_of": "2025-03-10"})
    p.run({"type": "price", "product": "Pr-Nd oxide", "price": 455000, "unit": "CNY/t", "as_of": "2025-03-11"})
    p.deliver()
    for k, v in env_for(s, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert cli.main(["history", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rule_id"] for r in rows] == ["prnd-450k", "dy-up"]  # newest first
    by_target = {d["target"]: d for d in rows[0]["deliveries"]}
    assert by_target["slack:#desk"]["status"] == "delivered" and by_target["slack:#desk"]["at"] > time.time() - 60
    assert by_target["console"]["status"] == "delivered"
    (gone,) = rows[1]["deliveries"]
    assert gone["status"] == "failed" and "channel_not_found" in gone["reason"]
    assert cli.main(["history", "--product", "Pr-Nd oxide"]) == 0
    text = capsys.readouterr().out
    assert "prnd-450k" in text and "dy-up" not in text
    assert "    slack:#desk                  delivered 20" in text
    assert cli.main(["history", "--rule", "dy-up"]) == 0
    text = capsys.readouterr().out
    assert "slack:#gone                  failed" in text and "channel_not_found" in text and "prnd" not in text
    assert cli.main(["history", "--since", "2099-01-01"]) == 0
    assert capsys.readouterr().out.strip() == "no alerts match"


def test_history_shows_held_deliveries_with_why(client: redis.Redis, settings: Settings, slack: SlackServer,
                                               rules_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    write_rules(rules_dir, "rules:\n  - id: licences\n    news: {any: [export licen*]}\n    notify: [slack:#desk]\n")
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url})
    p = Pipeline(client, s)
    slack.script = [("429", 30)]
    p.run({"type": "news", "id": "n1", "headline": "Export licences granted", "source": "smm"})
    p.deliver()
    for k, v in env_for(s).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert cli.main(["history"]) == 0
    out = capsys.readouterr().out
    assert "slack:#desk                  held" in out and "next try" in out, out
    assert os.environ["ALERTS_KEY_PREFIX"] == "alerts"
