"""Stream replies with their types, for the tests. redis-py types XRANGE replies loosely (bytes or str,
maybe None); the suite's clients answer bytes, as the code under test reads them."""

from __future__ import annotations

from typing import cast

import redis

from alerts.store.streams import StreamEntries


def stream_entries(client: redis.Redis, key: str, start: str = "-", end: str = "+") -> StreamEntries:
    """XRANGE: [(entry id, fields)] of ``key`` from ``start`` to ``end``, in order."""
    return cast(StreamEntries, client.xrange(key, start, end) or [])
