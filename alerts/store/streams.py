"""Streams: which shard an event goes to, the shard count every process must agree on, reading a
consumer group with typed replies, and the entries of the alert stream."""

from __future__ import annotations

import json
import zlib
from typing import Any, cast

import redis

from alerts.errors import ConfigError
from alerts.events import Event, PriceEvent
from alerts.store.keys import Keys

#: News all go to this shard: one owner evaluates them in order, so de-duplication and cooldowns
#: of news rules never race. News is a trickle next to prices.
NEWS_SHARD = 0


def shard_of(event: Event, shards: int) -> int:
    """Events of one product always land on the same shard; news on NEWS_SHARD."""
    if isinstance(event, PriceEvent):
        return zlib.crc32(event.product_key.encode()) % shards
    return NEWS_SHARD


def check_shard_count(client: redis.Redis, keys: Keys, shards: int) -> None:
    """Every publisher and evaluator must use the same ALERTS_STREAM_SHARDS; the first one fixes it."""
    client.hsetnx(keys.config, "stream_shards", shards)
    fixed = int(client.hget(keys.config, "stream_shards") or shards)
    if fixed != shards:
        raise ConfigError(f"ALERTS_STREAM_SHARDS is {shards} here but {fixed} in Redis (prefix {keys.prefix!r}); "
                          "every process of a deployment must use the same value")


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def read_group(client: redis.Redis, group: str, consumer: str, streams: dict[str, str], count: int,
               block: int | None = None) -> list[tuple[bytes, StreamEntries]]:
    """XREADGROUP with the reply typed: [(stream name, [(entry id, fields)])]."""
    reply = client.xreadgroup(group, consumer, streams, count=count, block=block)  # type: ignore[arg-type]
    return cast(list[tuple[bytes, StreamEntries]], reply or [])


#: Alerts per entry of the alert stream: one XADD per hundred alerts, not one per alert (hot path).
ALERTS_PER_ENTRY = 100


def alert_entries(alerts: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Alert stream entries (``{"alerts": JSON list}``) holding these alerts, in order."""
    return [{"alerts": json.dumps(alerts[i:i + ALERTS_PER_ENTRY], ensure_ascii=False, separators=(",", ":"))}
            for i in range(0, len(alerts), ALERTS_PER_ENTRY)]


def read_alerts(fields: dict[bytes, bytes]) -> list[Any]:
    """The alerts of one alert stream entry. Raises ValueError when it holds none."""
    try:
        value = json.loads(fields[b"alerts"])
    except (KeyError, ValueError):
        raise ValueError("not an alert entry") from None
    if not isinstance(value, list):
        raise ValueError("not an alert entry")
    return value


