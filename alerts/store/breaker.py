"""The circuit breaker: a rule that fires more than ``breaker_max_alerts`` times within
``breaker_window_seconds`` is paused, and one notice goes to its targets; ``alerts rules resume ID``
resumes it. This protects a channel from a broken feed or a rule written the wrong way round.

Counting uses the clock of the evaluating process (how fast alerts are *sent* is what matters), so
it lives here, at the Redis edge, not in the pure evaluation: backtests report every alert.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import redis

from alerts.model import Alert, alert_id
from alerts.store.keys import Keys

#: Seconds per counting bucket: counts are kept per rule per minute, in one hash per minute.
BUCKET = 60


@dataclass
class BreakerVerdict:
    alerts: list[Alert]  # what goes out: alerts of running rules, and one notice per newly paused rule
    counted: Counter[str] = field(default_factory=Counter)  # rule id -> alerts sent now
    paused: dict[str, dict[str, float]] = field(default_factory=dict)  # rule id -> pause record
    held: int = 0  # alerts not sent because their rule is paused


def _buckets(now: float, window: float) -> list[int]:
    last = int(now // BUCKET)
    return list(range(last - math.ceil(window / BUCKET) + 1, last + 1))


def apply_breaker(client: redis.Redis, keys: Keys, alerts: list[Alert], limit: int, window: float,
                  now: float | None = None) -> BreakerVerdict:
    """Decide which alerts go out. Reads Redis (one round trip); ``record`` writes the verdict."""
    if not alerts:
        return BreakerVerdict([])
    now = time.time() if now is None else now
    rules = sorted({a.rule_id for a in alerts})
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.paused, rules)
    for b in _buckets(now, window):
        pipe.hmget(keys.breaker(str(b)), rules)
    replies = pipe.execute()
    paused = {r for r, v in zip(rules, replies[0], strict=True) if v is not None}
    counts: Counter[str] = Counter()
    for bucket in replies[1:]:
        for r, v in zip(rules, bucket, strict=True):
            if v is not None:
                counts[r] += int(v)
    verdict = BreakerVerdict([])
    for a in alerts:
        if a.rule_id in paused:
            verdict.held += 1
            continue
        counts[a.rule_id] += 1
        if counts[a.rule_id] > limit:
            paused.add(a.rule_id)
            verdict.paused[a.rule_id] = {"at": now, "count": counts[a.rule_id] - 1}
            verdict.alerts.append(_notice(a, limit, window, now))
            verdict.held += 1
            continue
        verdict.alerts.append(a)
        verdict.counted[a.rule_id] += 1
    return verdict


def _notice(a: Alert, limit: int, window: float, now: float) -> Alert:
    text = (f"rule {a.rule_id} fired more than {limit} times in {window / 60:g} minutes and is paused; "
            f"no more alerts from it until someone runs: alerts rules resume {a.rule_id}")
    return replace(a, id=alert_id(a.rule_id, "paused", now), kind="notice", condition="paused",
                   severity="critical", text=text, status="paused")


def record(pipe: redis.client.Pipeline, keys: Keys, verdict: BreakerVerdict, window: float,
           now: float | None = None) -> None:
    """Write a verdict into a transaction (the evaluator's commit)."""
    now = time.time() if now is None else now
    if verdict.counted:
        key = keys.breaker(str(int(now // BUCKET)))
        for rule, n in verdict.counted.items():
            pipe.hincrby(key, rule, n)
        pipe.expire(key, int(window) + 2 * BUCKET)
    for rule, info in verdict.paused.items():
        pipe.hset(keys.paused, rule, json.dumps(info))


def resume(client: redis.Redis, keys: Keys, rule_id: str, window: float = 600.0) -> bool:
    """Resume a paused rule, with its count started afresh. False when it was not paused."""
    pipe = client.pipeline(transaction=True)
    pipe.hdel(keys.paused, rule_id)
    for b in _buckets(time.time(), window):
        pipe.hdel(keys.breaker(str(b)), rule_id)
    return bool(pipe.execute()[0])


def paused_rules(client: redis.Redis, keys: Keys) -> dict[str, dict[str, float]]:
    raw = client.hgetall(keys.paused)
    return {k.decode(): json.loads(v) for k, v in raw.items()}  # type: ignore[union-attr]
