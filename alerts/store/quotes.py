"""The quote sanity check at every door, and the quarantine of what it holds (``alerts quotes``).

``QuoteGuard`` is what ``alerts.events.prices`` asks of each quote (``alerts.events.sanity`` judges): it keeps the
reference of each product seen in one publish call or import (its last quote: the evaluators' committed state in
Redis, read once per product, then each quote of the call the guard let through) and, for what it holds, the
record the quarantine keeps: ``hold`` collects them, ``flush`` writes them in one round trip.

Keys (``P`` is ``ALERTS_KEY_PREFIX``; ``alerts.store.keys.Keys.held`` and ``held_log``)::

    P:held        hash: held id -> the held quote as JSON (its wire form, the reason, where it came from, when)
    P:held:log    list: the last ``LOG_KEEP`` quotes released or dropped (JSON, newest first): the audit trail

A held id is ``h-`` and 10 hex digits of the quote's event id: the same quote held twice is one entry. At most
``MAX_HELD`` quotes are kept; beyond that a quote is still reported and not used, but not kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha1
from typing import Any, cast

import redis

from alerts.catalog import Catalog
from alerts.events.sanity import QuoteHeld, Reference, judge, median_daily_move
from alerts.events.wire import PriceEvent, decode_wire, encode_wire
from alerts.events.words import num
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.metrics import QUOTES_HELD, field_of, metrics_key
from alerts.store.state import decode_state
from alerts.store.streams import WIRE_FIELD, shard_of

#: ``ALERTS_QUOTE_MAX_DAILY_MOVE_PCT``'s default, for callers without settings (the Python API, tests).
DEFAULT_MAX_DAILY_MOVE_PCT: float = Settings.model_fields["quote_max_daily_move_pct"].default
#: Quotes the quarantine keeps at most.
MAX_HELD = 10_000
#: Released and dropped quotes kept in ``P:held:log``.
LOG_KEEP = 1_000
#: Quotes of a product's history read to learn its usual daily move (the newest).
MOVE_POINTS = 31


#: A product whose reference was not read yet (its reference may be None: no quote yet).
_UNREAD = Reference(0.0, 0.0, "")


def held_id(event_id: str) -> str:
    return "h-" + sha1(event_id.encode(), usedforsecurity=False).hexdigest()[:10]


@dataclass(frozen=True)
class Held:
    """A quote in the quarantine."""

    id: str
    event: PriceEvent
    reason: str
    via: str  # publish, http, import, poll, article
    where: str  # FILE:LINE, "item 3", a feed source's name
    held_at: float

    def record(self) -> dict[str, Any]:
        """What the quarantine keeps of it (the quote in its wire form)."""
        return {"id": self.id, "event": encode_wire(self.event).decode(), "reason": self.reason, "via": self.via,
                "where": self.where, "held_at": self.held_at}

    def to_json(self) -> str:
        return json.dumps(self.record(), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Held:
        d = json.loads(raw)
        ev = decode_wire(d["event"].encode())
        if not isinstance(ev, PriceEvent):
            raise ValueError("not a quote")
        return cls(d["id"], ev, d["reason"], d["via"], d["where"], float(d["held_at"]))

    def as_dict(self) -> dict[str, Any]:
        e = self.event
        return {"id": self.id, "product": e.product, "price": e.price, "unit": e.unit, "as_of": e.as_of_date,
                "source": e.source, "event_id": e.id, "reason": self.reason, "via": self.via, "where": self.where,
                "held_at": self.held_at}


class QuoteGuard:
    """The sanity check of one publish call or import (``alerts.events.sanity``): ``check`` raises QuoteHeld or
    lets a quote through, and makes it the product's reference; ``admit`` makes a quote the reference without a
    check (``override``); ``hold`` keeps what ``check`` raised. ``floor_move``: ``ALERTS_QUOTE_MAX_DAILY_MOVE_PCT``
    / 100; ``via``: the door (the metrics label: http, publish, import); ``origin``: where the quotes come from (a
    file's name, a feed source), for the record. ``from_settings`` makes the one of a door."""

    def __init__(self, client: redis.Redis, keys: Keys, catalog: Catalog, floor_move: float, via: str = "publish",
                 origin: str = ""):
        self.client = client
        self.via = via  # the door (the metrics label): http, publish, import
        self.origin = origin  # where the quotes come from (a file's name, a feed source), for the record
        self.keys = keys
        self.catalog = catalog
        self.floor_move = floor_move
        self._hi = 1.0 + floor_move  # a ratio to the reference within [1/hi, hi] passes whatever the gap
        self._lo = 1.0 / self._hi
        self._refs: dict[str, Reference | None] = {}
        self.held: list[Held] = []

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings, catalog: Catalog, via: str = "publish",
                      origin: str = "") -> QuoteGuard:
        return cls(client, Keys(settings.key_prefix), catalog, settings.quote_max_daily_move_pct / 100, via, origin)

    def _load(self, pkey: str) -> Reference | None:
        """The product's newest committed quote (any vendor) and the usual daily move of that vendor's history."""
        state = decode_state(cast(dict[bytes, bytes], self.client.hgetall(self.keys.state(pkey))))
        ref = None
        if state is not None and state.quotes:
            source, q = max(state.quotes.items(), key=lambda sq: sq[1].as_of)
            raw = cast(list[tuple[bytes, float]], self.client.zrevrange(self.keys.history(pkey, source), 0,
                                                                       MOVE_POINTS - 1, withscores=True))
            points = sorted((t, float(json.loads(m)[1])) for m, t in raw)
            ref = Reference(q.price, q.as_of, source, median_daily_move(points))
        self._refs[pkey] = ref
        return ref

    def check(self, ev: PriceEvent, written_price: float, written_unit: str) -> None:
        """Let ``ev`` through (and make it its product's reference), or raise QuoteHeld with what it looks like."""
        key = ev.product_key
        ref = self._refs.get(key, _UNREAD)
        if ref is _UNREAD:
            ref = self._load(key)
        if ref is not None and self._lo <= ev.price / ref.price <= self._hi:
            if ev.as_of >= ref.t:
                ref.price, ref.t, ref.source = ev.price, ev.as_of, ev.source
            return
        product = self.catalog.products.get(key)
        if product is not None:
            reason = judge(ev.price, ev.as_of, product, ref, f"{num(written_price)} {written_unit}", written_unit,
                           self.floor_move)
            if reason is not None:
                raise QuoteHeld(reason, ev)
        self.admit(ev)

    def admit(self, ev: PriceEvent) -> None:
        """Make ``ev`` its product's reference, unchecked (a quote sent with ``override``)."""
        key = ev.product_key
        ref = self._refs[key] if key in self._refs else self._load(key)
        if ref is None:
            self._refs[key] = Reference(ev.price, ev.as_of, ev.source)
        elif ev.as_of >= ref.t:
            ref.price, ref.t, ref.source = ev.price, ev.as_of, ev.source

    def hold(self, held: QuoteHeld, n: int) -> str:
        """Keep a held quote (of line or item ``n``) for ``flush``; the message its sender is given, with the id
        to release it by."""
        ev = cast(PriceEvent, held.event)
        hid = held_id(ev.id)
        where = f"{'item' if self.via == 'http' else 'line'} {n}"
        self.held.append(Held(hid, ev, held.reason, self.via, f"{self.origin}: {where}" if self.origin else where,
                              time.time()))
        return f"held ({hid}): {held.reason}; `alerts quotes release {hid}` uses it, `alerts quotes drop {hid}` " \
               "discards it"

    def flush(self, pipe: redis.client.Pipeline | None = None) -> None:
        """Write the held quotes to the quarantine (into ``pipe`` when given, else at once), and count them."""
        if not self.held:
            return
        own = pipe is None
        p = pipe if pipe is not None else self.client.pipeline(transaction=False)
        room = MAX_HELD - int(self.client.hlen(self.keys.held))
        kept = self.held[:max(room, 0)]
        if kept:
            p.hset(self.keys.held, mapping={h.id: h.to_json() for h in kept})
        for h in self.held:
            p.hincrby(metrics_key(self.keys), field_of(QUOTES_HELD, (h.via,)), 1)
        self.held = []
        if own:
            p.execute()


def held_quotes(client: redis.Redis, keys: Keys) -> list[Held]:
    """Every quote in the quarantine, oldest held first (an entry that no longer decodes is skipped)."""
    out = []
    for raw in cast(dict[bytes, bytes], client.hgetall(keys.held)).values():
        try:
            out.append(Held.from_json(raw))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda h: (h.held_at, h.id))


def held_count(client: redis.Redis, keys: Keys) -> int:
    return int(client.hlen(keys.held))


def resolve(client: redis.Redis, keys: Keys, ids: Iterable[str], action: str, shards: int,
            by: str = "") -> list[tuple[str, str]]:
    """Release (publish, unchecked) or drop quotes of the quarantine: (id, what happened) for each id. A released
    quote goes to its shard's event stream as it was held; both are logged in ``P:held:log``."""
    out = []
    for hid in ids:
        raw = cast(bytes | None, client.hget(keys.held, hid))
        if raw is None:
            out.append((hid, "not in the quarantine (`alerts quotes held` lists what is)"))
            continue
        held = Held.from_json(raw)
        pipe = client.pipeline(transaction=True)
        if action == "release":
            pipe.xadd(keys.events(shard_of(held.event, shards)), {WIRE_FIELD: encode_wire(held.event)})
        pipe.hdel(keys.held, hid)
        entry = held.record() | {"action": action, "at": time.time(), "by": by}
        pipe.lpush(keys.held_log, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(keys.held_log, 0, LOG_KEEP - 1)
        pipe.execute()
        e = held.event
        what = f"{e.product} {num(e.price)} {e.unit} on {e.as_of_date} ({e.source})"
        out.append((hid, f"released: {what} published" if action == "release" else f"dropped: {what}"))
    return out
