"""A dispatch worker killed with SIGKILL while Slack has accepted a message but not yet answered:
the message is neither lost nor sent twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from pydantic import SecretStr
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import SlackServer, wait_for, write_rules


def test_sigkill_mid_delivery_neither_loses_nor_doubles(client: redis.Redis, settings: Settings, slack: SlackServer,
                                                        rules_dir: Path, tmp_path: Path) -> None:
    write_rules(rules_dir, "rules:\n  - id: licences\n    news: {any: [export licen*]}\n"
                           "    notify: [slack:C0DESK001]\n")
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "delivery_retry_intervals_seconds": [0, 0]})
    p = Pipeline(client, s)
    p.publish({"type": "news", "id": "n1", "headline": "Large magnet makers obtain export licences"})
    p.evaluate()
    p.dispatch()  # the delivery job is queued
    slack.script = [("slow", 30)]  # Slack takes the message, then keeps the worker waiting for its answer
    env = env_for(s, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url,
                  ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS="[0, 0]")
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in (1, 2)]
    try:
        first = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--no-evaluate"], env=env,
                                 stdout=logs[0], stderr=logs[0])
        wait_for(lambda: len(slack.messages) == 1, 30, "Slack to receive the message")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert not list(client.scan_iter("alerts:delivered:*"))  # the worker never learnt it was delivered
        # rq finds a dead worker's job once its heartbeat expires (a minute and more); say that time has come
        StartedJobRegistry(s.queue_name, connection=client, serializer=JSONSerializer).cleanup(
            timestamp=time.time() + 600)
        second = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--no-evaluate"], env=env,
                                  stdout=logs[1], stderr=logs[1])
        wait_for(lambda: list(client.scan_iter("alerts:delivered:*")), 30, "the retried delivery to finish")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    finally:
        for f in logs:
            f.close()
    assert len(slack.messages) == 1  # found in the channel's history: not sent again
    assert "found in the channel" in (tmp_path / "worker2.log").read_text()
