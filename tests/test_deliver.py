"""Delivery to Slack through rq: pacing, 429 rescheduling, failures kept for people, the ops notice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import LICENCE_RULES, Pipeline, licence_news
from tests.servers import SlackServer, write_rules
from workers.deliver import JOB_TIMEOUT, SENDING_TTL
from workers.roles.dispatch import queue_names

RULES = LICENCE_RULES
article = licence_news


@pytest.fixture
def p(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path) -> Pipeline:
    write_rules(rules_dir, RULES)
    return Pipeline(client, settings.model_copy(update={
        "slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
        "delivery_retry_intervals_seconds": [0, 0], "ops_slack_channel": "#ops"}))


def run_scheduled(p: Pipeline, after: float) -> None:
    """Let the scheduled (rescheduled) deliveries come due, move them to the queue, deliver them."""
    time.sleep(after)
    scheduler = RQScheduler(queue_names(p.settings), connection=p.client, serializer=JSONSerializer)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    p.deliver()


def scheduled(p: Pipeline) -> int:
    return len(ScheduledJobRegistry(f"{p.settings.queue_name}:slack", connection=p.client).get_job_ids())


def test_429_is_rescheduled_after_retry_after_and_delivered_once(p: Pipeline, slack: SlackServer) -> None:
    slack.script = [("429", 1)]
    p.run(article(1))
    assert slack.messages == [] and scheduled(p) == 1  # not slept through: handed back to the scheduler
    run_scheduled(p, 1.1)
    assert [m["channel"] for m in slack.messages] == ["#desk"]
    assert slack.requests == 2


def test_a_burst_to_one_channel_is_paced(p: Pipeline, slack: SlackServer) -> None:
    p.run(*[article(i) for i in range(5)])
    assert len(slack.messages) == 3 and scheduled(p) == 2  # a burst of three, then one a second
    run_scheduled(p, 2.1)  # both reserved slots are due: released together, they still go one a second
    assert len(slack.messages) == 4 and scheduled(p) == 1
    run_scheduled(p, 1.1)
    texts = sorted(m["text"] for m in slack.messages)
    assert len(texts) == 5 and len(set(texts)) == 5  # each alert once
    fourth, fifth = (float(m["ts"]) for m in slack.messages[3:])
    assert fifth - fourth >= 0.95


def test_a_refused_delivery_is_kept_told_to_ops_and_can_be_resent(p: Pipeline, slack: SlackServer) -> None:
    slack.script = [("error", "channel_not_found")]
    p.run(article(1))
    (notice,) = slack.messages
    assert notice["channel"] == "#ops" and "channel_not_found" in notice["text"]
    env = env_for(p.settings, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url)
    listed = subprocess.run([sys.executable, "-m", "workers.cli", "failed"], env=env, capture_output=True, text=True,
                            check=False)
    assert listed.returncode == 0
    (line,) = listed.stdout.strip().splitlines()
    failure_id = line.split()[0]
    assert "slack:#desk  licences  refused: Slack refused the message: channel_not_found" in line
    resent = subprocess.run([sys.executable, "-m", "workers.cli", "failed", "retry", failure_id], env=env,
                            capture_output=True, text=True, check=False)
    assert resent.returncode == 0, resent.stderr
    (queued,) = Queue(f"{p.settings.queue_name}:slack", connection=p.client, serializer=JSONSerializer).get_jobs()
    # the options every delivery job has, the timeout under the sending lock's TTL included (not rq's 180 s)
    assert (queued.timeout, queued.result_ttl, queued.failure_ttl) == (
        JOB_TIMEOUT, p.settings.delivery_result_ttl_seconds, int(p.settings.alert_retention_days * 86400))
    assert queued.timeout is not None and queued.timeout < SENDING_TTL
    assert queued.retries_left  # the command's own settings: their retries
    assert queued.failure_callback is not None
    p.deliver()
    assert [m["channel"] for m in slack.messages] == ["#ops", "#desk"]
    again = subprocess.run([sys.executable, "-m", "workers.cli", "failed"], env=env, capture_output=True, text=True,
                           check=False)
    assert again.stdout.strip() == ""


def test_retries_used_up_are_kept_as_failed(p: Pipeline, slack: SlackServer) -> None:
    from alerts.store import failures
    from alerts.store.keys import Keys

    slack.script = [("500", None)] * 3
    p.run(article(1))
    p.deliver()
    (f,) = failures.listing(p.client, Keys())
    assert f["permanent"] is False and "500" in f["reason"] and f["target"] == "slack:#desk"


def test_quiet_hours_hold_non_critical_alerts(client: redis.Redis, settings: Settings, slack: SlackServer,
                                              rules_dir: Path) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(settings.timezone))
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    write_rules(rules_dir, f"""
rules:
  - id: routine
    news: {{any: [export licen*]}}
    notify: ["slack:#desk?quiet={start}-{end}"]
  - id: urgent
    news: {{any: [export licen*]}}
    notify: ["slack:#desk?quiet={start}-{end}"]
    severity: critical
""")
    p = Pipeline(client, settings.model_copy(update={
        "slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url}))
    p.run(article(1))
    assert [m["text"].split("]")[0] for m in slack.messages] == ["[urgent"]  # critical goes at once
    registry = ScheduledJobRegistry(f"{p.settings.queue_name}:slack", connection=client)
    (held,) = registry.get_job_ids()
    due = registry.get_scheduled_time(held).timestamp()
    assert abs(due - (now + timedelta(hours=1)).replace(second=0, microsecond=0).timestamp()) < 61


def test_bad_quiet_hours_are_a_rule_error(rules_dir: Path) -> None:
    from alerts.rules.load import load_rules

    write_rules(rules_dir, 'rules:\n  - id: r\n    news: {any: [x]}\n    notify: ["slack:#desk?quiet=25:00-07:00"]\n')
    (problem,) = load_rules(rules_dir).problems
    assert "quiet hours need times of day" in str(problem) and ":4: r: notify:" in str(problem)


def test_any_last_failure_is_kept_for_people(p: Pipeline, slack: SlackServer) -> None:
    """Not only refusals: an error of ours on the last attempt lands in `alerts failed` too (rq's callback)."""
    from rq import Queue

    from alerts.store import failures
    from alerts.store.keys import Keys
    from workers.deliver import ON_FAILURE, retry_policy

    queue = Queue(p.settings.queue_name, connection=p.client, serializer=JSONSerializer)  # the queue of old releases
    queue.enqueue("workers.deliver.deliver", {"id": "broken", "rule_id": "r", "targets": []}, "slack:#desk",
                  job_id="deliver-broken-1", retry=retry_policy(p.settings), on_failure=ON_FAILURE)
    p.deliver()
    (f,) = failures.listing(p.client, Keys())
    assert f["id"] == "deliver-broken-1" and f["target"] == "slack:#desk" and "not an alert" in f["reason"]
    (notice,) = slack.messages  # and told to the ops channel once, not once per attempt
    assert notice["channel"] == "#ops"


def test_a_retry_by_hand_keeps_the_failure_id_and_counts(p: Pipeline, slack: SlackServer) -> None:
    slack.script = [("error", "channel_not_found")]  # then the ops notice goes through
    p.run(article(1))
    env = env_for(p.settings, ALERTS_SLACK_BOT_TOKEN=slack.token, ALERTS_SLACK_API_URL=slack.url)

    def alerts(*argv: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "workers.cli", *argv], env=env, capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    failure_id = alerts("failed").split()[0]
    assert alerts("failed", "retry", failure_id) == f"{failure_id}: queued again (1) for slack:#desk"
    slack.script = [("error", "channel_not_found")]
    p.deliver()  # refused again: kept under the same id, with the count
    (line,) = alerts("failed").splitlines()
    assert line.split()[0] == failure_id and "refused (after 1 retries by hand): Slack refused" in line
    assert alerts("failed", "retry", "--all") == f"{failure_id}: queued again (2) for slack:#desk"
    p.deliver()
    assert [m["channel"] for m in slack.messages if m["channel"] == "#desk"] == ["#desk"]
    assert alerts("failed") == ""
