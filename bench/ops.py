"""Operations figures: scale-out of evaluator processes, Redis memory per event and per alert, and a soak with
retention set low (memory flat once the retained window is full).

1. Scale-out: 1 and 2 ``alerts worker --role evaluate`` processes against one private redis-server, 1,000 price
   rules; once the processes own their shards they are stopped (SIGSTOP), the events appended, and the clock
   runs from SIGCONT until every event is acknowledged. Exactly once: each event's quote is in the quote history
   once (members == events), and both runs write the same number of alerts.
2. Memory: Redis' used_memory before and after 200,000 events are evaluated (nothing trimmed), per event and
   per alert (the alert stream's MEMORY USAGE per alert).
3. Status: one ``alerts status`` read with 1,000,000 events stored.
4. Soak: 1,000,000 events through publish, evaluation, dispatch and delivery to a local webhook, retention run
   after each chunk with event streams kept 1 s and quote history 1 day (events are 1 s apart in event time):
   used_memory after every chunk.

Run from the repository root: ``.venv/bin/python -m bench.ops [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import redis
import yaml

from alerts.events import encode_wire, parse_event
from alerts.rules.load import load_rules
from alerts.store import heartbeats
from alerts.store.keys import EVALUATOR_GROUP, Keys
from alerts.store.publish import Publisher
from alerts.store.retention import apply_retention
from alerts.store.streams import WIRE_FIELD, read_alerts, shard_of
from bench import workload as bench
from bench.harness import RedisServer, wait_for
from workers.deliver import Delivery
from workers.roles.delivery_worker import DeliveryWorker
from workers.roles.dispatch import Dispatcher, make_queues
from workers.roles.evaluator import Evaluator

SHARDS = 8
RULES = 1_000
SCALE_EVENTS = 200_000
MEMORY_EVENTS = 200_000
SOAK_EVENTS = 1_000_000
SOAK_CHUNK = 50_000
#: Rules of the memory and soak parts: each of their alerts is delivered through rq to a local webhook.
SOAK_RULES = 100


def say(text: str) -> None:
    print(text, flush=True)


def wire_events(events: list[dict[str, Any]], rules_dir: Path) -> list[tuple[int, bytes]]:
    """(shard, wire form) of each event, validated once as publish does."""
    catalog = load_rules(rules_dir).catalog
    out = []
    for obj in events:
        ev = parse_event(obj, catalog, "Asia/Shanghai")
        out.append((shard_of(ev, SHARDS), encode_wire(ev)))
    return out


def append(client: redis.Redis, keys: Keys, wires: list[tuple[int, bytes]]) -> None:
    pipe = client.pipeline(transaction=False)
    for i, (shard, wire) in enumerate(wires, 1):
        pipe.xadd(keys.events(shard), {WIRE_FIELD: wire})
        if i % 2000 == 0:
            pipe.execute()
    pipe.execute()


def acked(client: redis.Redis, keys: Keys) -> int:
    """Entries every shard's evaluator group has read and acknowledged."""
    done = 0
    for shard in range(SHARDS):
        try:
            groups: list[dict[str, Any]] = client.xinfo_groups(keys.events(shard))
        except redis.ResponseError:
            continue
        for g in groups:
            if g["name"] in (EVALUATOR_GROUP, EVALUATOR_GROUP.encode()):
                read = g.get("entries-read") or 0
                done += int(read) - int(g.get("pending", 0))
    return done


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ScaleRun:
    processes: int
    seconds: float
    events: int
    history_members: int
    alerts: int
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def scale_run(n_procs: int, wires: list[tuple[int, bytes]], rules_dir: Path, workdir: Path) -> ScaleRun:
    server = RedisServer()
    client = redis.Redis.from_url(server.url)
    keys = Keys("scale")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"ALERTS_REDIS_URL": server.url, "ALERTS_RULES_DIR": str(rules_dir), "ALERTS_KEY_PREFIX": "scale",
                "ALERTS_STREAM_SHARDS": str(SHARDS), "ALERTS_BATCH_SIZE": "1000", "ALERTS_BLOCK_MS": "50",
                "ALERTS_LEASE_SECONDS": "3", "ALERTS_BREAKER_MAX_ALERTS": str(10**9),
                "ALERTS_DATA_DIR": str(workdir / "data")})
    procs = [subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n_procs)]
    try:
        def balanced() -> bool:
            procs_seen = [p for p in heartbeats.processes(client, keys) if p.alive]
            owned = [p.doing.get("evaluate", "") for p in procs_seen]
            counts = [len(o.split(";")[0].removeprefix("shards ").split(",")) for o in owned if "none" not in o]
            return len(counts) == n_procs and sum(counts) == SHARDS and max(counts) - min(counts) <= 1

        wait_for(balanced, 60, f"{n_procs} evaluators to share the shards", interval=0.2)
        for p in procs:  # stopped while the events are appended: the appender does not compete for the CPUs
            p.send_signal(signal.SIGSTOP)
        append(client, keys, wires)
        redis_cpu0 = cpu_seconds(server.proc.pid)
        procs_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        t0 = time.perf_counter()
        for p in procs:
            p.send_signal(signal.SIGCONT)
        wait_for(lambda: acked(client, keys) >= len(wires), 600, "every event evaluated", interval=0.05)
        seconds = time.perf_counter() - t0
        cpu = {"redis-server": cpu_seconds(server.proc.pid) - redis_cpu0,
               "evaluators": sum(cpu_seconds(p.pid) for p in procs) - procs_cpu0}
        members = sum(int(client.zcard(k)) for k in client.scan_iter(match="scale:history:*"))
        alerts = sum(len(read_alerts(f)) for _, f in
                     cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(keys.alerts)))
        return ScaleRun(n_procs, seconds, len(wires), members, alerts, cpu)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        client.close()
        server.stop()


class Sink(BaseHTTPRequestHandler):
    count = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Sink.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def memory_and_soak(workdir: Path, bases: dict[str, float], rng: random.Random, n_memory: int, n_soak: int,
                    chunk: int) -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{sink.server_address[1]}/hook"
    rules = bench.price_rules(SOAK_RULES, bases, rng, "webhook:sink")
    rules_dir = workdir / "soak-rules"
    rules_dir.mkdir()
    (rules_dir / "hooks.yaml").write_text(f"webhooks:\n  - name: sink\n    url: {hook}\n    secret: bench-secret\n")
    defs = [{"name": p, "unit": bench.UNIT, "aliases": []} for p in bench.PRODUCTS]
    (rules_dir / "rules.yaml").write_text(yaml.safe_dump({"products": defs, "rules": rules}, sort_keys=False))
    rs = load_rules(rules_dir)
    if rs.errors:
        raise SystemExit("bench: soak rules do not load:\n" + "\n".join(map(str, rs.errors[:5])))
    server = RedisServer()
    client = redis.Redis.from_url(server.url)
    try:
        settings = bench.bench_settings(server.url, rules_dir, "soak", event_retention_days=1 / 86400,
                                        alert_retention_days=1 / 86400, quote_retention_days=1.0,
                                        delivery_result_ttl_seconds=0, lease_seconds=600)
        keys = Keys("soak")
        publisher = Publisher.from_settings(client, settings, rs.catalog)
        evaluator = Evaluator(client, settings, lambda: rs)
        dispatcher = Dispatcher(client, settings)
        worker = DeliveryWorker(make_queues(client, settings), connection=client,
                                delivery=Delivery(settings, lambda: rs))

        def used() -> int:
            return int(client.info("memory")["used_memory"])

        def run_chunk(events: list[dict[str, Any]]) -> None:
            publisher.publish_objects(enumerate(events, 1))
            while evaluator.step().events:
                pass
            while dispatcher.step(block_ms=1) or dispatcher.read_pending:
                pass
            worker.work(burst=True, logging_level="ERROR")

        # memory per event and per alert, nothing trimmed
        client.config_set("maxmemory-policy", "noeviction")
        base = used()
        events = bench.random_walk(n_memory, bases, rng)
        run_chunk(events)
        grown = used() - base
        n_alerts = sum(len(read_alerts(f)) for _, f in
                       cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(keys.alerts)))
        alert_bytes = int(client.memory_usage(keys.alerts, samples=0) or 0)
        say(f"memory: {grown / n_memory:,.0f} bytes of Redis per event evaluated ({grown / n_memory:,.0f} MB per "
            f"million), alert stream {alert_bytes / max(1, n_alerts):,.0f} bytes per alert "
            f"({alert_bytes / max(1, n_alerts) * 1000 / 1e6:,.2f} MB per thousand); {n_alerts:,} alerts, "
            f"{Sink.count:,} webhook deliveries")
        # soak: the same pipeline, retention after every chunk
        say(f"soak: {n_soak:,} events in chunks of {chunk:,}; used_memory after each chunk and retention:")
        start = n_memory
        marks = []
        for done in range(0, n_soak, chunk):
            chunk_events = [bench.price_event(start + done + i + 1, e["product"], e["price"])
                            for i, e in enumerate(bench.random_walk(chunk, bases, rng))]
            run_chunk(chunk_events)
            time.sleep(1.1)  # the 1 s event stream retention passes
            apply_retention(client, keys, shards=SHARDS, event_days=settings.event_retention_days,
                            alert_days=settings.alert_retention_days, quote_days=settings.quote_retention_days,
                            max_window=0.0)
            for registry in (q.finished_job_registry for q in make_queues(client, settings)):
                registry.cleanup()
            marks.append(used())
            say(f"  {done + chunk:>9,} events: {marks[-1] / 1e6:7.1f} MB")
        by_kind: dict[str, int] = {}
        for key in client.scan_iter(count=1000):
            parts = key.decode().split(":")
            kind = ":".join(parts[:2])
            by_kind[kind] = by_kind.get(kind, 0) + int(client.memory_usage(key, samples=0) or 0)
        top = sorted(by_kind.items(), key=lambda kv: -kv[1])[:8]
        say("soak: what Redis holds at the end, by key kind: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in top))
        first_window = 86_400 // chunk + 1  # one day of event time: 86,400 events
        tail = marks[first_window:]
        if tail:
            say(f"soak: after the first day of event time, used_memory between {min(tail) / 1e6:.1f} and "
                f"{max(tail) / 1e6:.1f} MB ({(max(tail) - min(tail)) / max(tail) * 100:.1f}% spread)")
    finally:
        client.close()
        server.stop()
        sink.shutdown()


def status_read(n: int, workdir: Path, bases: dict[str, float], rng: random.Random) -> None:
    """``alerts status``'s read (``workers.cli.status.collect``) with ``n`` events stored on the streams."""
    from workers.cli.status import collect

    rules_dir = workdir / "status-rules"
    bench.write_rules(rules_dir, list(bench.PRODUCTS), bench.price_rules(RULES, bases, rng, "console"))
    server = RedisServer()
    client = redis.Redis.from_url(server.url)
    try:
        settings = bench.bench_settings(server.url, rules_dir, "status")
        keys = Keys("status")
        one = bench.random_walk(1000, bases, rng)
        wires = wire_events(one, rules_dir)
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            shard, wire = wires[i % len(wires)]
            pipe.xadd(keys.events(shard), {WIRE_FIELD: wire})
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        rs = load_rules(rules_dir)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            collect(client, settings, rules=rs)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        collect(client, settings)
        whole = time.perf_counter() - t0
        stored = sum(int(client.xlen(keys.events(s))) for s in range(SHARDS))
        say(f"status: one read with {stored:,} events stored: best {min(times) * 1000:.1f} ms, "
            f"worst {max(times) * 1000:.1f} ms (5 reads); {whole * 1000:.0f} ms with loading the {RULES:,} rules, "
            "as the command does")
    finally:
        client.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events")
    parser.add_argument("--only", choices=("scale", "memory", "status"), help="one part only")
    args = parser.parse_args()
    rng = random.Random(11)
    bases = bench.base_prices(rng)
    scale_events = 40_000 if args.quick else SCALE_EVENTS
    with tempfile.TemporaryDirectory(prefix="alerts-bench-ops-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "scale"):
            rules_dir = workdir / "rules"
            bench.write_rules(rules_dir, list(bench.PRODUCTS), bench.price_rules(RULES, bases, rng, "console"))
            wires = wire_events(bench.random_walk(scale_events, bases, rng), rules_dir)
            runs = [scale_run(n, wires, rules_dir, workdir) for n in (1, 2)]
            for r in runs:
                say(f"scale-out: {r.processes} evaluator process{'es' if r.processes > 1 else ''}: "
                    f"{r.rate:,.0f} events/s ({r.events:,} in {r.seconds:.2f} s); quote history members "
                    f"{r.history_members:,} (events {r.events:,}); alerts {r.alerts:,}; CPU seconds: evaluators "
                    f"{r.cpu['evaluators']:.1f}, redis-server {r.cpu['redis-server']:.1f}, per 100k events "
                    f"{r.cpu['evaluators'] / r.events * 1e5:.2f} + {r.cpu['redis-server'] / r.events * 1e5:.2f}")
            ok = all(r.history_members == r.events for r in runs) and runs[0].alerts == runs[1].alerts
            say(f"scale-out: 2 processes / 1 = {runs[1].rate / runs[0].rate:.2f}x; every event evaluated once: "
                f"{'yes' if ok else 'NO'}")
        if args.only in (None, "status"):
            status_read(100_000 if args.quick else 1_000_000, workdir, bases, rng)
        if args.only in (None, "memory"):
            memory_and_soak(workdir, bases, rng, 20_000 if args.quick else MEMORY_EVENTS,
                            100_000 if args.quick else SOAK_EVENTS, 10_000 if args.quick else SOAK_CHUNK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
