"""The circuit breaker in Redis: the counts and pauses that ``alerts.evaluate.breaker`` decides on.

Keys: ``P:breaker:{minute}`` (hash: rule id -> alerts sent that minute) and ``P:paused`` (hash: rule
id -> when and after how many alerts it was paused).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable

import redis

from alerts.evaluate.breaker import BUCKET, BreakerVerdict, buckets, decide
from alerts.model import Alert
from alerts.store.keys import Keys

#: HINCRBY of every (rule, count) pair in ARGV after the first, then EXPIRE the hash by ARGV[1] seconds.
_COUNT = """
for i = 2, #ARGV, 2 do redis.call('hincrby', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('expire', KEYS[1], ARGV[1])
"""


def apply_breaker(client: redis.Redis, keys: Keys, alerts: Iterable[Alert], limit: int, window: float,
                  now: float | None = None) -> BreakerVerdict:
    """Decide which alerts go out. Reads Redis (one round trip); ``record`` writes the verdict."""
    alerts = list(alerts)
    if not alerts:
        return BreakerVerdict([])
    now = time.time() if now is None else now
    rules = sorted({a.rule_id for a in alerts})
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.paused, rules)
    for b in buckets(now, window):
        pipe.hmget(keys.breaker(str(b)), rules)
    paused_reply, *bucket_replies = pipe.execute()
    paused = {r for r, v in zip(rules, paused_reply, strict=True) if v is not None}
    counts: Counter[str] = Counter()
    for bucket in bucket_replies:
        for r, v in zip(rules, bucket, strict=True):
            if v is not None:
                counts[r] += int(v)
    return decide(alerts, paused, counts, limit, window, now)


def record(pipe: redis.client.Pipeline, keys: Keys, verdict: BreakerVerdict, window: float,
           now: float | None = None) -> None:
    """Write a verdict into a transaction (the commit of the alerts it lets through)."""
    now = time.time() if now is None else now
    if verdict.counted:  # one command however many rules fired (thousands, with large rule sets)
        args = [x for rule, n in verdict.counted.items() for x in (rule, n)]
        pipe.eval(_COUNT, 1, keys.breaker(str(int(now // BUCKET))), int(window) + 2 * BUCKET, *args)
    for rule, info in verdict.paused.items():
        pipe.hset(keys.paused, rule, json.dumps(info))


def resume(client: redis.Redis, keys: Keys, rule_id: str, window: float = 600.0) -> bool:
    """Resume a paused rule, with its count started afresh. False when it was not paused."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(keys.paused, rule_id)
    for b in buckets(time.time(), window):
        pipe.hdel(keys.breaker(str(b)), rule_id)
    return bool(pipe.execute()[0])


def paused_rules(client: redis.Redis, keys: Keys) -> dict[str, dict[str, float]]:
    raw = client.hgetall(keys.paused)
    return {k.decode(): json.loads(v) for k, v in raw.items()}  # type: ignore[union-attr]
