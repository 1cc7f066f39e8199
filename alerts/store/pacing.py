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


# KEYS[1]: the bucket's hash. A reserved send goes only when its channel's previous send is at least one
# interval (1/rate) back: slots released together (the scheduler moves due jobs in ticks) still go one by one.
_SPACE = """
local gap, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('hget', KEYS[1], 'last')) or 0
if now - last >= gap then
  redis.call('hset', KEYS[1], 'last', now)
  return '0'
end
return tostring(gap - (now - last))
"""


def space(client: redis.Redis, key: str, rate: float, now: float | None = None) -> float:
    """For a send that reserved its slot: 0 (and the send recorded) when the channel's last send is at least
    ``1/rate`` seconds back, else the seconds still to wait."""
    now = time.time() if now is None else now
    return float(client.eval(_SPACE, 1, key, 1.0 / rate, now))  # type: ignore[arg-type]


def sent(client: redis.Redis, key: str, now: float | None = None) -> None:
    """Record a send that took a token at once (the spacing of reserved sends counts from it)."""
    client.hset(key, "last", time.time() if now is None else now)
