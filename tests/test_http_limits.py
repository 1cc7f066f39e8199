"""POST /events under abuse, over real sockets: bounded error answers (and ``alerts publish``'s), one validation path
for HTTP and ``alerts publish`` (the same too-deep line, the same reason), a 10 MiB body of ``{}`` in bounded memory
while /healthz answers, header and body read deadlines against slow clients, and Redis at ``maxmemory``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.events import MAX_DEPTH
from alerts.events.batch import MAX_PROBLEMS
from alerts.settings import Settings
from tests.conftest import env_for
from tests.servers import RedisServer, wait_for, write_rules
from tests.streams import stream_entries
from tests.test_http import start_http_worker
from workers.web.http import HttpServer, make_app

TOKEN = "s3cret-ingest-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUOTE = {"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", "as_of": "2025-03-11",
         "source": "smm"}
#: Deadlines of the servers here: short, so a slow client is cut off within seconds.
HEADERS_S, BODY_S = 2.0, 3.0
#: A news line whose tags nest deeper than the limit (an event needs 2 levels).
DEEP = ('{"type": "news", "headline": "Export quotas cut", "source": "smm", "tags": '
        + "[" * (MAX_DEPTH + 4) + "]" * (MAX_DEPTH + 4) + "}")


def quote(day: int) -> dict[str, object]:
    return {**QUOTE, "as_of": f"2025-03-{day:02d}"}


def published(client: redis.Redis, shards: int) -> int:
    return sum(int(client.xlen(f"alerts:events:{s}")) for s in range(shards))


def start(client: redis.Redis, settings: Settings) -> tuple[HttpServer, str]:
    http = HttpServer(make_app(client, settings, builtin_catalog), settings, header_timeout=HEADERS_S,
                      body_timeout=BODY_S).start()
    url = f"http://127.0.0.1:{http.port}"
    wait_for(lambda: _answers(url), 10, "the HTTP app to start")
    return http, url


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def server(client: redis.Redis, settings: Settings) -> Iterator[tuple[str, Settings]]:
    s = settings.model_copy(update={"ingest_token": SecretStr(TOKEN)})
    http, url = start(client, s)
    yield url, s
    http.stop()


def post(url: str, content: bytes | str) -> httpx.Response:
    return httpx.post(f"{url}/events", content=content, headers=AUTH, timeout=60)


# --- bounded error reports -----------------------------------------------------------------------------------------


def test_the_answer_lists_the_first_problems_and_counts_the_rest(server: tuple[str, Settings],
                                                                 client: redis.Redis) -> None:
    url, s = server
    items: list[object] = [{}] * 100
    items[50] = QUOTE
    r = post(url, json.dumps(items))
    assert r.status_code == 400
    body = r.json()
    assert (body["accepted"], body["refused"], body["more_errors"]) == (1, 99, 99 - MAX_PROBLEMS)
    assert [e["item"] for e in body["errors"]] == list(range(1, MAX_PROBLEMS + 1))
    assert body["errors"][0]["error"] == 'type: Field required ("price", "news", "fx" or "notice")'
    assert published(client, s.stream_shards) == 1
    lines = "\n".join(["{broken"] * 30 + [json.dumps(QUOTE)])  # JSON Lines: the same bound
    body = post(url, lines).json()
    assert (body["refused"], len(body["errors"]), body["more_errors"]) == (30, MAX_PROBLEMS, 30 - MAX_PROBLEMS)
    few = post(url, json.dumps([{}, QUOTE])).json()
    assert "more_errors" not in few and few["refused"] == 1


def test_alerts_publish_prints_the_first_problems_and_counts_the_rest(settings: Settings, client: redis.Redis,
                                                                      tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(["{}"] * 50 + [json.dumps(QUOTE)]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(path)], env=env_for(settings),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.splitlines()
    assert err[:MAX_PROBLEMS] == [f"{path}:{n}: type: Field required (\"price\", \"news\", \"fx\" or \"notice\")"
                                  for n in range(1, MAX_PROBLEMS + 1)]
    assert err[MAX_PROBLEMS:] == [f"{path}: {50 - MAX_PROBLEMS} more invalid lines not shown (the first "
                                  f"{MAX_PROBLEMS} are)"]
    assert proc.stdout.strip() == "published 1 events, 50 invalid lines"


# --- one validation path --------------------------------------------------------------------------------------------


def test_a_too_deep_line_gets_the_same_reason_over_http_and_from_alerts_publish(
        server: tuple[str, Settings], client: redis.Redis, tmp_path: Path) -> None:
    url, s = server
    path = tmp_path / "deep.jsonl"
    path.write_text(DEEP + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(path)], env=env_for(s),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stderr.splitlines() == [f"{path}:1: nested more than {MAX_DEPTH} levels deep"]
    reason = proc.stderr.splitlines()[0].split(": ", 1)[1]
    for body in (DEEP, f"[{DEEP}]", f"[{json.dumps(QUOTE)}, {DEEP}]", f"{json.dumps(QUOTE)}\n{DEEP}\n"):
        r = post(url, body)
        assert r.status_code == 400, body
        [error] = r.json()["errors"]
        assert error["error"] == reason, body
    big = "[" + ", ".join([json.dumps(QUOTE)] * 5000 + [DEEP]) + "]"  # split by the scan, not decoded at once
    assert post(url, big).json()["errors"] == [{"item": 5001, "error": reason}]


# --- a large body: bounded memory, the event loop free --------------------------------------------------------------


def _memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def test_ten_mib_of_empty_objects_take_bounded_memory_and_healthz_answers(settings: Settings, client: redis.Redis,
                                                                         rules_dir: Path) -> None:
    """The body that took 2.35 GB and answered 278 MB: now its memory is a small multiple of it, its answer small,
    and /healthz answers while it is validated (the work runs off the event loop)."""
    write_rules(rules_dir, "rules: []\n")
    proc, url = start_http_worker(settings, TOKEN)
    try:
        body = b"[" + b",".join([b"{}"] * (10 * 1024 * 1024 // 3 - 1)) + b"]"
        assert len(body) <= 10 * 1024 * 1024
        before = _memory_kb(proc.pid, "VmRSS")
        answer: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: answer.append(
            httpx.post(f"{url}/events", content=body, headers=AUTH, timeout=300)))
        t0 = time.monotonic()
        sender.start()
        health: list[float] = []
        while sender.is_alive():
            t = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            health.append(time.monotonic() - t)
            time.sleep(0.2)
        sender.join()
        took = time.monotonic() - t0
        peak = _memory_kb(proc.pid, "VmHWM")
        [r] = answer
        assert r.status_code == 400
        assert len(r.content) < 10_000
        got = r.json()
        assert (got["accepted"], got["refused"], len(got["errors"])) == (0, len(body) // 3, MAX_PROBLEMS)
        assert len(health) >= 3  # it answered while the body was validated
        grown = (peak - before) * 1024
        print(f"10 MiB of {{}}: answered in {took:.1f} s; peak RSS grew {grown / 2**20:.0f} MiB "
              f"({grown / len(body):.1f}x the body); /healthz during it: {len(health)} answers, "
              f"slowest {max(health) * 1000:.0f} ms")
        assert grown < 8 * len(body), f"peak RSS grew by {grown / 2**20:.0f} MiB for a 10 MiB body"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


# --- slow clients ------------------------------------------------------------------------------------------------


def _trickle(port: int, data: bytes, limit: float) -> tuple[float, bytes]:
    """Send ``data`` a byte a second on a real socket until the server answers or closes; (seconds it took, what
    it answered). Gives up after ``limit`` seconds (the server never cut it off)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.settimeout(1.0)
        got = b""
        for i in range(len(data)):
            try:
                sock.sendall(data[i:i + 1])
            except OSError:  # closed by the server
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = None
            if chunk is not None:
                got += chunk
                break  # an answer, or b"" for a close
            if time.monotonic() - t0 > limit:
                break
        return time.monotonic() - t0, got


def test_a_client_trickling_its_headers_is_cut_off(server: tuple[str, Settings]) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    head = b"POST /events HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100  # never ends
    took, got = _trickle(port, head, limit=20)
    assert took < HEADERS_S + 2, f"still connected after {took:.1f} s"
    assert got.startswith(b"HTTP/1.1 408 ")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as idle:  # one that sends nothing at all
        t0 = time.monotonic()
        assert idle.recv(65536).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - t0 < HEADERS_S + 2
    assert post(url, json.dumps(QUOTE)).status_code == 202  # and the others are served
    with httpx.Client(headers=AUTH, timeout=10) as kept:  # a kept-alive connection's next request is timed anew
        for _ in range(3):
            assert kept.post(f"{url}/events", content=json.dumps(QUOTE)).status_code == 202
            time.sleep(HEADERS_S / 2)


def test_a_client_trickling_its_body_is_cut_off_and_nothing_is_published(server: tuple[str, Settings],
                                                                         client: redis.Redis) -> None:
    url, s = server
    port = int(url.rsplit(":", 1)[1])
    event = json.dumps(QUOTE).encode()
    head = (b"POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
            + b"\r\nContent-Length: " + str(len(event)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        t0 = time.monotonic()
        _, got = _trickle_on(sock, event, t0, limit=20)
    took = time.monotonic() - t0
    assert took < BODY_S + 2, f"still connected after {took:.1f} s"
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    assert published(client, s.stream_shards) == 0


def _trickle_on(sock: socket.socket, data: bytes, t0: float, limit: float) -> tuple[float, bytes]:
    sock.settimeout(1.0)
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
            return time.monotonic() - t0, sock.recv(65536)
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - t0, b""
        if time.monotonic() - t0 > limit:
            break
    return time.monotonic() - t0, b""


# --- Redis at maxmemory ---------------------------------------------------------------------------------------------


@pytest.fixture
def full_redis(settings: Settings) -> Iterator[tuple[redis.Redis, Settings]]:
    own = RedisServer()
    c = redis.Redis.from_url(own.url)
    s = settings.model_copy(update={"redis_url": SecretStr(own.url), "ingest_token": SecretStr(TOKEN)})
    yield c, s
    c.close()
    own.stop()


def test_redis_out_of_memory_is_a_503_naming_it_and_the_stored_items(full_redis: tuple[redis.Redis, Settings]) -> None:
    c, s = full_redis
    http, url = start(c, s)
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        assert post(url, json.dumps(QUOTE)).status_code == 202  # the streams and their groups exist
        c.config_set("maxmemory", 1)  # any write is refused (noeviction: OOM command not allowed)
        r = post(url, json.dumps([quote(d) for d in range(12, 20)]))
        assert r.status_code == 503
        body = r.json()
        assert body["cause"] == "redis out of memory" and "out of memory" in body["error"]
        assert (body["stored"], body["stored_items"]) == (0, [])

        # room for some of a batch: the items said to be stored are stored
        c.config_set("maxmemory", 0)
        used = int(c.info("memory")["used_memory"])
        c.config_set("maxmemory", used + 2_000_000)
        days = [quote(1 + i % 28) | {"source": f"src-{i}"} for i in range(20_000)]
        r = post(url, json.dumps(days))
        assert r.status_code == 503, r.text
        body = r.json()
        ranges = body["stored_items"]
        assert body["stored"] == sum(hi - lo + 1 for lo, hi in ranges) > 0
        assert ranges[0][0] == 1 and all(a[1] < b[0] for a, b in pairwise(ranges))
        c.config_set("maxmemory", 0)
        stored = {json.loads(f[b"w"])["source"] for sh in range(s.stream_shards)
                  for _, f in stream_entries(c, f"alerts:events:{sh}")}
        claimed = {f"src-{n - 1}" for lo, hi in ranges for n in range(lo, hi + 1)}
        assert claimed <= stored, sorted(claimed - stored)[:5]
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    finally:
        c.config_set("maxmemory", 0)
        http.stop()


def test_readyz_is_503_while_redis_refuses_writes(full_redis: tuple[redis.Redis, Settings]) -> None:
    c, s = full_redis
    http, url = start(c, s)
    try:
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        c.config_set("maxmemory", 1)
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["redis"] == "out of memory" and "maxmemory" in ready.json()["why"]
        assert str(c.connection_pool.connection_kwargs["port"]) not in ready.text
        c.config_set("maxmemory", 0)
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    finally:
        c.config_set("maxmemory", 0)
        http.stop()
