"""What acting on alerts from Slack keeps in Redis: signatures already seen (a replayed request is refused), Socket
Mode envelopes already handled (Slack's retry of one is not done twice), and what was done to each alert
(acknowledged, snoozed, silenced: by whom, when), which ``alerts history`` shows.

Keys: ``P:slack:seen:{signature}`` (SET NX, expiring when the signature's timestamp leaves Slack's 5-minute
window), ``P:slack:envelope:{envelope_id}`` (SET NX, an hour) and ``P:actions:{alert}`` (a list of JSON records,
kept as long as the delivery outcomes).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any, cast

import redis

from alerts.store.delivery import OUTCOME_TTL
from alerts.store.keys import Keys

#: Seconds either side of now a signed request's timestamp may be (Slack's rule).
WINDOW_SECONDS = 300


def first_use(client: redis.Redis, keys: Keys, signature: str, timestamp: int, now: float | None = None) -> bool:
    """True the first time a (valid) signature is seen; False when it was seen before: a replay. Remembered until
    its timestamp is out of the window (at most 10 minutes: the window is 5 minutes either side)."""
    now = time.time() if now is None else now
    ttl = max(1, math.ceil(timestamp + WINDOW_SECONDS - now) + 1)
    return bool(client.set(f"{keys.prefix}:slack:seen:{signature}", 1, nx=True, ex=ttl))


#: Seconds a Socket Mode envelope id is remembered: Slack sends an envelope again when it was not acknowledged
#: within seconds, perhaps on another of the app's connections (another process); an hour covers its retries.
ENVELOPE_TTL = 3600


def first_envelope(client: redis.Redis, keys: Keys, envelope_id: str) -> bool:
    """True the first time a Socket Mode envelope is seen by any process; False for Slack's retry of one handled."""
    return bool(client.set(f"{keys.prefix}:slack:envelope:{envelope_id}", 1, nx=True, ex=ENVELOPE_TTL))


def actions_key(keys: Keys, alert_id: str) -> str:
    return f"{keys.prefix}:actions:{alert_id}"


class ActionLog:
    """What people did to alerts from Slack, per alert id, oldest first."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def record(self, alert_id: str, action: str, by: str, detail: str | None = None,
               at: float | None = None) -> dict[str, Any]:
        entry = {"action": action, "by": by, "at": time.time() if at is None else at, "detail": detail}
        key = actions_key(self.keys, alert_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, json.dumps(entry, ensure_ascii=False))
        pipe.expire(key, OUTCOME_TTL)
        pipe.execute()
        return entry

    def of(self, alert_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """alert id -> its actions, oldest first (one pipelined read)."""
        if not alert_ids:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for aid in alert_ids:
            pipe.lrange(actions_key(self.keys, aid), 0, -1)
        out: dict[str, list[dict[str, Any]]] = {}
        for aid, raw in zip(alert_ids, cast(list[list[bytes]], pipe.execute()), strict=True):
            got = []
            for item in raw:
                with contextlib.suppress(ValueError):
                    got.append(json.loads(item))
            out[aid] = got
        return out
