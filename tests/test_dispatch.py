"""The dispatcher: alerts to rq jobs exactly once, and bad entries set aside without blocking the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from rq import Queue

from alerts.settings import Settings
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules
from tests.streams import stream_entries
from workers.roles.dispatch import job_id, queue_names

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [console, slack:#desk]
"""


@pytest.fixture
def pipeline(client: redis.Redis, settings: Settings, rules_dir: Path) -> Pipeline:
    write_rules(rules_dir, RULES)
    return Pipeline(client, settings)


def queued(client: redis.Redis, settings: Settings) -> list[str]:
    return [j for name in queue_names(settings) for j in Queue(name, connection=client).get_job_ids()]


def test_one_job_per_target(client: redis.Redis, pipeline: Pipeline, settings: Settings) -> None:
    pipeline.publish(quote(455_000, "2025-02-25"))
    (alert,) = pipeline.evaluate()
    assert pipeline.dispatch() == 1
    assert sorted(queued(client, settings)) == sorted(job_id(alert.id, t) for t in ("console", "slack:#desk"))
    assert client.xpending("alerts:alerts", "dispatch")["pending"] == 0


def test_the_same_alert_twice_in_a_batch_is_enqueued_once(client: redis.Redis, pipeline: Pipeline,
                                                          settings: Settings) -> None:
    pipeline.publish(quote(455_000, "2025-02-25"))
    pipeline.evaluate()
    ((_, fields),) = stream_entries(client, "alerts:alerts")
    client.xadd("alerts:alerts", {k: v for k, v in fields.items()})  # a copy, as a replayed evaluation could produce
    assert pipeline.dispatch() == 2
    assert len(queued(client, settings)) == 2  # console and Slack, once each


def test_bad_entries_are_set_aside_and_the_rest_flows(client: redis.Redis, pipeline: Pipeline,
                                                      settings: Settings) -> None:
    client.xadd("alerts:alerts", {"alerts": b"not json"})
    client.xadd("alerts:alerts", {"alerts": json.dumps([{"id": "x", "rule_id": "r", "targets": [1, 2]}])})
    pipeline.publish(quote(455_000, "2025-02-25"))
    pipeline.evaluate()
    pipeline.dispatch()
    assert len(queued(client, settings)) == 2
    assert client.xpending("alerts:alerts", "dispatch")["pending"] == 0
    dead = stream_entries(client, "alerts:alerts:dead")  # both set aside, each with its reason
    assert [b"not a list of alerts" in f[b"reason"] for _, f in dead] == [True, True]


def test_an_abandoned_alert_is_claimed_by_another_dispatcher(client: redis.Redis, pipeline: Pipeline,
                                                             settings: Settings) -> None:
    from workers.roles.dispatch import Dispatcher

    pipeline.publish(quote(455_000, "2025-02-25"))
    pipeline.evaluate()
    # a dispatcher reads the alert and dies before enqueueing it
    client.xreadgroup("dispatch", "dead-dispatcher", {"alerts:alerts": ">"}, count=10)
    assert queued(client, settings) == []
    other = Dispatcher(client, settings.model_copy(update={"claim_idle_seconds": 0.0}))
    assert other.claim_abandoned() == 1
    assert other.step(block_ms=1) == 1
    assert len(queued(client, settings)) == 2
