"""A Redis that fails over: the service (``alerts run``: every role, rq included) finds the primary through
three sentinels; events are published through ``alerts publish`` and ``POST /events`` with
``ALERTS_REDIS_MIN_REPLICAS=1`` while the primary is SIGKILLed mid-stream. Every event a publisher was told
was accepted is evaluated exactly once on the new primary, and every alert reaches Slack once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis

from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.server import connect
from alerts.store.streams import read_alerts
from tests.sentinel import MASTER_NAME, SentinelCluster
from tests.servers import SlackServer, free_port, wait_for, write_rules

RULES = """
rules:
  - id: failover-news
    news: {any: [failover*]}
    notify: [slack:#failover]
"""
PREFIX = "failover"
#: Events per POST and per `alerts publish` file.
HTTP_BATCH, CLI_BATCH = 5, 20
#: Seconds the failover test may take in all.
TIME_LIMIT = 120


@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    c = SentinelCluster(replicas=2, sentinels=3, quorum=2, down_after_ms=1000, failover_timeout_ms=3000)
    try:
        wait_for(c.ready, 20, "the sentinels to know the replica and each other", interval=0.1)
        yield c
    finally:
        c.stop()


def news(event_id: str) -> dict[str, object]:
    return {"type": "news", "id": event_id, "headline": f"Failover drill {event_id}", "source": "drill"}


class Publishers:
    """Two feeds publishing until told to stop, each batch sent again until it is accepted (as a feed
    would): POST /events (accepted: 202) and `alerts publish` (accepted: exit status 0)."""

    def __init__(self, http_url: str, env: dict[str, str], tmp: Path) -> None:
        self.http_url, self.env, self.tmp = http_url, env, tmp
        self.stop = threading.Event()
        self.accepted: dict[str, float] = {}  # event id -> when its publisher was told it was accepted
        self.refused: Counter[str] = Counter()  # why a send was not accepted (then sent again)
        self.lock = threading.Lock()

    def _accept(self, ids: list[str]) -> None:
        now = time.time()
        with self.lock:
            for i in ids:
                self.accepted[i] = now

    def http(self) -> None:
        n = 0
        with httpx.Client(timeout=15) as web:
            while not self.stop.is_set():
                ids = [f"h{n}-{i}" for i in range(HTTP_BATCH)]
                while True:  # the same body again until it is accepted
                    try:
                        r = web.post(f"{self.http_url}/events", json=[news(i) for i in ids])
                        if r.status_code == 202:
                            self._accept(ids)
                            break
                        self.refused[f"http {r.status_code} {r.json().get('error', '')[:40]}"] += 1
                    except httpx.HTTPError as exc:
                        self.refused[f"http {type(exc).__name__}"] += 1
                    time.sleep(0.1)
                n += 1
                time.sleep(0.02)

    def cli(self) -> None:
        n = 0
        while not self.stop.is_set():
            ids = [f"c{n}-{i}" for i in range(CLI_BATCH)]
            path = self.tmp / f"batch{n}.jsonl"
            path.write_text("".join(json.dumps(news(i)) + "\n" for i in ids))
            while True:
                proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(path)], env=self.env,
                                      capture_output=True, text=True, timeout=60)
                if proc.returncode == 0:
                    self._accept(ids)
                    break
                self.refused[f"publish exit {proc.returncode}"] += 1
                time.sleep(0.1)
            n += 1


@pytest.fixture
def time_limit() -> Iterator[None]:
    """The whole test within TIME_LIMIT seconds (every wait in it has its own limit too)."""
    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the failover test took more than {TIME_LIMIT}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_sigkill_of_the_primary_loses_and_doubles_nothing(cluster: SentinelCluster, slack: SlackServer,
                                                          rules_dir: Path, tmp_path: Path, time_limit: None) -> None:
    write_rules(rules_dir, RULES)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({
        "ALERTS_REDIS_SENTINELS": cluster.addresses, "ALERTS_REDIS_MASTER_NAME": MASTER_NAME,
        "ALERTS_REDIS_MIN_REPLICAS": "1", "ALERTS_REDIS_WAIT_TIMEOUT_MS": "1000",
        "ALERTS_RULES_DIR": str(rules_dir), "ALERTS_DATA_DIR": str(tmp_path / "data"), "ALERTS_KEY_PREFIX": PREFIX,
        "ALERTS_STREAM_SHARDS": "4", "ALERTS_BLOCK_MS": "50", "ALERTS_LEASE_SECONDS": "3",
        "ALERTS_CLAIM_IDLE_SECONDS": "1", "ALERTS_BREAKER_MAX_ALERTS": "1000000",
        "ALERTS_HTTP_PORT": str(port), "ALERTS_SLACK_BOT_TOKEN": slack.token, "ALERTS_SLACK_API_URL": slack.url,
        "ALERTS_SLACK_RATE_PER_SECOND": "1000", "ALERTS_SLACK_BURST": "1000", "PYTHONFAULTHANDLER": "1",
        # a delivery that fails during the switch is retried within seconds (the default waits 5 s, then 30 s)
        "ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS": "[1, 1, 2, 2, 5]",
    })
    log = (tmp_path / "service.log").open("w")
    service = subprocess.Popen([sys.executable, "-m", "workers.cli", "run"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    settings = Settings(_env_file=None, redis_sentinels=cluster.addresses.split(","),  # type: ignore[call-arg]
                        key_prefix=PREFIX, rules_dir=rules_dir, redis_sentinel_password=None,
                        redis_url=None, socket_timeout_seconds=3)
    client = connect(None, settings)
    pubs = Publishers(f"http://127.0.0.1:{port}", env, tmp_path)
    threads = [threading.Thread(target=pubs.http, daemon=True), threading.Thread(target=pubs.cli, daemon=True)]
    try:
        wait_for(lambda: _answers(pubs.http_url), 30, "the service's HTTP app", interval=0.1)
        for t in threads:
            t.start()
        wait_for(lambda: len(slack.messages) >= 20, 30, "alerts delivered before the failover", interval=0.05)
        old = cluster.node_on(cluster.master_port())
        killed = time.time()
        old.kill()
        wait_for(lambda: cluster.master_port() != old.port, 30, "the sentinels to promote the replica", interval=0.05)
        promoted = time.time()
        try:
            wait_for(lambda: sum(1 for t in pubs.accepted.values() if t > promoted) >= 40, 30,
                     "events accepted after the failover", interval=0.05)
        except AssertionError:
            print(dict(pubs.refused), (tmp_path / "service.log").read_text()[-3000:])
            raise
        pubs.stop.set()
        for t in threads:
            t.join(60)
        accepted = dict(pubs.accepted)

        def evaluated() -> Counter[str]:
            return Counter(a.event_id for _, fields in entries(client) for a in read_alerts(fields))

        wait_for(lambda: set(accepted) <= set(evaluated()), 30, "every accepted event evaluated", interval=0.1)
        counts = evaluated()
        alert_ids = {a.id: a.event_id for _, fields in entries(client) for a in read_alerts(fields)}
        try:
            wait_for(lambda: len(slack.messages) >= len(alert_ids), 60, "every alert delivered", interval=0.1)
        except AssertionError:
            sent = {str(m.get("metadata", {}).get("event_payload", {}).get("alert_id")) for m in slack.messages}
            keys = Keys(PREFIX)
            for aid in sorted(set(alert_ids) - sent):
                print("missing", aid, "delivered marker:", client.exists(keys.delivered(aid, "slack:#failover")),
                      "enqueued marker:", client.exists(keys.enqueued(aid)), "outcome:",
                      client.hgetall(f"{PREFIX}:outcome:{aid}"), "failed:", client.hkeys(keys.failed),
                      "jobs:", [(k, client.hget(k, "status"))
                                for k in client.scan_iter(match=f"rq:job:deliver-{aid}*")])
            print(f"{len(slack.messages)} of {len(alert_ids)} delivered",
                  (tmp_path / "service.log").read_text()[-3000:])
            raise
        time.sleep(1.5)  # a duplicate delivery, if any, would come now
        first_after = min(int(entry_id.split(b"-")[0]) for entry_id, _ in entries(client)
                          if int(entry_id.split(b"-")[0]) > killed * 1000) / 1000
    finally:
        pubs.stop.set()
        service.terminate()
        try:
            service.wait(15)
        except subprocess.TimeoutExpired:
            service.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack in the log
            service.wait(10)
        log.close()
        client.close()
    output = (tmp_path / "service.log").read_text()
    delivered = Counter(m["metadata"]["event_payload"]["alert_id"] for m in slack.messages
                        if isinstance(m.get("metadata"), dict))
    if not delivered:  # metadata sent as a JSON string (form encoding)
        delivered = Counter(json.loads(m["metadata"])["event_payload"]["alert_id"] for m in slack.messages)

    doubled = {e: n for e, n in counts.items() if n > 1}
    assert not doubled, f"events evaluated more than once: {doubled}"
    assert set(accepted) <= set(counts), f"accepted, never evaluated: {sorted(set(accepted) - set(counts))[:10]}"
    assert all(n == 1 for n in delivered.values()), [a for a, n in delivered.items() if n > 1]
    assert set(delivered) == set(alert_ids)
    assert service.returncode == 0, output[-3000:]
    after = sum(1 for t in accepted.values() if t > killed)
    print(f"\nfailover: {len(accepted)} events accepted ({after} after the SIGKILL), refused and sent again: "
          f"{dict(pubs.refused)}; sentinels promoted the replica {promoted - killed:.2f}s after the SIGKILL; "
          f"first event evaluated on the new primary {first_after - killed:.2f}s after it")


def entries(client: redis.Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The alert stream (entry id: the primary's clock in ms when the evaluator committed the alerts)."""
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys(PREFIX).alerts))


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sentinel_settings_reach_every_connection(cluster: SentinelCluster) -> None:
    """`connect` with ALERTS_REDIS_SENTINELS: a master_for client that writes to the primary the sentinels name."""
    settings = Settings(_env_file=None, redis_sentinels=cluster.addresses.split(","),  # type: ignore[call-arg]
                        redis_master_name=MASTER_NAME)
    client = connect(None, settings)
    try:
        client.set("k", "v")
        with cluster.primary.client() as direct:
            assert direct.get("k") == b"v"
        assert client.wait(2, 1000) == 2  # both replicas have it
    finally:
        client.close()
