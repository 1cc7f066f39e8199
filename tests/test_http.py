"""POST /events over real HTTP: the service's HTTP app (Starlette on uvicorn) publishing through the one path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.errors import ConfigError
from alerts.settings import Settings
from tests.conftest import env_for
from tests.servers import free_port, wait_for, write_rules
from tests.streams import stream_entries
from workers.web.http import HttpServer, check_exposure, make_app

TOKEN = "s3cret-ingest-token"
QUOTE = {"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", "as_of": "2025-03-11",
         "source": "smm"}


def published(client: redis.Redis, shards: int) -> int:
    return sum(int(client.xlen(f"alerts:events:{s}")) for s in range(shards))


@pytest.fixture
def server(client: redis.Redis, settings: Settings) -> Iterator[tuple[str, Settings]]:
    s = settings.model_copy(update={"ingest_token": SecretStr(TOKEN), "ingest_max_bytes": 64 * 1024})
    http = HttpServer(make_app(client, s, builtin_catalog), s).start()
    url = f"http://127.0.0.1:{http.port}"
    wait_for(lambda: _answers(url), 10, "the HTTP app to start")
    yield url, s
    http.stop()


def _answers(url: str) -> bool:
    try:
        httpx.post(f"{url}/events", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def post(url: str, content: bytes | str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{url}/events", content=content, headers=headers, timeout=10)


def test_an_object_an_array_and_json_lines(server: tuple[str, Settings], client: redis.Redis) -> None:
    url, s = server
    r = post(url, json.dumps(QUOTE))
    assert (r.status_code, r.json()) == (202, {"accepted": 1})
    batch = [{**QUOTE, "as_of": f"2025-03-{d:02d}"} for d in (12, 13)]
    assert post(url, json.dumps(batch)).json() == {"accepted": 2}
    lines = "\n".join(json.dumps({**QUOTE, "as_of": f"2025-03-{d:02d}"}) for d in (14, 15, 16))
    assert post(url, lines).json() == {"accepted": 3}
    assert published(client, s.stream_shards) == 6
    assert post(url, json.dumps(QUOTE)).json() == {"accepted": 1}  # the same event again: the same id
    ids = {json.loads(f[b"w"])["id"] for sh in range(s.stream_shards)
           for _, f in stream_entries(client, f"alerts:events:{sh}")}
    assert len(ids) == 6


def test_bad_items_are_listed_and_the_valid_ones_accepted(server: tuple[str, Settings], client: redis.Redis) -> None:
    url, s = server
    r = post(url, json.dumps([QUOTE, {**QUOTE, "product": "unobtainium"}, {**QUOTE, "price": True},
                              {**QUOTE, "as_of": "2025-03-12"}]))
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 2 and [e["item"] for e in body["errors"]] == [2, 3]
    assert "unknown product" in body["errors"][0]["error"]
    r = post(url, json.dumps(QUOTE) + "\n{broken\n" + json.dumps({**QUOTE, "as_of": "2025-03-13"}) + "\n")
    assert r.status_code == 400 and r.json()["accepted"] == 2 and r.json()["errors"][0]["item"] == 2
    assert published(client, s.stream_shards) == 4


def test_a_token_is_required_and_compared(server: tuple[str, Settings], client: redis.Redis) -> None:
    url, s = server
    for token in (None, "wrong", TOKEN[:-1], TOKEN + "x"):
        r = post(url, json.dumps(QUOTE), token)
        assert r.status_code == 401 and TOKEN not in r.text
    r = httpx.post(f"{url}/events", content=json.dumps(QUOTE), headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    assert published(client, s.stream_shards) == 0


def test_a_body_above_the_limit_is_refused(server: tuple[str, Settings], client: redis.Redis) -> None:
    url, s = server
    big = json.dumps([QUOTE] * 1000)  # ~120 kB, the limit is 64 kB
    assert post(url, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(100):
            yield b" " * 1024

    r = httpx.post(f"{url}/events", content=chunks(), headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 413
    assert published(client, s.stream_shards) == 0


def test_no_token_no_listening_beyond_loopback(settings: Settings) -> None:
    check_exposure(settings)  # 127.0.0.1 without a token: fine
    with pytest.raises(ConfigError, match="ALERTS_INGEST_TOKEN is not set"):
        check_exposure(settings.model_copy(update={"http_host": "0.0.0.0"}))
    check_exposure(settings.model_copy(update={"http_host": "0.0.0.0", "ingest_token": SecretStr(TOKEN)}))


def test_a_taken_port_is_one_clear_error(client: redis.Redis, settings: Settings) -> None:
    first = HttpServer(make_app(client, settings, builtin_catalog), settings)
    taken = settings.model_copy(update={"http_port": first.port})
    try:
        with pytest.raises(ConfigError, match=f"cannot serve HTTP on 127.0.0.1:{first.port}"):
            HttpServer(make_app(client, taken, builtin_catalog), taken)
    finally:
        first.sock.close()


def start_http_worker(settings: Settings, token: str = TOKEN) -> tuple[subprocess.Popen[str], str]:
    """A real ``alerts worker --role http`` process with ``token`` (stderr piped), and its URL once it answers."""
    port = free_port()
    env = env_for(settings, ALERTS_HTTP_PORT=str(port), ALERTS_INGEST_TOKEN=token)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "http"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 30, "the worker's HTTP app")
    except BaseException:
        proc.kill()
        proc.communicate(timeout=20)
        raise
    return proc, url


def test_the_http_role_of_a_worker(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, "rules: []\n")
    proc, url = start_http_worker(settings)
    try:
        assert post(url, json.dumps(QUOTE)).json() == {"accepted": 1}
        assert published(client, settings.stream_shards) == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and TOKEN not in err, err
