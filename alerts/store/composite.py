"""The event-time stage in Redis (``alerts.evaluate.eventtime``): its inputs, written by the evaluators'
batches, and what the stage reads and commits.

Keys: ``P:legs:{product}`` (quotes of spread legs, scored by quote time), ``P:parts:{key}`` (times an
all_of part held, scored by event time), ``P:watermarks`` (leg product or ``news`` -> latest event time
committed), ``P:firstseen`` (spread key -> time of its first leg quote: where a new spread starts),
``P:shared:{key}`` (each rule's state), ``P:lease:composite`` (the one stage running).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from alerts.evaluate.breaker import BreakerVerdict
from alerts.evaluate.eventtime import LegPoint, PartFact, State, decode_fact, decode_point, encode_input, latest
from alerts.evaluate.session import Session
from alerts.store.keys import Keys
from alerts.store.streams import append_alerts

#: Sets each (field, value) pair of ARGV in the hash KEYS[1] unless it holds a larger value already.
_MAX = """
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('hget', KEYS[1], ARGV[i]))
  if not current or current < tonumber(ARGV[i + 1]) then redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
"""
#: Sets each (field, value) pair of ARGV in the hash KEYS[1] unless it holds a smaller value already.
_MIN = """
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('hget', KEYS[1], ARGV[i]))
  if not current or current > tonumber(ARGV[i + 1]) then redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
"""
#: Points read, at most, to find a leg's latest quote before a new rule's start.
LATEST_SCAN = 20


def stage_inputs(pipe: redis.client.Pipeline, keys: Keys, s: Session) -> None:
    """Queue, in a batch's transaction, the inputs its session recorded for the event-time stage."""
    legs: dict[str, dict[bytes, float]] = {}
    for product_key, point in s.legs:
        legs.setdefault(product_key, {})[encode_input(point)] = point.t
    for product_key, members in legs.items():
        pipe.zadd(keys.legs(product_key), members)  # type: ignore[arg-type]
    facts: dict[str, dict[bytes, float]] = {}
    for state_key, fact in s.facts:
        facts.setdefault(state_key, {})[encode_input(fact)] = fact.t
    for state_key, members in facts.items():
        pipe.zadd(keys.parts(state_key), members)  # type: ignore[arg-type]
    if s.first_seen:  # the earliest: a rule on several vendors' quotes may see a later one first
        pipe.eval(_MIN, 1, keys.first_seen, *[x for k, t in s.first_seen.items() for x in (k, repr(t))])
    if s.watermarks:
        pipe.eval(_MAX, 1, keys.watermarks, *[x for k, t in s.watermarks.items() for x in (k, repr(t))])


@dataclass
class StageRead:
    """What one step of the stage starts from."""

    states: dict[str, State | None] = field(default_factory=dict)  # rule key -> state (None: never run)
    watermarks: dict[str, float] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)


def read_stage(client: redis.Redis, keys: Keys, state_keys: Iterable[str]) -> StageRead:
    names = list(state_keys)
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.watermarks)
    pipe.hgetall(keys.first_seen)
    for k in names:
        pipe.get(keys.shared(k))
    watermarks, first_seen, *states = pipe.execute()
    return StageRead({k: _state(v) for k, v in zip(names, states, strict=True)},
                     {k.decode(): float(v) for k, v in watermarks.items()},
                     {k.decode(): float(v) for k, v in first_seen.items()})


Inputs = tuple[dict[str, list[LegPoint]], dict[str, list[PartFact]], dict[tuple[str, float], LegPoint | None]]


def _state(raw: bytes | None) -> State | None:
    """A rule's state; None for none, or for one written before event time (no cursor): such a rule
    starts again from its next inputs."""
    if not raw:
        return None
    st = json.loads(raw)
    return st if isinstance(st, dict) and "cursor" in st else None


def read_inputs(client: redis.Redis, keys: Keys, legs_after: dict[str, float], parts_after: dict[str, float],
                latest_before: Iterable[tuple[str, float]]) -> Inputs:
    """One round trip: each leg's points after a time, each all_of's facts after a time, and the latest
    point of a leg before a time (where a new rule starts)."""
    before = list(latest_before)
    pipe = client.pipeline(transaction=False)
    for product_key, after in legs_after.items():
        pipe.zrangebyscore(keys.legs(product_key), f"({after}" if math.isfinite(after) else "-inf", "+inf")
    for state_key, after in parts_after.items():
        pipe.zrangebyscore(keys.parts(state_key), f"({after}" if math.isfinite(after) else "-inf", "+inf")
    for product_key, t in before:
        pipe.zrevrangebyscore(keys.legs(product_key), f"({t}", "-inf", start=0, num=LATEST_SCAN)
    replies = iter(pipe.execute())
    points = {pk: [decode_point(m) for m in next(replies)] for pk in legs_after}
    facts = {k: [decode_fact(m) for m in next(replies)] for k in parts_after}
    found = {req: latest([decode_point(m) for m in next(replies)]) for req in before}
    return points, facts, found


def commit_stage(client: redis.Redis, keys: Keys, token: bytes, states: dict[str, State], verdict: BreakerVerdict,
                 breaker_window: float, processed: dict[str, float]) -> bool:
    """Write the rules' new states and the alerts, fenced by the stage's lease; drop the part facts up to
    each all_of's cursor (``processed``). False (nothing written) when the lease is not ours."""
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(keys.composite_lease)
        if pipe.get(keys.composite_lease) != token:
            return False
        pipe.multi()
        for state_key, st in states.items():
            pipe.set(keys.shared(state_key), json.dumps(st, separators=(",", ":")))
        for state_key, cursor in processed.items():
            pipe.zremrangebyscore(keys.parts(state_key), "-inf", cursor)
        append_alerts(pipe, keys, verdict, breaker_window)
        try:
            pipe.execute()
        except redis.WatchError:
            return False
    return True


def trim_legs(client: redis.Redis, keys: Keys, keep_from: dict[str, float]) -> None:
    """Drop leg points older than the given time per product (the oldest quote any rule still needs)."""
    pipe = client.pipeline(transaction=False)
    for product_key, t in keep_from.items():
        if math.isfinite(t):
            pipe.zremrangebyscore(keys.legs(product_key), "-inf", f"({t}")
    pipe.execute()
