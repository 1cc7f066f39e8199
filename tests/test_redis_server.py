"""The private redis-server: shared by every alerts command, stopped after its last user only."""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from alerts.store.server import PrivateRedis
from tests.servers import wait_for


def test_a_one_shot_command_does_not_stop_the_server_a_service_uses(tmp_path: Path) -> None:
    private = PrivateRedis(tmp_path / "data")
    with private.session():  # the service
        with PrivateRedis(tmp_path / "data").session():  # `alerts publish` meanwhile
            pass
        assert private.running()
        redis.Redis(unix_socket_path=str(private.socket)).set("k", "v")
    assert not private.running()  # the last user stopped it ...
    with private.session():
        assert redis.Redis(unix_socket_path=str(private.socket)).get("k") == b"v"  # ... and the data stayed


def test_concurrent_starts_start_one_server(tmp_path: Path) -> None:
    started: list[int] = []
    barrier = threading.Barrier(2)
    release = threading.Event()

    def user() -> None:
        p = PrivateRedis(tmp_path / "data")
        barrier.wait(10)
        with p.session():
            started.append(int(p.pidfile_pid()))
            release.wait(10)

    threads = [threading.Thread(target=user) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(started) == 2, 30, "both users to be in a session")
    finally:
        release.set()
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert started[0] == started[1]
    assert not PrivateRedis(tmp_path / "data").running()
