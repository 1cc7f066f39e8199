"""Pacing deliveries per channel: Slack takes about one message per second per channel, with short
bursts. A token bucket in Redis, shared by every dispatch worker, hands out send slots; a message
that finds no token *reserves* the next free slot and is rescheduled for it, so no worker ever
sleeps and waiting messages go out in order, one per interval.
"""

from __future__ import annotations

import time

import redis

_RESERVE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('hmget', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate) - 1
redis.call('hset', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('expire', KEYS[1], 3600)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


def reserve(client: redis.Redis, key: str, rate: float, burst: int, now: float | None = None) -> float:
    """Take a send slot for one message: ``rate`` messages per second on average, ``burst`` at once.
    Returns 0 to send now, else the seconds until the reserved slot."""
    now = time.time() if now is None else now
    return float(client.eval(_RESERVE, 1, key, rate, burst, now))  # type: ignore[arg-type]
