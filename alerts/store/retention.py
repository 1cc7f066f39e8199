"""Retention of what grows with every event and alert, so Redis memory stays bounded (the scheduler runs it):

- the event streams and the alert stream: by arrival time (``ALERTS_EVENT_RETENTION_DAYS``,
  ``ALERTS_ALERT_RETENTION_DAYS``), never past an entry a consumer group has not read or acknowledged
  (``alerts.store.streams.trim_stream``); the streams of set-aside entries (invalid events, undecodable alerts)
  by arrival time alone, since nothing reads them but people;
- the quote history (``P:history:{product}:{source}``) and the news history: by event time, relative to the
  newest entry of each series (imported history of past years is kept as long as live history), keeping
  ``ALERTS_QUOTE_RETENTION_DAYS`` or the longest change window of any rule, whichever is longer;
- deliveries failed for good (``alerts failed``): as long as the alerts (``ALERTS_ALERT_RETENTION_DAYS``);
- silences (``alerts silence``): purged ``ALERTS_ALERT_RETENTION_DAYS`` after they ended.

Delivery markers, outcomes, article keys and source ids carry their own TTLs; rq's results and failed jobs
are given TTLs when enqueued (``workers.roles.dispatch``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import cast

import redis

from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore
from alerts.store.streams import trim_stream

#: Keys looked at per SCAN round trip.
SCAN_COUNT = 1000
#: Margin added to the longest change window when it decides what to keep (seconds): a window's first quote
#: may be a little older than the window (a weekend, a holiday).
WINDOW_MARGIN = 7 * 86400.0


@dataclass
class Trimmed:
    quotes: int = 0
    news: int = 0
    failures: int = 0
    set_aside: int = 0
    silences: int = 0


def quote_keep_seconds(retention_days: float, max_window: float) -> float:
    """How far back (event time) the quote history is kept: the setting, or the longest window plus a margin."""
    return max(retention_days * 86400.0, max_window + WINDOW_MARGIN if max_window > 0 else 0.0)


def _trim_by_newest(client: redis.Redis, key: bytes | str, keep: float) -> int:
    newest = cast(list[tuple[bytes, float]], client.zrange(key, -1, -1, withscores=True))
    if not newest:
        return 0
    return int(client.zremrangebyscore(key, "-inf", f"({newest[0][1] - keep!r}"))


def trim_histories(client: redis.Redis, keys: Keys, keep_seconds: float) -> Trimmed:
    """Quote and news history older (in event time) than ``keep_seconds`` before each series' newest entry."""
    out = Trimmed()
    for key in client.scan_iter(match=f"{keys.prefix}:history:*", count=SCAN_COUNT):
        out.quotes += _trim_by_newest(client, key, keep_seconds)
    out.news = _trim_by_newest(client, keys.news_history, keep_seconds)
    return out


def trim_failures(client: redis.Redis, keys: Keys, max_age_seconds: float, now: float | None = None) -> int:
    now = time.time() if now is None else now
    old = []
    for fid, raw in cast(dict[bytes, bytes], client.hgetall(keys.failed)).items():
        try:
            at = float(json.loads(raw)["at"])
        except (ValueError, KeyError, TypeError):
            continue
        if now - at > max_age_seconds:
            old.append(fid)
    return int(client.hdel(keys.failed, *old)) if old else 0


def trim_set_aside(client: redis.Redis, keys: Keys, max_age_seconds: float, now: float | None = None) -> int:
    """Invalid events and undecodable alerts older than ``max_age_seconds`` (by arrival)."""
    now = time.time() if now is None else now
    minid = f"{int((now - max_age_seconds) * 1000)}-0"
    return sum(int(client.xtrim(stream, minid=minid, approximate=False)) for stream in (keys.invalid,
                                                                                          keys.dead_alerts))


def apply_retention(client: redis.Redis, keys: Keys, *, shards: int, event_days: float, alert_days: float,
                    quote_days: float, max_window: float) -> Trimmed:
    """Everything above, once: what the scheduler's retention job runs."""
    for shard in range(shards):  # news and fx share shard 0 with some products
        trim_stream(client, keys.events(shard), event_days * 86400)
    trim_stream(client, keys.alerts, alert_days * 86400)
    out = trim_histories(client, keys, quote_keep_seconds(quote_days, max_window))
    out.failures = trim_failures(client, keys, alert_days * 86400)
    out.set_aside = trim_set_aside(client, keys, alert_days * 86400)
    out.silences = SilenceStore(client, keys).purge(time.time() - alert_days * 86400)
    return out
