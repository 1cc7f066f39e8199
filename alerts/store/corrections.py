"""Corrections in Redis (``alerts.evaluate.corrections``): every quote a vendor corrected, with both prices, both
event ids, when each arrived and the follow-ups it fired, for ``alerts history``.

Key: ``P:corrections``, a sorted set of JSON records (``Correction.to_dict``) scored by when the correction arrived
(epoch seconds), the newest ``KEEP`` kept. Both quotes stay in the quote history (``P:history:{product}:{source}``)
as they always did: a correction never rewrites it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import cast

import redis

from alerts.evaluate.corrections import Correction
from alerts.evaluate.session import Session
from alerts.store.keys import Keys

#: Corrections kept (the newest).
KEEP = 10_000


def arrived_at(seq: str, default: float) -> float:
    """When an event with this arrival position (a stream entry id, ``ms-n``) arrived, in epoch seconds."""
    ms = seq.partition("-")[0]
    return int(ms) / 1000 if ms.isdigit() else default


def late_corrections(client: redis.Redis, keys: Keys, session: Session) -> list[Correction]:
    """The late quotes of a session that correct a stored quote (one of the same product, source and time with
    another price): what evaluation cannot know, the quote history knows. One round trip, only when the session
    holds late quotes."""
    late = [(i, ev, seq) for i, (ev, is_late, seq) in enumerate(session.prices) if is_late]
    if not late:
        return []
    pipe = client.pipeline(transaction=False)
    for _, ev, _ in late:
        pipe.zrangebyscore(keys.history(ev.product_key, ev.source), ev.as_of, ev.as_of)
    out = []
    for (i, ev, seq), members in zip(late, cast(list[list[bytes]], pipe.execute()), strict=True):
        known: list[tuple[str, float, str]] = []  # (seq, price, event id) of the same day's quotes before it
        for m in members:
            _day, price, eid, _low, _high, _late, old_seq = json.loads(m)
            known.append((str(old_seq), float(price), str(eid)))
        known.extend((s, e.price, e.id) for e, _, s in session.prices[:i]
                     if e.product_key == ev.product_key and e.source == ev.source and e.as_of == ev.as_of)
        before = [k for k in known if k[2] != ev.id]
        if not before:
            continue  # a day that had no quote: late, not a correction
        old_seq, old_price, old_id = max(before, key=lambda k: arrived_at(k[0], 0.0))
        if old_price != ev.price:
            out.append(Correction(ev.product_key, ev.product, ev.source, ev.as_of_date, ev.as_of, ev.unit, old_price,
                                  ev.price, old_id, ev.id, old_seq, seq, late=True))
    return out


def stage_corrections(pipe: redis.client.Pipeline, keys: Keys, corrections: Iterable[Correction]) -> None:
    """Queue the records of a batch's corrections on ``pipe`` (its transaction)."""
    now = time.time()
    members = {json.dumps(c.to_dict(), ensure_ascii=False, separators=(",", ":")): arrived_at(c.new_seq, now)
               for c in corrections}
    if members:
        pipe.zadd(keys.corrections, members)  # type: ignore[arg-type]
        pipe.zremrangebyrank(keys.corrections, 0, -KEEP - 1)


def stored_corrections(client: redis.Redis, keys: Keys, since: float | None = None,
                       limit: int | None = None) -> list[tuple[float, Correction]]:
    """(when it arrived, correction), newest first, arrived at or after ``since``."""
    raw = cast(list[tuple[bytes, float]], client.zrevrangebyscore(
        keys.corrections, "+inf", "-inf" if since is None else since, withscores=True,
        start=0 if limit is not None else None, num=limit))
    out = []
    for member, score in raw:
        try:
            out.append((score, Correction.from_dict(json.loads(member))))
        except (ValueError, TypeError):
            continue
    return out
