"""One queue per kind of channel: while Slack hangs (it takes the connection and never answers), a real
``alerts worker --role deliver`` process delivers webhooks and console lines at once; once Slack answers
again, its backlog is delivered, each message once."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.settings import Settings
from tests.conftest import env_for
from tests.notify.test_webhook import SECRET, Receiver
from tests.pipeline import Pipeline
from tests.servers import SlackServer, wait_for, write_rules


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def delivered(client: redis.Redis, kind: str) -> int:
    return len(list(client.scan_iter(f"alerts:delivered:*:{kind}*")))


def test_a_hanging_slack_holds_up_no_other_channel(client: redis.Redis, settings: Settings, slack: SlackServer,
                                                   receiver: Receiver, rules_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_RULES_VAR_DESK_HOOK", SECRET)
    write_rules(rules_dir, f"""
webhooks:
  - name: desk
    url: {receiver.url}
    secret: ${{ALERTS_RULES_VAR_DESK_HOOK}}
rules:
  - id: licences
    news: {{any: [export licen*]}}
    notify: [slack:C0DESK001, webhook:desk, console]
""")
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "delivery_retry_intervals_seconds": [0, 0, 0, 0]})
    p = Pipeline(client, s)
    p.publish(*({"type": "news", "id": f"n{i}", "headline": f"Export licences, round {i}", "source": "smm"}
                for i in range(3)))
    p.evaluate()
    p.dispatch()  # 3 alerts: 3 deliveries to Slack, 3 to the webhook, 3 to the console
    slack.script = [("hang", 60)] * 20
    env = env_for(s, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url,
                  ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS="[0, 0, 0, 0]", ALERTS_RULES_VAR_DESK_HOOK=SECRET,
                  ALERTS_SLACK_RATE_PER_SECOND="2", ALERTS_SLACK_BURST="1")
    with open(tmp_path / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "deliver", "--role",
                                 "schedule"], env=env, stdout=log, stderr=log)
        try:
            started = time.monotonic()
            wait_for(lambda: len(receiver.received) == 3 and delivered(client, "console") == 3, 8,
                     "the webhook and console deliveries while Slack hangs")
            assert slack.requests >= 1 and not slack.messages  # Slack was tried, and hangs
            assert time.monotonic() - started < 8
            slack.script.clear()  # Slack answers again
            wait_for(lambda: delivered(client, "slack") == 3, 40, "the Slack backlog to be delivered")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    texts = sorted(m["text"] for m in slack.messages)
    assert len(texts) == 3 and len(set(texts)) == 3, texts  # each alert once
    # the backlog clears at the channel's paced rate (2 a second, no burst), not all at once
    times = sorted(float(m["ts"]) for m in slack.messages)
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(times)), times
    assert len(receiver.received) == 3
