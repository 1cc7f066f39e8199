"""Throughput and latency of the alert pipeline on this machine, against a private redis-server.

1. Raw ceiling: what Python and one Redis connection can move through a stream, with no rules.
2. Naive baseline: one rq job per event.
3. This pipeline: events evaluated per second by one ``Evaluator`` with 100, 1,000 and 10,000 rules.
4. Publish-to-Slack latency through evaluator, dispatcher, rq worker and a local Slack stand-in.

Run from the repository root: ``.venv/bin/python -m bench.run [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from alerts.evaluate.backtest import read_events, run_backtest
from alerts.evaluate.session import Session
from alerts.events import parse_event
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from alerts.store.quotes import QuoteGuard
from alerts.store.streams import read_alerts
from bench.harness import RedisServer
from bench.live import (
    HTTP_ARRAY,
    HTTP_SINGLES,
    LATENCY_EVENTS,
    LATENCY_PACE_S,
    LATENCY_RULES,
    WAIT_S,
    http_ingest,
    latency,
)
from bench.sanity import RUNS, sanity_cost
from bench.workload import (
    PRODUCTS,
    base_prices,
    bench_settings,
    composite_rules,
    percentile,
    price_rules,
    random_walk,
    rate,
    say,
    write_quotes_csv,
    write_rules,
)
from workers.roles.composer import Composer
from workers.roles.evaluator import Evaluator

#: Messages per pipeline round trip and per XREADGROUP in the raw ceiling.
RAW_BATCH = 1000
RULE_COUNTS = (100, 1_000, 10_000)
#: The rule count whose evaluator throughput is compared with the raw read ceiling.
SHARE_RULES = 1_000
#: Spreads and all_of rules (each) among the SHARE_RULES rules of the event-time row.
COMPOSITE_RULES = 200
#: Seconds between two steps of the event-time stage in that row (as STEP_SECONDS in workers.roles.composer).
STAGE_STEP_S = 0.2
#: A regex that takes exponential time in a backtracking engine, and the article length it is run on.
EVIL_REGEX = "(a+)+$"
EVIL_LENGTH = 100_000


#: What XREADGROUP returns: per stream, its name and its (entry id, fields) pairs.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


@dataclass(frozen=True)
class Sizes:
    raw_events: int
    naive_jobs: int
    pipeline_events: int


FULL = Sizes(raw_events=100_000, naive_jobs=2_000, pipeline_events=100_000)
QUICK = Sizes(raw_events=20_000, naive_jobs=500, pipeline_events=20_000)


@dataclass(frozen=True)
class Row:
    what: str
    count: str
    result: str


# --- servers ---------------------------------------------------------------------------------------

@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence (the test suite's); yields its URL."""
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.stop()


# --- data ------------------------------------------------------------------------------------------


# --- 1. raw ceiling --------------------------------------------------------------------------------

def raw_ceiling(client: redis.Redis, payloads: list[str]) -> tuple[float, float]:
    """Seconds to XADD ``payloads`` (pipelined) and to read, json.loads and XACK them all."""
    stream, group = "bench-raw:events", "readers"
    client.xgroup_create(stream, group, id="0", mkstream=True)
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(payloads), RAW_BATCH):
        for payload in payloads[start:start + RAW_BATCH]:
            pipe.xadd(stream, {"e": payload})
        pipe.execute()
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    done = 0
    while done < len(payloads):
        resp: StreamReply = client.xreadgroup(group, "reader", {stream: ">"}, count=RAW_BATCH)  # type: ignore[assignment]
        for _, msgs in resp:
            for _, fields in msgs:
                json.loads(fields[b"e"])
            client.xack(stream, group, *[mid for mid, _ in msgs])
            done += len(msgs)
    return write_s, time.perf_counter() - started


# --- 2. naive baseline -----------------------------------------------------------------------------

def csv_import(client: redis.Redis, workdir: Path, events: list[dict[str, Any]]) -> tuple[float, int]:
    """``alerts import`` of a CSV file of these quotes, as the command runs it (read, check, send as history):
    (seconds, quotes imported)."""
    from alerts.ingest.csv_import import import_file

    rs = write_rules(workdir / "rules-import", list(PRODUCTS), [])
    path = write_quotes_csv(workdir / "import.csv", events)
    settings = bench_settings("redis://unused", workdir / "rules-import", "bench-import").model_copy(
        update={"stream_shards": 4, "max_future_days": 1.0})
    pub = Publisher.from_settings(client, settings, rs.catalog)
    started = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        report = import_file(fh, client, rs.catalog, settings.timezone, settings.stream_shards, pub.keys,
                             rates=pub.rates(), max_future_days=settings.max_future_days,
                             fx_max_age_days=settings.fx_max_age_days,
                             guard=QuoteGuard.from_settings(client, settings, rs.catalog, "import", path.name))
    seconds = time.perf_counter() - started
    if report.errors or report.imported != len(events):
        raise SystemExit(f"bench: imported {report.imported} of {len(events)} rows: {report.errors[:3]}")
    return seconds, report.imported


def naive_rq(client: redis.Redis, payloads: list[str]) -> tuple[float, float]:
    """Seconds to enqueue one ``json.loads`` job per payload, and for a SimpleWorker to run them all."""
    queue = Queue("bench-naive", connection=client, serializer=JSONSerializer)
    started = time.perf_counter()
    with client.pipeline() as pipe:
        queue.enqueue_many([Queue.prepare_data("json.loads", args=(p,)) for p in payloads], pipeline=pipe)
        pipe.execute()
    enqueue_s = time.perf_counter() - started
    worker = SimpleWorker([queue], connection=client, serializer=JSONSerializer)
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    work_s = time.perf_counter() - started
    finished = queue.finished_job_registry.get_job_count()
    if finished != len(payloads):
        raise SystemExit(f"bench: rq finished {finished} of {len(payloads)} jobs")
    return enqueue_s, work_s


# --- 3. one evaluator ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalRun:
    publish_s: float
    eval_s: float
    alerts: int


def evaluate_all(client: redis.Redis, settings: Settings, rs: RuleSet, events: list[dict[str, Any]],
                 with_stage: bool = False) -> EvalRun:
    """Publish ``events`` with the real Publisher, then time one Evaluator draining them. ``with_stage``: the
    event-time stage steps beside it in the same process (as in ``alerts run``) every STAGE_STEP_S, and the
    time runs until the stage has caught up with everything too."""
    pub = Publisher.from_settings(client, settings, rs.catalog)
    started = time.perf_counter()
    report = pub.publish_objects(enumerate(events, 1))
    publish_s = time.perf_counter() - started
    if not report.ok or report.published != len(events):
        raise SystemExit(f"bench: published {report.published} of {len(events)}: {report.errors[:3]}")
    ev = Evaluator(client, settings, lambda: rs)
    stage = Composer(client, settings, lambda: rs) if with_stage else None
    ev.maintain_leases(force=True)
    evaluated = alerts = 0
    started = time.perf_counter()
    next_step = started + STAGE_STEP_S
    while evaluated < report.published:
        r = ev.step()
        if r.invalid:
            raise SystemExit(f"bench: the evaluator rejected {r.invalid} events")
        evaluated += r.events
        alerts += len(r.alerts)
        if stage is not None and time.perf_counter() >= next_step:
            alerts += len(stage.step())
            next_step = time.perf_counter() + STAGE_STEP_S
        if time.perf_counter() - started > WAIT_S:
            raise SystemExit(f"bench: evaluated {evaluated} of {report.published} events in {WAIT_S:.0f}s")
    if stage is not None:
        alerts += len(stage.step(now=math.inf))  # the last times, whose other legs will never report
    eval_s = time.perf_counter() - started
    ev.release_all()
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys(settings.key_prefix).alerts))
    stored = sum(len(read_alerts(f)) for _, f in entries)
    if stored != alerts:
        raise SystemExit(f"bench: {alerts} alerts returned but {stored} in the alert stream")
    return EvalRun(publish_s, eval_s, alerts)


def catastrophic_regex(workdir: Path) -> float:
    """Seconds to evaluate one article against a news rule whose regex backtracks catastrophically in a
    backtracking engine (``(a+)+$`` on "aaa...a!"); RE2 runs it in linear time."""
    rules_dir = workdir / "rules-regex"
    rules_dir.mkdir()
    (rules_dir / "r.yaml").write_text(f"rules:\n  - id: evil\n    news: {{regex: '{EVIL_REGEX}'}}\n"
                                      "    notify: [console]\n")
    rs = load_rules(rules_dir)
    article = parse_event({"type": "news", "headline": "h", "body": "a" * EVIL_LENGTH + "!",
                           "published_at": "2025-05-29T10:00:00+08:00"}, rs.catalog, "Asia/Shanghai")
    started = time.perf_counter()
    alerts = Session(rs, fx_max_age=Settings.model_fields["fx_max_age_days"].default * 86400).apply(article)
    took = time.perf_counter() - started
    if alerts:
        raise SystemExit("bench: the regex rule matched an article it cannot match")
    return took


# --- 4. latency ------------------------------------------------------------------------------------


# --- main ------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events: a smoke run under a minute")
    sizes = QUICK if parser.parse_args().quick else FULL
    rng = random.Random(20250106)
    bases = base_prices(rng)
    events = random_walk(max(sizes.raw_events, sizes.pipeline_events), bases, rng)
    payloads = [json.dumps(e, separators=(",", ":")) for e in events]
    rows: list[Row] = []
    started = time.perf_counter()
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        client = redis.Redis.from_url(url, socket_timeout=10)
        server_version = str(client.info("server")["redis_version"])

        n = sizes.raw_events
        write_s, read_s = raw_ceiling(client, payloads[:n])
        rows.append(Row(f"Raw ceiling: XADD, pipelined by {RAW_BATCH}", f"{n:,}",
                        f"{rate(n, write_s)} events/s"))
        rows.append(Row(f"Raw ceiling: XREADGROUP COUNT {RAW_BATCH} + json.loads + XACK", f"{n:,}",
                        f"{rate(n, read_s)} events/s"))
        say(f"raw ceiling: XADD {rate(n, write_s)}/s, read+parse+ack {rate(n, read_s)}/s")
        ceiling = n / read_s
        client.flushall()

        import_s, imported = csv_import(client, workdir, events[:n])
        rows.append(Row("CSV import (`alerts import`): read, check and send a file as history", f"{imported:,}",
                        f"{rate(imported, import_s)} rows/s"))
        say(f"csv import: {rate(imported, import_s)} rows/s")
        client.flushall()

        cost = sanity_cost(client, workdir, events[:n])
        for door, unit in (("import", "rows"), ("publish", "events")):
            what = "CSV import" if door == "import" else "Publish call (`alerts publish`, POST /events)"
            rows.append(Row(f"{what} with / without the quote sanity check (medians of {RUNS})", f"{n:,}",
                            f"{cost[door]:,.0f} / {cost[door + '_unchecked']:,.0f} {unit}/s "
                            f"({cost[door] / cost[door + '_unchecked']:.0%})"))
        say(f"quote sanity: import {cost['import']:,.0f} vs {cost['import_unchecked']:,.0f} rows/s, "
            f"publish {cost['publish']:,.0f} vs {cost['publish_unchecked']:,.0f} events/s")

        n = sizes.naive_jobs
        enqueue_s, work_s = naive_rq(client, payloads[:n])
        rows.append(Row("Naive: rq `enqueue_many` in a pipeline, one job per event", f"{n:,}",
                        f"{rate(n, enqueue_s)} jobs/s"))
        rows.append(Row("Naive: rq SimpleWorker running one job per event", f"{n:,}",
                        f"{rate(n, work_s)} jobs/s"))
        say(f"naive rq: enqueue {rate(n, enqueue_s)}/s, SimpleWorker {rate(n, work_s)} jobs/s")
        client.flushall()

        n = sizes.pipeline_events
        per_rules: dict[int, float] = {}
        for count in RULE_COUNTS:
            rules_dir = workdir / f"rules-{count}"
            load_started = time.perf_counter()
            rs = write_rules(rules_dir, list(PRODUCTS), price_rules(count, bases, rng, "console"))
            load_s = time.perf_counter() - load_started
            run = evaluate_all(client, bench_settings(url, rules_dir, f"bench-{count}"), rs, events[:n])
            per_rules[count] = n / run.eval_s
            rows.append(Row(f"This pipeline: one evaluator, {count:,} rules on {len(PRODUCTS)} products",
                            f"{n:,}", f"{rate(n, run.eval_s)} events/s ({run.alerts:,} alerts)"))
            say(f"{count:,} rules (written and loaded in {load_s:.1f}s): "
                f"published {rate(n, run.publish_s)}/s, evaluated {rate(n, run.eval_s)}/s, "
                f"{run.alerts:,} alerts")
            client.flushall()
        rules_dir = workdir / "rules-composite"
        mixed = price_rules(SHARE_RULES - 2 * COMPOSITE_RULES, bases, rng, "console") + composite_rules(
            COMPOSITE_RULES, COMPOSITE_RULES, bases, rng, "console")
        rs = write_rules(rules_dir, list(PRODUCTS), mixed)
        run = evaluate_all(client, bench_settings(url, rules_dir, "bench-composite"), rs, events[:n], with_stage=True)
        rows.append(Row(f"This pipeline: one evaluator and the event-time stage, {SHARE_RULES:,} rules of which "
                        f"{COMPOSITE_RULES} spreads and {COMPOSITE_RULES} `all_of`", f"{n:,}",
                        f"{rate(n, run.eval_s)} events/s ({run.alerts:,} alerts)"))
        say(f"{SHARE_RULES:,} rules with {COMPOSITE_RULES} spreads and {COMPOSITE_RULES} all_of: "
            f"{rate(n, run.eval_s)}/s, {run.alerts:,} alerts")
        client.flushall()
        share = per_rules[SHARE_RULES] / ceiling
        rows.append(Row(f"Evaluator with {SHARE_RULES:,} rules / raw read ceiling", "", f"{share:.0%}"))
        say(f"evaluator with {SHARE_RULES:,} rules: {share:.0%} of the raw read ceiling")
        most, fewest = RULE_COUNTS[-1], RULE_COUNTS[0]
        ratio = per_rules[most] / per_rules[fewest]
        rows.append(Row(f"Throughput ratio {most:,} rules / {fewest:,} rules", "", f"{ratio:.2f}"))
        say(f"ratio {most:,} / {fewest:,} rules: {ratio:.2f}")

        n = sizes.pipeline_events
        rules_dir = workdir / "rules-backtest"
        rs = write_rules(rules_dir, list(PRODUCTS), price_rules(1_000, bases, rng, "console"))
        feed = workdir / "backtest.jsonl"
        feed.write_text("\n".join(payloads[:n]) + "\n")
        started_bt = time.perf_counter()
        with feed.open(encoding="utf-8") as fh:
            fx_days = Settings.model_fields["fx_max_age_days"].default
            bt_events, bt_errors = read_events(fh, rs.catalog, "Asia/Shanghai", fx_max_age_days=fx_days)
        bt = run_backtest(rs, bt_events, fx_max_age_days=fx_days)
        bt_s = time.perf_counter() - started_bt
        if bt_errors or bt.events != n:
            raise SystemExit(f"bench: backtest read {bt.events} of {n} events: {bt_errors[:3]}")
        rows.append(Row("Backtest (`alerts backtest --events`): read, parse and evaluate a JSON Lines file, "
                        "1,000 rules", f"{n:,}", f"{bt_s:.2f} s ({rate(n, bt_s)} events/s, {len(bt.alerts):,} alerts)"))
        say(f"backtest: {n:,} events in {bt_s:.2f}s")

        regex_s = catastrophic_regex(workdir)
        rows.append(Row(f"News rule `{EVIL_REGEX}` (RE2) on a {EVIL_LENGTH:,}-character article, no match",
                        "1", f"{regex_s * 1000:.1f} ms"))
        say(f"regex {EVIL_REGEX} on {EVIL_LENGTH:,} characters: {regex_s * 1000:.1f} ms")

        run_http = http_ingest(url, workdir, events[:n], HTTP_SINGLES)
        rows.append(Row(f"HTTP `POST /events` (`alerts worker --role http`), arrays of {HTTP_ARRAY:,}", f"{n:,}",
                        f"{rate(n, run_http.arrays_s)} events/s"))
        ms = run_http.single_ms
        rows.append(Row("HTTP `POST /events`, one event per request", f"{len(ms):,}",
                        f"p50 {percentile(ms, 0.50):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms"))
        say(f"http: arrays {rate(n, run_http.arrays_s)} events/s; single p50 {percentile(ms, 0.50):.1f} ms, "
            f"p99 {percentile(ms, 0.99):.1f} ms")
        client.flushall()

        lat = latency(url, workdir, bases, rng, LATENCY_EVENTS)
        ms = lat.latencies_ms
        got = len(ms)
        if got:
            result = (f"p50 {percentile(ms, 0.50):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms"
                      f" (max {max(ms):.1f} ms)")
        else:
            result = "no alert arrived"
        if got != lat.expected or lat.unmatched:
            result += f"; {got} of {lat.expected} matched, {lat.unmatched} unexpected"
        rows.append(Row(f"Publish to Slack `chat.postMessage`, {LATENCY_RULES:,} rules, one event per "
                        f"{LATENCY_PACE_S * 1000:.0f} ms", f"{lat.expected:,}", result))
        say(f"latency: {result}")
        client.close()
    say(f"\ntotal {time.perf_counter() - started:.0f}s\n")
    say(f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, redis-server {server_version}, "
        f"redis-py {version('redis')} (hiredis {version('hiredis')}), rq {version('rq')}"
        f"{', --quick' if sizes is QUICK else ''}\n")
    say("| Measurement | Events | Result |")
    say("|---|---:|---|")
    for row in rows:
        say(f"| {row.what} | {row.count} | {row.result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
