from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.settings import Settings
from tests.servers import RedisServer, SlackServer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's ALERTS_* settings or .env."""
    for k in list(os.environ):
        if k.startswith("ALERTS_"):
            monkeypatch.delenv(k)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    s = SlackServer().start()
    yield s
    s.stop()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    return d


@pytest.fixture
def settings(redis_server: RedisServer, rules_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=SecretStr(redis_server.url),
        rules_dir=rules_dir,
        data_dir=tmp_path / "data",
        stream_shards=4,
        block_ms=50,
        lease_seconds=3,
        claim_idle_seconds=1,
        breaker_max_alerts=1_000_000,  # tests of the circuit breaker lower it; others fire thousands of alerts
        http_port=0,  # the HTTP app, when a test runs it, on any free port
    )


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that should see the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    assert settings.redis_url is not None
    env.update({
        "ALERTS_REDIS_URL": settings.redis_url.get_secret_value(),
        "ALERTS_RULES_DIR": str(settings.rules_dir),
        "ALERTS_DATA_DIR": str(settings.data_dir),
        "ALERTS_STREAM_SHARDS": str(settings.stream_shards),
        "ALERTS_BLOCK_MS": str(settings.block_ms),
        "ALERTS_LEASE_SECONDS": str(settings.lease_seconds),
        "ALERTS_CLAIM_IDLE_SECONDS": str(settings.claim_idle_seconds),
        "ALERTS_KEY_PREFIX": settings.key_prefix,
        "ALERTS_BREAKER_MAX_ALERTS": str(settings.breaker_max_alerts),
        "ALERTS_HTTP_PORT": str(settings.http_port),
    })
    env.update(extra)
    return env
