"""Delivery workers killed with SIGKILL while Slack has accepted a message but not yet answered: the
delivery is taken up again within seconds by another process, neither lost nor sent twice; and one that
was on its last try is kept for ``alerts failed``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis
from pydantic import SecretStr
from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import SlackServer, wait_for, write_rules

RULES = "rules:\n  - id: licences\n    news: {any: [export licen*]}\n    notify: [slack:C0DESK001]\n"


def start(env: dict[str, str], log: IO[bytes], *roles: str) -> subprocess.Popen[bytes]:
    args = [a for r in roles for a in ("--role", r)]
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", *args], env=env, stdout=log, stderr=log)


def slack_workers(client: redis.Redis, s: Settings) -> int:
    return Worker.count(client, queue=Queue(f"{s.queue_name}:slack", connection=client))


def setup(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path,
          intervals: str = "[0, 0]") -> tuple[Pipeline, dict[str, str]]:
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "delivery_retry_intervals_seconds": [0, 0]})
    p = Pipeline(client, s)
    p.publish({"type": "news", "id": "n1", "headline": "Large magnet makers obtain export licences"})
    p.evaluate()
    env = env_for(s, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url,
                  ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS=intervals, ALERTS_OPS_SLACK_CHANNEL="#ops")
    return p, env


def test_a_delivery_whose_worker_dies_is_done_by_another_within_seconds_once(
        client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path, tmp_path: Path) -> None:
    p, env = setup(client, settings, slack, rules_dir)
    p.dispatch()  # the delivery job is queued
    slack.script = [("slow", 30)]  # Slack takes the message, then keeps the worker waiting for its answer
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in (1, 2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start(env, logs[0], "deliver"))
        wait_for(lambda: len(slack.messages) == 1, 30, "Slack to receive the message")
        procs.append(start(env, logs[1], "deliver", "schedule"))  # another process, running when the first dies
        wait_for(lambda: slack_workers(client, p.settings) == 2, 30, "the second process's Slack worker")
        procs[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[0].wait(10)
        assert not list(client.scan_iter("alerts:delivered:*"))  # the worker never learnt it was delivered
        wait_for(lambda: list(client.scan_iter("alerts:delivered:*")), 20, "the delivery to be taken up again")
        took = time.monotonic() - killed
        assert took < 15, took
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for f in logs:
            f.close()
    assert len(slack.messages) == 1  # found in the channel's history: not sent again
    assert "found in the channel" in (tmp_path / "worker2.log").read_text()


def test_a_delivery_whose_worker_dies_on_its_last_try_is_kept_for_alerts_failed(
        client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path, tmp_path: Path) -> None:
    p, env = setup(client, settings, slack, rules_dir, intervals="[0]")
    p.dispatch()
    (job_id,) = Queue(f"{p.settings.queue_name}:slack", connection=client).job_ids
    client.hset(Job.fetch(job_id, connection=client, serializer=JSONSerializer).key, "retries_left", 0)  # its last
    slack.script = [("slow", 30)]
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in (1, 2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start(env, logs[0], "deliver"))
        wait_for(lambda: len(slack.messages) == 1, 30, "Slack to receive the message")
        procs.append(start(env, logs[1], "schedule"))
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        wait_for(lambda: client.keys("alerts:failed*"), 20, "the failure to be kept")
        listed = subprocess.run([sys.executable, "-m", "workers.cli", "failed"], env=env, capture_output=True,
                                text=True, check=False)
        assert job_id in listed.stdout and "the worker died during the delivery" in listed.stdout, listed
        wait_for(lambda: any(m["channel"] == "#ops" for m in slack.messages), 10, "the ops notice")
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for f in logs:
            f.close()
    assert "signal only works in main thread" not in (tmp_path / "worker2.log").read_text()
