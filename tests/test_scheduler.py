"""Housekeeping: streams are trimmed by age and never lose an entry a consumer group still needs."""

from __future__ import annotations

import time

import redis

from alerts.store.streams import read_group, trim_stream
from tests.streams import stream_entries

DAY_MS = 86_400_000


def test_trim_keeps_unread_and_pending_entries(client: redis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    old = now_ms - 30 * DAY_MS
    for i in range(6):
        client.xadd("s", {"n": i}, id=f"{old + i}-0")
    client.xadd("s", {"n": "new"}, id=f"{now_ms}-0")
    client.xgroup_create("s", "g", id="0")
    ((_, read),) = read_group(client, "g", "c", {"s": ">"}, count=4)  # entries 0-3 delivered
    ids = [mid for mid, _ in read]
    client.xack("s", "g", ids[0], ids[1], ids[3])  # entry 2 stays pending
    trim_stream(client, "s", max_age_s=7 * 86_400)
    left = [f[b"n"] for _, f in stream_entries(client, "s")]
    assert left == [b"2", b"3", b"4", b"5", b"new"]  # 2 pending, 4 and 5 never read


def test_trim_removes_old_acknowledged_entries(client: redis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    for i in range(3):
        client.xadd("s", {"n": i}, id=f"{now_ms - 30 * DAY_MS + i}-0")
    client.xadd("s", {"n": "new"}, id=f"{now_ms}-0")
    client.xgroup_create("s", "g", id="0")
    ((_, read),) = read_group(client, "g", "c", {"s": ">"}, count=100)
    for mid, _ in read:
        client.xack("s", "g", mid)
    trim_stream(client, "s", max_age_s=7 * 86_400)
    assert [f[b"n"] for _, f in stream_entries(client, "s")] == [b"new"]


def test_a_stream_nobody_reads_yet_is_left_alone(client: redis.Redis) -> None:
    client.xadd("s", {"n": 1}, id="1-0")
    trim_stream(client, "s", max_age_s=1)
    assert client.xlen("s") == 1
