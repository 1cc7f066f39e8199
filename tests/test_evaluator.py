"""The evaluator against a real Redis: ordering, recovery from lost writes, poisonous entries, shard checks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import redis

from alerts.errors import ConfigError
from alerts.events import parse_event
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.pipeline import Pipeline, quote, stream_alerts, streams_drained
from tests.servers import wait_for, write_rules
from tests.streams import stream_entries

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [console]
  - id: licences
    news: {any: [export licen*]}
    notify: [console]
"""


@pytest.fixture
def pipeline(client: redis.Redis, settings: Settings, rules_dir: Path) -> Pipeline:
    write_rules(rules_dir, RULES)
    return Pipeline(client, settings)


def test_state_survives_a_new_evaluator(client: redis.Redis, pipeline: Pipeline, settings: Settings) -> None:
    assert len(pipeline.run(quote(455_000, "2025-02-25"))) == 1
    pipeline.evaluator.release_all()  # as a clean stop does
    fresh = Pipeline(client, settings)  # a new process: empty cache, state from Redis
    assert fresh.run(quote(456_000, "2025-02-26")) == []
    assert fresh.evaluator.owned == set(range(settings.stream_shards))
    assert len(fresh.run(quote(449_000, "2025-02-27"), quote(451_000, "2025-02-28"))) == 1


def test_lost_writes_are_detected_and_the_event_evaluated_again(client: redis.Redis, pipeline: Pipeline,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    pipeline.publish(quote(455_000, "2025-02-25", id="e1"))
    pipeline.evaluator.maintain_leases(force=True)
    streams = list(client.scan_iter("alerts:events:*"))
    snapshot = {k: client.dump(k) for k in streams}  # Redis as it was before the commit
    assert len(pipeline.evaluate()) == 1
    # Redis comes back from an older snapshot: the commit, its alert and the state are gone
    for key in client.scan_iter("alerts:*"):
        if not key.startswith((b"alerts:lease:", b"alerts:evaluators", b"alerts:config")):
            client.delete(key)
    for k, v in snapshot.items():
        client.restore(k, 0, v)  # type: ignore[arg-type]
    # the evaluator's cache says "duplicate", but Redis' commit counter disagrees: it re-evaluates
    assert len(pipeline.evaluate()) == 1
    assert "lost data during a batch" in caplog.text  # the stale batch was refused, then evaluated again
    assert len(stream_alerts(client)) == 1


def test_a_poisonous_entry_does_not_block_its_shard(client: redis.Redis, pipeline: Pipeline) -> None:
    client.xadd("alerts:events:0", {"e": b"\xff\xfe not json"})
    client.xadd("alerts:events:0", {"e": json.dumps({"type": "news", "headline": "x", "published_at":
                                                     "0001-01-01T00:00:00+14:00", "id": "bad"})})
    client.xadd("alerts:events:0", {"nothing": b"here"})
    client.xadd("alerts:events:0", {"w": b'{"type":"price","id":"x","product":"Pr-Nd oxide"}'})  # half a wire form
    pipeline.publish({"type": "news", "id": "n1", "headline": "Export licences granted"})
    assert [a.rule_id for a in pipeline.evaluate()] == ["licences"]
    reasons = [f[b"reason"].decode() for _, f in stream_entries(client, "alerts:invalid")]
    assert len(reasons) == 4 and "out of range" in reasons[1]
    assert reasons[3].startswith("not an event on the wire: Object missing required field")


def test_entries_of_the_previous_version_are_still_evaluated(client: redis.Redis, pipeline: Pipeline) -> None:
    """Events published before the typed wire form (the JSON object as published, under ``e``) that are
    still pending when the new version starts are parsed and evaluated like new ones."""
    shard = _shard_of(pipeline, "Pr-Nd oxide")
    legacy = {"type": "price", "product": "PrNd oxide", "price": 455, "unit": "CNY/kg", "as_of": "2025-02-25",
              "source": "smm", "id": "old-1"}
    client.xadd(f"alerts:events:{shard}", {"e": json.dumps(legacy)})
    (alert,) = pipeline.evaluate()
    assert (alert.rule_id, alert.event_id, alert.price, alert.as_of) == ("prnd-450k", "old-1", 455_000, "2025-02-25")
    pipeline.publish(quote(456_000, "2025-02-26", id="new-1"))  # and the new form after it: no second alert
    assert pipeline.evaluate() == []


def _shard_of(pipeline: Pipeline, product: str) -> int:
    from alerts.store.streams import shard_of

    event = parse_event(quote(1, "2025-01-01", product=product), pipeline.rules.catalog, "Asia/Shanghai")
    return shard_of(event, pipeline.settings.stream_shards)


def test_streams_lost_with_redis_are_recreated(client: redis.Redis, pipeline: Pipeline, settings: Settings) -> None:
    def fired() -> list[tuple[str, str, str]]:
        return [(a["id"], a["rule_id"], a["event_id"]) for a in stream_alerts(client)]

    def drained() -> bool:
        return streams_drained(client, settings.stream_shards)

    stop = threading.Event()
    t = threading.Thread(target=pipeline.evaluator.run, args=(stop,), daemon=True)
    t.start()
    try:
        pipeline.publish(quote(455_000, "2025-02-25"))
        wait_for(lambda: fired() and drained(), 10, "the first alert")
        (before,) = fired()
        assert before[1] == "prnd-450k"
        client.flushall()  # an empty Redis: no groups, no leases, no state
        pipeline.publish(quote(455_000, "2025-02-25"))
        wait_for(lambda: fired() and drained(), 15, "the evaluator to recover")
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    # the same quote on an empty Redis fires the same alert again, exactly once
    assert fired() == [before]


def test_every_process_must_use_the_same_shard_count(client: redis.Redis, pipeline: Pipeline,
                                                     settings: Settings) -> None:
    rules = load_rules(settings.rules_dir)
    with pytest.raises(ConfigError, match="ALERTS_STREAM_SHARDS is 16 here but 4 in Redis"):
        Publisher(client, rules.catalog, settings.timezone, shards=16)


def test_news_go_to_one_shard_so_copies_of_an_article_meet(client: redis.Redis, pipeline: Pipeline) -> None:
    alerts = pipeline.run({"type": "news", "id": "smm-1", "headline": "Export licences", "url": "https://a.test/1"},
                          {"type": "news", "id": "smm-1", "headline": "Export licences", "url": "https://a.test/2"},
                          {"type": "news", "id": "other", "headline": "Export licences", "url": "https://a.test/1"})
    assert len(alerts) == 1
