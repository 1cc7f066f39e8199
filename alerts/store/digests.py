"""Digests in Redis: each digest's queue of alerts, the state of its last send (slot, time, prices shown),
and the lock that keeps one sender at a time.

Keys: ``P:outbox:digest:{name}`` (list of alerts, JSON), ``P:digest:{name}:state`` (JSON),
``P:digest:{name}:lock``.
"""

from __future__ import annotations

import json
from typing import Any, cast

import redis

from alerts.model import QuoteState
from alerts.store.keys import Keys
from alerts.store.state import decode_state


class DigestStore:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    def queued(self, name: str) -> list[dict[str, Any]]:
        """The alerts waiting for digest ``name``, oldest first (as ``Alert.to_dict``)."""
        return [json.loads(x) for x in cast(list[bytes], self.client.lrange(self.keys.outbox("digest", name), 0, -1))]

    def state(self, name: str) -> dict[str, Any]:
        """What the last send recorded: ``slot``, ``sent_at``, ``count``, ``prices`` (product key -> price)."""
        raw = self.client.get(self.keys.digest_state(name))
        return json.loads(raw) if raw else {}  # type: ignore[arg-type]

    def lock(self, name: str, ttl: int) -> bool:
        """Become the one sender of digest ``name`` for ``ttl`` seconds; False when another sender is."""
        return bool(self.client.set(self.keys.digest_lock(name), 1, nx=True, ex=ttl))

    def unlock(self, name: str) -> None:
        self.client.delete(self.keys.digest_lock(name))

    def sent(self, name: str, count: int, state: dict[str, Any]) -> None:
        """One transaction: the first ``count`` queued alerts removed (what arrived meanwhile stays for the
        next digest), the new state recorded, the lock released."""
        pipe = self.client.pipeline(transaction=True)
        pipe.ltrim(self.keys.outbox("digest", name), count, -1)
        pipe.set(self.keys.digest_state(name), json.dumps(state))
        pipe.delete(self.keys.digest_lock(name))
        pipe.execute()

    def latest_quote(self, product_key: str) -> QuoteState | None:
        """The newest quote of a product, whatever its source."""
        st = decode_state(cast(dict[bytes, bytes], self.client.hgetall(self.keys.state(product_key))))
        if st is None or not st.quotes:
            return None
        return max(st.quotes.values(), key=lambda q: q.as_of)

    def quotes_since(self, product_key: str, since: float) -> list[tuple[float, float]]:
        """(quote time, price) of every quote of a product since ``since``, from every source, in time order."""
        points: list[tuple[float, float]] = []
        for key in self.client.scan_iter(match=f"{self.keys.history(product_key, '')}*"):
            for member, score in cast(list[tuple[bytes, float]], self.client.zrangebyscore(
                    key, since, "+inf", withscores=True)):
                points.append((score, float(json.loads(member)[1])))
        return sorted(points)
