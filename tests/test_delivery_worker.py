"""rq's command thread in ``DeliveryWorker``: none in a burst worker (with rq's 60 s wait, a stop that raced the
thread held each burst for a minute, redis-py 8.2 joining it), a short wait in a main-thread worker that keeps it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from redis.client import PubSubWorkerThread
from rq import Queue
from rq.job import get_current_job
from rq.serializers import JSONSerializer

from alerts.settings import Settings
from tests.pipeline import LICENCE_RULES, Pipeline, licence_news
from tests.servers import SlackServer, write_rules
from workers.roles.delivery_worker import PUBSUB_WAIT_SECONDS, DeliveryWorker
from workers.roles.dispatch import make_queues


def listeners() -> int:
    """An rq job: how many connections listen to the command channel of the worker running it."""
    job = get_current_job()
    assert job is not None and job.worker_name is not None
    numsub = job.connection.pubsub_numsub(f"rq:pubsub:{job.worker_name}")
    return int(numsub[0][1])


@pytest.fixture
def p(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path) -> Pipeline:
    write_rules(rules_dir, LICENCE_RULES)
    return Pipeline(client, settings.model_copy(update={
        "slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url}))


def test_a_burst_worker_delivers_without_rq_s_command_thread(p: Pipeline, slack: SlackServer) -> None:
    p.publish(licence_news(1))
    assert len(p.evaluate()) == 1 and p.dispatch() == 1
    probe = Queue(f"{p.settings.queue_name}:other", connection=p.client, serializer=JSONSerializer).enqueue(
        listeners)
    worker = DeliveryWorker(make_queues(p.client, p.settings), connection=p.client, delivery=p.delivery)
    before = {t for t in threading.enumerate() if isinstance(t, PubSubWorkerThread)}
    assert worker.work(burst=True, logging_level="WARNING")
    assert [m["channel"] for m in slack.messages] == ["#desk"]
    probe.refresh()
    assert probe.return_value() == 0  # nothing listened for rq's commands while the burst ran
    assert worker.pubsub_thread is None
    assert {t for t in threading.enumerate() if isinstance(t, PubSubWorkerThread)} <= before


def test_a_main_thread_worker_keeps_rq_s_commands_and_stops_its_thread_at_once(p: Pipeline) -> None:
    worker = DeliveryWorker(make_queues(p.client, p.settings), connection=p.client, delivery=p.delivery)
    worker.subscribe()  # what ``work`` does first (not burst: `rq shutdown` and the others reach it)
    thread = worker.pubsub_thread
    assert isinstance(thread, PubSubWorkerThread) and thread.is_alive()
    try:
        numsub = p.client.pubsub_numsub(worker.pubsub_channel_name)
        assert int(numsub[0][1]) == 1
        # the longest a stop can wait for the thread: it looks at its flag after each wait for a message
        assert thread.sleep_time == PUBSUB_WAIT_SECONDS <= 1
    finally:
        worker.unsubscribe()
    assert not thread.is_alive()
    assert int(p.client.pubsub_numsub(worker.pubsub_channel_name)[0][1]) == 0
