"""The benchmark's live measurements, through real processes and sockets: POST /events to an ``alerts worker
--role http`` process (arrays and single events), and publish-to-Slack latency through evaluator, dispatcher,
an rq worker and a local Slack stand-in (``SlackStub``)."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rq import Worker

from alerts.catalog import product_key
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from alerts.store.server import connect
from alerts.units import format_price
from bench.harness import free_port, wait_for
from bench.workload import (
    PRODUCTS,
    bench_settings,
    price_event,
    price_rules,
    write_rules,
)
from workers.roles.dispatch import Dispatcher, make_queue, queue_names
from workers.roles.evaluator import Evaluator

#: Events per request in the HTTP row, requests of one event in its latency row, and the token it uses.
HTTP_ARRAY = 1000


HTTP_SINGLES = 500


HTTP_TOKEN = "bench-ingest-token"  # noqa: S105


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
