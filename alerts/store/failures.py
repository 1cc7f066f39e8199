"""Failed deliveries, kept for people: ``alerts failed`` lists them, ``alerts failed retry`` queues
them for delivery again (under the same id, with a count of the retries by hand). A delivery fails for
good when the channel refuses it (bad token, unknown channel) or when every retry is used up."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis

from alerts.store.keys import Keys


def record(client: redis.Redis, keys: Keys, failure_id: str, alert: dict[str, Any], target: str, reason: str,
           permanent: bool, retries: int = 0) -> bool:
    """Keep a failure; False when this delivery's failure was already kept (the first reason stays).
    ``retries``: how many times ``alerts failed retry`` queued this delivery again before."""
    doc = {"id": failure_id, "at": time.time(), "target": target, "alert": alert, "reason": reason,
           "permanent": permanent, **({"retries": retries} if retries else {})}
    return bool(client.hsetnx(keys.failed, failure_id, json.dumps(doc, ensure_ascii=False)))


def listing(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    raw = cast(dict[bytes, bytes], client.hgetall(keys.failed))
    return sorted((json.loads(v) for v in raw.values()), key=lambda d: d["at"])


def take(client: redis.Redis, keys: Keys, failure_id: str) -> dict[str, Any] | None:
    """Remove a failure and return it (to send it again); None when there is no such failure."""
    pipe = client.pipeline(transaction=True)
    pipe.hget(keys.failed, failure_id)
    pipe.hdel(keys.failed, failure_id)
    raw = pipe.execute()[0]
    return json.loads(raw) if raw else None
