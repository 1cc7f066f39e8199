"""What the quote sanity check (``alerts.events.sanity``, asked through ``alerts.store.quotes.QuoteGuard``) costs at
the two doors that take the most quotes: ``alerts import`` of a CSV file and a publish call, each timed with and
without the check, alternately (``RUNS`` of each, which one goes first alternating too; the medians), on the same
quotes and a fresh Redis key prefix per run. The evaluator's throughput is not affected: the check runs where
quotes come in, never in evaluation."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import redis

from alerts.ingest.csv_import import import_file
from alerts.store.publish import Publisher
from alerts.store.quotes import QuoteGuard
from bench.workload import PRODUCTS, bench_settings, write_quotes_csv, write_rules

#: Timed runs of each variant.
RUNS = 5


def sanity_cost(client: redis.Redis, workdir: Path, events: list[dict[str, Any]]) -> dict[str, float]:
    """Median rows/s of the CSV import and events/s of a publish call, with and without the check."""
    rs = write_rules(workdir / "rules-sanity", list(PRODUCTS), [])
    path = write_quotes_csv(workdir / "sanity.csv", events)
    times: dict[str, list[float]] = {"import": [], "import_unchecked": [], "publish": [], "publish_unchecked": []}
    for run in range(RUNS):
        for checked in ((True, False) if run % 2 == 0 else (False, True)):
            prefix = f"bench-sanity-{run}-{int(checked)}"
            settings = bench_settings("redis://unused", workdir / "rules-sanity", prefix).model_copy(
                update={"stream_shards": 4, "max_future_days": 1.0})
            pub = Publisher.from_settings(client, settings, rs.catalog)
            guard = QuoteGuard.from_settings(client, settings, rs.catalog, "import", path.name) if checked else None
            started = time.perf_counter()
            with path.open(encoding="utf-8-sig", newline="") as fh:
                report = import_file(fh, client, rs.catalog, settings.timezone, settings.stream_shards, pub.keys,
                                     rates=pub.rates(), max_future_days=settings.max_future_days,
                                     fx_max_age_days=settings.fx_max_age_days, guard=guard)
            times["import" if checked else "import_unchecked"].append(time.perf_counter() - started)
            if report.errors or report.imported != len(events):
                raise SystemExit(f"bench: imported {report.imported} of {len(events)}: {report.errors[:3]}")
            publisher = Publisher.from_settings(client, settings.model_copy(update={"key_prefix": prefix + "-pub"}),
                                                rs.catalog)
            if not checked:
                publisher.max_daily_move_pct = None  # no QuoteGuard: the publish without the check
            started = time.perf_counter()
            published = publisher.publish_objects(enumerate(events, 1))
            times["publish" if checked else "publish_unchecked"].append(time.perf_counter() - started)
            if not published.ok:
                raise SystemExit(f"bench: published with errors: {published.errors[:3]}")
            client.flushall()
    return {k: len(events) / statistics.median(v) for k, v in times.items()}
