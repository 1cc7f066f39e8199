"""Throughput and latency of the alert pipeline on this machine, against a private redis-server.

1. Raw ceiling: what Python and one Redis connection can move through a stream, with no rules.
2. Naive baseline: one rq job per event.
3. This pipeline: events evaluated per second by one ``Evaluator`` with 100, 1,000 and 10,000 rules.
4. Publish-to-Slack latency through evaluator, dispatcher, rq worker and a local Slack stand-in.

Run from the repository root: ``.venv/bin/python bench/run.py [--quick]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import redis
import yaml
from pydantic import SecretStr
from rq import Queue, SimpleWorker, Worker
from rq.serializers import JSONSerializer

from alerts.catalog import product_key
from alerts.evaluate.backtest import read_events, run_backtest
from alerts.evaluate.session import Session
from alerts.events import parse_event
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from alerts.store.server import connect
from alerts.store.streams import read_alerts
from alerts.units import format_price
from bench.harness import RedisServer, free_port, wait_for
from workers.roles.composer import Composer
from workers.roles.dispatch import Dispatcher, make_queue, queue_names
from workers.roles.evaluator import Evaluator

#: Messages per pipeline round trip and per XREADGROUP in the raw ceiling.
RAW_BATCH = 1000
PRODUCTS = tuple(f"P{i:02d}" for i in range(50))
KINDS = ("above", "below", "crosses_above", "crosses_below")
UNIT = "CNY/t"
#: Event time of the first event; every next event is one second later.
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone(timedelta(hours=8)))
#: Largest relative price move per step of the random walk.
STEP = 0.002
#: Rules are spread this far (relative) around each product's base price.
SPREAD = 0.10
RULES_PER_FILE = 1000
RULE_COUNTS = (100, 1_000, 10_000)
#: The rule count whose evaluator throughput is compared with the raw read ceiling.
SHARE_RULES = 1_000
#: Events per request in the HTTP row, requests of one event in its latency row, and the token it uses.
HTTP_ARRAY = 1000
HTTP_SINGLES = 500
HTTP_TOKEN = "bench-ingest-token"  # noqa: S105
#: Spreads and all_of rules (each) among the SHARE_RULES rules of the event-time row.
COMPOSITE_RULES = 200
#: Seconds between two steps of the event-time stage in that row (as STEP_SECONDS in workers.roles.composer).
STAGE_STEP_S = 0.2
#: A regex that takes exponential time in a backtracking engine, and the article length it is run on.
EVIL_REGEX = "(a+)+$"
EVIL_LENGTH = 100_000
#: The latency part: its rule count, a product of its own with one crosses_above and one
#: crosses_below rule at LAT_THRESHOLD, and the pace of its events.
LATENCY_RULES = 1_000
LAT_PRODUCT = "LAT"
LAT_THRESHOLD = 100_000
LATENCY_EVENTS = 200
LATENCY_PACE_S = 0.020
#: Seconds to wait for the last latency alerts, and then for any duplicate.
LATENCY_DRAIN_S = 30.0
LATENCY_GRACE_S = 0.5
SLACK_TARGET = "slack:#bench"
#: Any token will do: the Slack stand-in does not check it.
SLACK_TOKEN = "xoxb-bench"  # noqa: S105
#: Seconds any single wait may take before the benchmark gives up.
WAIT_S = 60.0


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


def say(text: str) -> None:
    print(text, flush=True)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}"


# --- servers ---------------------------------------------------------------------------------------

@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free port, without persistence (the test suite's); yields its URL."""
    server = RedisServer()
    try:
        yield server.url
    finally:
        server.stop()


class SlackStub:
    """Answers ``POST /api/chat.postMessage`` like Slack and records (arrival time, text) per message."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/api/chat.postMessage":
                    self.send_error(404)
                    return
                arrivals.append((at, str(json.loads(body).get("text", ""))))
                answer = json.dumps({"ok": True, "channel": "C1", "ts": "1.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="slack-stub", daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def __enter__(self) -> SlackStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- data ------------------------------------------------------------------------------------------

def base_prices(rng: random.Random) -> dict[str, float]:
    return {p: round(rng.uniform(50_000, 1_500_000), -2) for p in PRODUCTS}


def price_event(i: int, product: str, price: float) -> dict[str, Any]:
    """Event ``i``; its time is T0 + i seconds, so event times increase for every product."""
    return {"type": "price", "product": product, "price": price, "unit": UNIT,
            "as_of": (T0 + timedelta(seconds=i)).isoformat(), "source": "bench", "id": f"e{i}"}


def random_walk(n: int, bases: dict[str, float], rng: random.Random) -> list[dict[str, Any]]:
    """``n`` quotes of random products, each a step of up to +-STEP from that product's previous one."""
    prices = dict(bases)
    events = []
    for i in range(1, n + 1):
        product = rng.choice(PRODUCTS)
        prices[product] *= 1 + rng.uniform(-STEP, STEP)
        events.append(price_event(i, product, round(prices[product], 2)))
    return events


def price_rules(n: int, bases: dict[str, float], rng: random.Random, target: str) -> list[dict[str, Any]]:
    """``n`` rules spread evenly over the products, kinds at random, thresholds within +-SPREAD of base."""
    rules = []
    for i in range(n):
        product = PRODUCTS[i % len(PRODUCTS)]
        threshold = round(bases[product] * rng.uniform(1 - SPREAD, 1 + SPREAD), 1)
        rules.append({"id": f"r{i}", "price": {"product": product, rng.choice(KINDS): threshold},
                      "notify": [target]})
    return rules


def composite_rules(spreads: int, all_ofs: int, bases: dict[str, float], rng: random.Random,
                    target: str) -> list[dict[str, Any]]:
    """Spreads between two random products (thresholds within +-SPREAD of their base difference) and
    all_of rules of two price parts on two products within a day."""
    rules: list[dict[str, Any]] = []
    for i in range(spreads):
        of, minus = rng.sample(PRODUCTS, 2)
        base = bases[of] - bases[minus]
        threshold = round(base + abs(base) * rng.uniform(-SPREAD, SPREAD) + 1, 1)
        rules.append({"id": f"s{i}", "spread": {"of": of, "minus": minus, rng.choice(KINDS): threshold},
                      "notify": [target]})
    for i in range(all_ofs):
        a, b = rng.sample(PRODUCTS, 2)
        parts = [{"price": {"product": p, kind: round(bases[p] * rng.uniform(1 - SPREAD, 1 + SPREAD), 1)}}
                 for p, kind in ((a, rng.choice(("above", "below"))), (b, rng.choice(("above", "below"))))]
        rules.append({"id": f"a{i}", "all_of": parts, "within": "1d", "notify": [target]})
    return rules


def write_rules(directory: Path, products: list[str], rules: list[dict[str, Any]]) -> RuleSet:
    """Write ``products:`` and ``rules:`` YAML files into ``directory`` and load them with the real loader."""
    directory.mkdir(parents=True)
    defs = [{"name": p, "unit": UNIT, "aliases": []} for p in products]
    (directory / "products.yaml").write_text(yaml.safe_dump({"products": defs}, sort_keys=False))
    for n, start in enumerate(range(0, len(rules), RULES_PER_FILE)):
        chunk = rules[start:start + RULES_PER_FILE]
        (directory / f"rules-{n:03d}.yaml").write_text(yaml.safe_dump({"rules": chunk}, sort_keys=False))
    rs = load_rules(directory)
    if rs.errors:
        raise SystemExit("bench: generated rules do not load:\n" + "\n".join(map(str, rs.errors[:10])))
    if len(rs.by_id) != len(rules):
        raise SystemExit(f"bench: loaded {len(rs.by_id)} of {len(rules)} generated rules")
    return rs


def bench_settings(url: str, rules_dir: Path, prefix: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=SecretStr(url), rules_dir=rules_dir, key_prefix=prefix,
        stream_shards=8, batch_size=1000, block_ms=200, breaker_max_alerts=10**9, **extra,
    )


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
    path = workdir / "import.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("product,price,unit,as_of,source,id\n")
        out.writelines(f"{e['product']},{e['price']},{e['unit']},{e['as_of']},{e['source']},{e['id']}\n"
                       for e in events)
    settings = bench_settings("redis://unused", workdir / "rules-import", "bench-import").model_copy(
        update={"stream_shards": 4, "max_future_days": 1.0})
    pub = Publisher.from_settings(client, settings, rs.catalog)
    started = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        report = import_file(fh, client, rs.catalog, settings.timezone, settings.stream_shards, pub.keys,
                             rates=pub.rates(), max_future_days=settings.max_future_days)
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
    alerts = Session(rs).apply(article)
    took = time.perf_counter() - started
    if alerts:
        raise SystemExit("bench: the regex rule matched an article it cannot match")
    return took


# --- 4. latency ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatencyRun:
    latencies_ms: list[float]
    expected: int
    unmatched: int


_LAT_PRICE = re.compile(rf"\] {LAT_PRODUCT} ([\d,.]+) ")


def rq_executable() -> str:
    exe = Path(sys.executable).with_name("rq")
    if not exe.exists():
        raise SystemExit(f"bench: no rq command next to {sys.executable}")
    return str(exe)


@dataclass(frozen=True)
class HttpRun:
    arrays_s: float  # seconds to post every event in arrays of HTTP_ARRAY
    events: int
    single_ms: list[float]  # one event per request, each request's time


def http_ingest(url: str, workdir: Path, events: list[dict[str, Any]], singles: int) -> HttpRun:
    """POST /events to a real ``alerts worker --role http`` process: every event in arrays of HTTP_ARRAY,
    then ``singles`` requests of one event each (their own ids, so each is published)."""
    rules_dir = workdir / "rules-http"
    write_rules(rules_dir, list(PRODUCTS), [])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"ALERTS_REDIS_URL": url, "ALERTS_RULES_DIR": str(rules_dir), "ALERTS_KEY_PREFIX": "bench-http",
                "ALERTS_HTTP_PORT": str(port), "ALERTS_INGEST_TOKEN": HTTP_TOKEN, "ALERTS_STREAM_SHARDS": "8"})
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "http"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    headers = {"Authorization": f"Bearer {HTTP_TOKEN}", "Content-Type": "application/json"}
    # one connection kept alive, as a feed would post
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(body: bytes) -> tuple[int, bytes]:
        conn.request("POST", "/events", body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read()

    try:
        def answers() -> bool:
            try:
                return post(b"[]")[0] == 202
            except OSError:
                conn.close()
                return False

        wait_for(answers, WAIT_S, "the HTTP app to start")
        started = time.perf_counter()
        for i in range(0, len(events), HTTP_ARRAY):
            status, text = post(json.dumps(events[i:i + HTTP_ARRAY]).encode())
            if status != 202:
                raise SystemExit(f"bench: POST /events answered {status}: {text[:200]!r}")
        arrays_s = time.perf_counter() - started
        single_ms = []
        for i in range(singles):
            body = json.dumps({**events[i], "id": f"single-{i}"}).encode()
            t0 = time.perf_counter()
            status, text = post(body)
            single_ms.append((time.perf_counter() - t0) * 1000)
            if status != 202:
                raise SystemExit(f"bench: POST /events answered {status}: {text[:200]!r}")
    finally:
        conn.close()
        proc.terminate()
        proc.wait(20)
    return HttpRun(arrays_s, len(events), single_ms)


def latency(url: str, workdir: Path, bases: dict[str, float], rng: random.Random, n: int) -> LatencyRun:
    """Publish ``n`` quotes of LAT, each crossing LAT_THRESHOLD the other way (so each fires exactly one
    rule), through evaluator and dispatcher threads and an rq worker process to the Slack stand-in."""
    rules = [
        *price_rules(LATENCY_RULES - 2, bases, rng, SLACK_TARGET),
        *({"id": f"lat-{kind}", "price": {"product": LAT_PRODUCT, kind: LAT_THRESHOLD},
           "notify": [SLACK_TARGET]} for kind in ("crosses_above", "crosses_below")),
    ]
    rs = write_rules(workdir / "rules-latency", [*PRODUCTS, LAT_PRODUCT], rules)
    with SlackStub() as slack:
        settings = bench_settings(url, workdir / "rules-latency", "bench-latency", queue_name="bench-notify",
                                  slack_bot_token=SecretStr(SLACK_TOKEN), slack_api_url=slack.api_url)
        client = connect(url, settings)
        # The pipeline's own latency: per-channel pacing (one message a second by default, on purpose)
        # is lifted, or 50 alerts a second to one channel would measure the pacing instead.
        env = {**os.environ, "ALERTS_REDIS_URL": url, "ALERTS_KEY_PREFIX": settings.key_prefix,
               "ALERTS_QUEUE_NAME": settings.queue_name, "ALERTS_SLACK_BOT_TOKEN": SLACK_TOKEN,
               "ALERTS_SLACK_API_URL": slack.api_url, "ALERTS_SLACK_RATE_PER_SECOND": "10000",
               "ALERTS_SLACK_BURST": "10000"}
        worker = subprocess.Popen(
            [rq_executable(), "worker", "--worker-class", "rq.worker.SimpleWorker",
             "--serializer", "rq.serializers.JSONSerializer", "--url", url, "--logging_level", "WARNING",
             *queue_names(settings)],
            env=env, cwd=workdir,
        )
        stop = threading.Event()
        evaluator, dispatcher = Evaluator(client, settings, lambda: rs), Dispatcher(client, settings)
        threads = [threading.Thread(target=evaluator.run, args=(stop,), name="evaluator"),
                   threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher")]
        try:
            for t in threads:
                t.start()
            queue = make_queue(client, settings, SLACK_TARGET)
            wait_for(lambda: worker.poll() is None and Worker.count(client, queue) > 0, WAIT_S, "the rq worker")
            pub = Publisher.from_settings(client, settings, rs.catalog)

            def publish(i: int, price: float) -> None:
                report = pub.publish_objects([(i, price_event(i, LAT_PRODUCT, price))])
                if report.published != 1:
                    raise SystemExit(f"bench: latency event rejected: {report.errors}")

            # Warm-up, not measured: a first quote (fires nothing), then one alert all the way to Slack.
            publish(0, LAT_THRESHOLD - 1_000)
            state = Keys(settings.key_prefix).state(product_key(LAT_PRODUCT))
            wait_for(lambda: client.exists(state) > 0, WAIT_S, "the first quote to be evaluated")
            publish(1, LAT_THRESHOLD + 1_000)
            wait_for(lambda: len(slack.arrivals) == 1, WAIT_S, "the warm-up alert to reach Slack")
            sent: dict[str, float] = {}
            started = time.perf_counter()
            for k in range(1, n + 1):
                time.sleep(max(0.0, started + (k - 1) * LATENCY_PACE_S - time.perf_counter()))
                price = float(LAT_THRESHOLD - 1_000 - k if k % 2 else LAT_THRESHOLD + 1_000 + k)
                sent[format_price(price)] = time.perf_counter()
                publish(k + 1, price)
            # Missing alerts are reported in the table, not fatal; a short grace period shows duplicates.
            deadline = time.monotonic() + LATENCY_DRAIN_S
            while len(slack.arrivals) < n + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(LATENCY_GRACE_S)
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            worker.terminate()
            worker.wait(10)
            client.close()
        latencies, unmatched = [], 0
        for at, text in slack.arrivals[1:]:
            m = _LAT_PRICE.search(text)
            if m is None or m.group(1) not in sent:
                unmatched += 1
            else:
                latencies.append((at - sent.pop(m.group(1))) * 1000)
    return LatencyRun(latencies, n, unmatched)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


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
            bt_events, bt_errors = read_events(fh, rs.catalog, "Asia/Shanghai")
        bt = run_backtest(rs, bt_events)
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
