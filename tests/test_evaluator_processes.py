"""Evaluator processes against a real Redis: SIGKILL mid-batch loses nothing and doubles nothing;
several processes share the shards; events published before any worker are evaluated."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.conftest import env_for
from tests.pipeline import stream_alerts, streams_drained
from tests.servers import wait_for, write_rules

PRODUCTS = 20
QUOTES_PER_PRODUCT = 2000
NEWS = 2000

RULES = "products:\n" + "".join(f"  - {{name: P{i:02d}, unit: CNY/t}}\n" for i in range(PRODUCTS))
RULES += "rules:\n" + "".join(
    f"  - id: cross-{i:02d}\n    price: {{product: P{i:02d}, crosses_above: 150}}\n    notify: [console]\n"
    for i in range(PRODUCTS)
) + "  - id: licences\n    news: {any: [licen*]}\n    notify: [console]\n"


def feed() -> list[dict[str, Any]]:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for n in range(QUOTES_PER_PRODUCT):
        at = (t0 + timedelta(minutes=n)).isoformat()
        events.extend({"type": "price", "product": f"P{i:02d}", "price": 100 if n % 2 == 0 else 200,
                       "unit": "CNY/t", "as_of": at, "source": "feed", "id": f"q{i}-{n}"} for i in range(PRODUCTS))
        if n < NEWS:
            events.append({"type": "news", "id": f"news-{n}", "headline": f"Export licence number {n}"})
    return events


EXPECTED_ALERTS = PRODUCTS * QUOTES_PER_PRODUCT // 2 + NEWS


def check_exactly_once(client: redis.Redis) -> None:
    alerts = stream_alerts(client)
    ids = [a["id"] for a in alerts]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} alerts doubled"
    assert len(alerts) == EXPECTED_ALERTS, f"expected {EXPECTED_ALERTS} alerts, got {len(alerts)}"
    fired = {(a["rule_id"], a["event_id"]) for a in alerts}
    expected = {(f"cross-{i:02d}", f"q{i}-{n}") for i in range(PRODUCTS) for n in range(1, QUOTES_PER_PRODUCT, 2)}
    expected |= {("licences", f"news-{n}") for n in range(NEWS)}
    assert fired == expected


@pytest.fixture
def proc_settings(settings: Settings, rules_dir: Path) -> Settings:
    write_rules(rules_dir, RULES)
    return settings


@pytest.fixture
def spawn(proc_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"{name}.log", "wb")
        logs.append(log)
        p = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--no-dispatch"],
                             env=env_for(proc_settings), stdout=log, stderr=log)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    for log in logs:
        log.close()


def publish_feed(client: redis.Redis, settings: Settings) -> None:
    rules = load_rules(settings.rules_dir)
    # prices that double and halve every minute: a feed for the exactly-once accounting, not for the sanity check
    report = Publisher(client, rules.catalog, settings.timezone, settings.stream_shards,
                       max_daily_move_pct=None).publish(*feed())
    assert report.ok and report.published == PRODUCTS * QUOTES_PER_PRODUCT + NEWS


def pending(client: redis.Redis, shards: int) -> int:
    total = 0
    for s in range(shards):
        try:
            total += client.xpending(f"alerts:events:{s}", "evaluators")["pending"]
        except redis.ResponseError:
            pass
    return total


def test_sigkill_mid_batch_loses_nothing_and_doubles_nothing(client: redis.Redis, proc_settings: Settings,
                                                             spawn: Any) -> None:
    publish_feed(client, proc_settings)  # before any worker exists
    first = spawn("first")
    # kill it after some batches committed, while another batch is read but not yet committed
    wait_for(lambda: client.exists("alerts:alerts") and len(stream_alerts(client)) > 2000
             and pending(client, proc_settings.stream_shards) > 0, 30, "the first evaluator to be mid-batch")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    in_flight = pending(client, proc_settings.stream_shards)
    before = len(stream_alerts(client))
    assert in_flight > 0, "the kill should land with a batch read but not committed"
    assert 2000 < before < EXPECTED_ALERTS
    spawn("second")
    wait_for(lambda: streams_drained(client, proc_settings.stream_shards), 90, "the second evaluator to finish")
    check_exactly_once(client)


def test_two_evaluators_share_the_shards(client: redis.Redis, proc_settings: Settings, spawn: Any) -> None:
    a, b = spawn("a"), spawn("b")
    shards = proc_settings.stream_shards

    def owners() -> set[bytes | str]:
        return {v for v in client.mget([f"alerts:lease:{s}" for s in range(shards)]) if v}

    wait_for(lambda: len(owners()) == 2 and None not in client.mget([f"alerts:lease:{s}" for s in range(shards)]),
             30, "two evaluators owning all shards between them")
    publish_feed(client, proc_settings)
    wait_for(lambda: streams_drained(client, shards), 90, "both evaluators to finish")
    check_exactly_once(client)

    def split() -> list[int]:  # shards per evaluator; a lease renewed late under load shows as None for a moment
        return sorted(Counter(client.mget([f"alerts:lease:{s}" for s in range(shards)])).values())

    wait_for(lambda: split() == [shards // 2, shards // 2], 15, "the shards split evenly between the two")
    for p in (a, b):
        p.send_signal(signal.SIGTERM)
    assert [p.wait(15) for p in (a, b)] == [0, 0]
    # a clean stop hands its shards back at once
    assert client.mget([f"alerts:lease:{s}" for s in range(shards)]) == [None] * shards
