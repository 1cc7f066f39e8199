"""Locks and leases held by a token: taken with SET NX PX, renewed and released only by their holder
(a Lua script compares the token, so a holder that lost its lock cannot release someone else's)."""

from __future__ import annotations

import redis

_RENEW = """
local owner = redis.call('get', KEYS[1])
if owner == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not owner and ARGV[3] == '1' then return redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def renew(client: redis.Redis, key: str, token: bytes | str, ttl_ms: int, take_if_free: bool = False) -> bool:
    """Extend a lock we hold to ``ttl_ms`` from now; with ``take_if_free``, take it when nobody holds it.
    False when someone else holds it (or, without ``take_if_free``, nobody does)."""
    return bool(client.eval(_RENEW, 1, key, token, ttl_ms, int(take_if_free)))  # type: ignore[arg-type]


def release(client: redis.Redis, key: str, token: bytes | str) -> bool:
    """Release a lock if we hold it. False when we did not (it expired, or someone else took it)."""
    return bool(client.eval(_RELEASE, 1, key, token))  # type: ignore[arg-type]
