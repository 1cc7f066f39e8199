"""The stored history of quotes and articles: replayed by backtests, summarised for rule checks."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import cast

import redis

from alerts.rules.checks import PriceStats
from alerts.store.keys import Keys


def price_stats(client: redis.Redis, keys: Keys) -> dict[str, PriceStats]:
    """Per product: lowest and highest price ever stored, median time between quotes."""
    prefix = keys.history("", "")[:-1]
    prices: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        pkey = key.decode()[len(prefix):].split(":", 1)[0]
        for member, score in cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True)):
            prices.setdefault(pkey, []).append(float(json.loads(member)[1]))
            times.setdefault(pkey, []).append(score)
    out = {}
    for pkey, ps in prices.items():
        ts = sorted(set(times[pkey]))
        gaps = sorted(b - a for a, b in pairwise(ts))
        out[pkey] = PriceStats(min(ps), max(ps), gaps[len(gaps) // 2] if gaps else 86400.0, len(ps))
    return out


