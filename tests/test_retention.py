"""Retention keeps Redis bounded: quote and news history by event time (never less than the longest window a
rule needs), failures and set-aside entries by age, streams never past an unread entry, rq jobs with TTLs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import cast

import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import failures
from alerts.store.keys import Keys
from alerts.store.retention import WINDOW_MARGIN, apply_retention, quote_keep_seconds, trim_histories
from tests.pipeline import Pipeline
from tests.servers import write_rules
from workers.roles.dispatch import make_queue
from workers.roles.periodic import longest_window

DAY = 86400.0


def quotes(product: str, unit: str, start: str, days: int, price: float) -> list[dict[str, object]]:
    t0 = time.mktime(time.strptime(start, "%Y-%m-%d"))
    return [{"type": "price", "product": product, "price": price + i, "unit": unit,
             "as_of": time.strftime("%Y-%m-%d", time.localtime(t0 + i * DAY)), "source": "smm"}
            for i in range(days)]


def history_dates(client: redis.Redis, key: str) -> list[str]:
    return [json.loads(m)[0] for m in cast(list[bytes], client.zrange(key, 0, -1))]


def test_quote_history_is_trimmed_by_event_time_keeping_the_longest_window(client: redis.Redis, settings: Settings,
                                                                           rules_dir: Path) -> None:
    write_rules(rules_dir, """
rules:
  - id: tb-yearly
    price: {product: terbium oxide, change_pct: {over: 60d, above: 50}}
    notify: [console]
""")
    p = Pipeline(client, settings)
    p.run(*quotes("terbium oxide", "CNY/kg", "2023-01-01", 120, 7000))  # history of 2023
    p.run(*quotes("Pr-Nd oxide", "CNY/t", "2025-01-01", 30, 440000))
    keys = Keys()
    tb = keys.history("terbiumoxide", "smm")
    before = history_dates(client, tb)
    assert len(before) == 120
    rs = load_rules(rules_dir)
    assert longest_window(rs) == 60 * DAY
    # retention of 10 days asked for: the 60-day window (and its margin) wins
    keep = quote_keep_seconds(10, longest_window(rs))
    assert keep == 60 * DAY + WINDOW_MARGIN
    got = trim_histories(client, keys, keep)
    after = history_dates(client, tb)
    assert after == before[-(60 + 7 + 1):]  # relative to the series' newest quote (2023), not the clock
    prnd = history_dates(client, keys.history("prndoxide", "smm"))
    assert len(prnd) == 30  # a month of history is inside the window: untouched
    assert got.quotes == 120 - len(after)
    assert trim_histories(client, keys, keep).quotes == 0  # nothing more to do


def test_failures_and_set_aside_entries_age_out_and_streams_keep_unread_entries(client: redis.Redis,
                                                                               settings: Settings,
                                                                               rules_dir: Path) -> None:
    write_rules(rules_dir, "rules: []\n")
    keys = Keys()
    failures.record(client, keys, "old", {"id": "a1"}, "console", "boom", True)
    doc = json.loads(client.hget(keys.failed, "old") or b"{}")
    doc["at"] = time.time() - 100 * DAY
    client.hset(keys.failed, "old", json.dumps(doc))
    failures.record(client, keys, "new", {"id": "a2"}, "console", "boom", True)
    old_ms = int((time.time() - 100 * DAY) * 1000)
    client.xadd(keys.invalid, {"e": b"x", "reason": b"bad"}, id=f"{old_ms}-0")
    client.xadd(keys.invalid, {"e": b"y", "reason": b"bad"})
    p = Pipeline(client, settings)
    p.publish(*quotes("Pr-Nd oxide", "CNY/t", "2025-01-01", 3, 440000))  # published, not yet read
    got = apply_retention(client, keys, shards=settings.stream_shards, event_days=1e-9, alert_days=90,
                          quote_days=400, max_window=0)
    assert got.failures == 1 and [f["id"] for f in failures.listing(client, keys)] == ["new"]
    assert got.set_aside == 1 and client.xlen(keys.invalid) == 1
    assert sum(client.xlen(keys.events(s)) for s in range(settings.stream_shards)) == 3  # unread: kept
    p.evaluate()
    apply_retention(client, keys, shards=settings.stream_shards, event_days=1e-9, alert_days=90, quote_days=400,
                    max_window=0)
    # read and acknowledged: gone, but for the group's last-read entry (the trim stops at, not past, it)
    assert sum(client.xlen(keys.events(s)) for s in range(settings.stream_shards)) == 1


def test_delivery_jobs_carry_result_and_failure_ttls(client: redis.Redis, settings: Settings,
                                                    rules_dir: Path) -> None:
    write_rules(rules_dir, "rules:\n  - id: n\n    news: {any: [quota]}\n    notify: [console]\n")
    p = Pipeline(client, settings)
    p.publish({"type": "news", "id": "n1", "headline": "Quota cut", "source": "smm"})
    p.evaluate()
    p.dispatch()
    (job_id,) = make_queue(client, settings, "console").job_ids
    job = Job.fetch(job_id, connection=client, serializer=JSONSerializer)
    assert job.result_ttl == settings.delivery_result_ttl_seconds
    assert job.failure_ttl == int(settings.alert_retention_days * DAY)
