"""The stored history of quotes, articles, exchange rates and vendor notices: replayed by backtests (in arrival order),
summarised for rule checks."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from typing import cast

import msgspec
import redis

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.evaluate.eventtime import decode_point
from alerts.events.json_in import parse_event
from alerts.events.wire import Event, FxEvent, PriceEvent, event_time, fx_series
from alerts.rules.checks import PriceStats
from alerts.store.keys import Keys
from alerts.store.notices import stored_notices


def price_stats(client: redis.Redis, keys: Keys) -> dict[str, PriceStats]:
    """Per product: lowest and highest price ever stored, median time between quotes, the newest quote's
    time; per exchange-rate series (``fx:USD/CNY``) the same of its rates."""
    prefix = keys.history("", "")[:-1]
    prices: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        pkey = key.decode()[len(prefix):].split(":", 1)[0]
        for member, score in cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True)):
            prices.setdefault(pkey, []).append(float(json.loads(member)[1]))
            times.setdefault(pkey, []).append(score)
    for key in client.scan_iter(match=f"{keys.legs('fx:')}*", count=1000):  # exchange rates: fx:USD/CNY
        series = key.decode()[len(keys.legs("")):]
        for member, score in cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True)):
            prices.setdefault(series, []).append(float(json.loads(member)[2]))
            times.setdefault(series, []).append(score)
    out = {}
    for pkey, ps in prices.items():
        ts = sorted(set(times[pkey]))
        gaps = sorted(b - a for a, b in pairwise(ts))
        out[pkey] = PriceStats(min(ps), max(ps), gaps[len(gaps) // 2] if gaps else 86400.0, len(ps), ts[-1])
    return out


def _arrival(seq: str, ts: float) -> tuple[int, int]:
    """Sort key of an arrival position ``ms-n`` (a stream entry id); the event time when unknown."""
    ms, _, n = seq.partition("-")
    return (int(ms), int(n or 0)) if ms.isdigit() else (int(ts * 1000), 0)


def stored_events(client: redis.Redis, keys: Keys, catalog: Catalog, tz: str,
                  until: float | None = None) -> list[Event]:
    """Every quote, article and exchange rate the live evaluators kept, in the order they arrived: quotes
    that came late come back late, and change nothing again, but still count as history for change windows.
    Rates come from their event-time series (``P:legs:fx:PAIR``, arrival ``LegPoint.seq``); the quotes
    published in another currency are stored converted already."""
    out: list[tuple[tuple[int, int], Event]] = []
    prefix = keys.history("", "")[:-1]  # "P:history:"
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        pkey, source = key.decode()[len(prefix):].split(":", 1)
        product = catalog.products.get(pkey)
        if product is None:
            continue
        for member, score in _scored(client, key):
            day, price, eid, low, high, _late, seq = json.loads(member)
            out.append((_arrival(seq, score), PriceEvent(eid, product.name, pkey, price, product.unit_text, score,
                                                         day, source, low, high)))
    fx_prefix = keys.legs(fx_series(""))  # "P:legs:fx:"
    for key in client.scan_iter(match=f"{_glob(fx_prefix)}*", count=1000):
        pair = key.decode()[len(fx_prefix):]
        for member, _score in _scored(client, key):
            try:
                p = decode_point(member)
            except msgspec.DecodeError:
                continue
            out.append((_arrival(p.seq, p.t), FxEvent(p.event_id, pair, p.price, p.t, p.date, p.source)))
    out.extend((_arrival(seq, ev.published_at), ev) for ev, seq in stored_notices(client, keys))
    for member, score in _scored(client, keys.news_history):
        try:
            doc = json.loads(member)
            out.append((_arrival(doc["seq"], score), parse_event(doc["e"], catalog, tz)))
        except (EventError, ValueError, KeyError, TypeError):
            continue
    out.sort(key=lambda t: t[0])
    return [ev for _, ev in out if until is None or event_time(ev) <= until]


def _glob(text: str) -> str:
    """``text`` as a literal SCAN pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _scored(client: redis.Redis, key: bytes | str) -> list[tuple[bytes, float]]:
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))
