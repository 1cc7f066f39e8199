"""A delivery job taken off its queue but never started (its worker died between the two steps, or a Redis
failover kept the pop and lost the start) goes back to its queue within seconds, not rq's ten minutes."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from alerts.settings import Settings
from tests.pipeline import Pipeline
from tests.servers import write_rules
from workers.roles.delivery_worker import _unstarted
from workers.roles.dispatch import make_queue


def test_a_job_taken_but_never_started_is_queued_again_and_delivered_once(client: redis.Redis, settings: Settings,
                                                                         rules_dir: Path) -> None:
    write_rules(rules_dir, "rules:\n  - id: n\n    news: {any: [quota]}\n    notify: [console]\n")
    p = Pipeline(client, settings)
    p.publish({"type": "news", "id": "n1", "headline": "Quota cut", "source": "smm"})
    p.evaluate()
    p.dispatch()
    queue = make_queue(client, settings, "console")
    (job_id,) = queue.job_ids
    # what a worker's dequeue does first: the job moves to rq's intermediate list; the start never comes
    client.lmove(queue.key, queue.intermediate_queue.key, "LEFT", "RIGHT")
    assert queue.job_ids == [] and queue.intermediate_queue.get_job_ids() == [job_id]
    _unstarted(client, queue.name, after=0.2)  # first sighting: a worker may be starting it right now
    assert queue.job_ids == []
    time.sleep(0.3)
    _unstarted(client, queue.name, after=0.2)
    assert queue.job_ids == [job_id] and queue.intermediate_queue.get_job_ids() == []
    p.deliver()
    assert len(list(client.scan_iter("alerts:delivered:*:console"))) == 1
