"""Evaluation state in Redis: how a product's state, a quote and an article are encoded, and loading them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis

from alerts.events.wire import NewsEvent, PriceEvent
from alerts.model import History, ProductState, QuoteState, RuleState
from alerts.store.keys import Keys


def decode_state(raw: dict[bytes, bytes]) -> ProductState | None:
    if not raw:
        return None
    quotes = {}
    history: dict[str, History] = {}
    fired: dict[str, float] = {}
    rules: dict[str, RuleState] = {}
    for k, v in raw.items():
        key = k.decode()
        if key.startswith("q:"):
            quotes[key[2:]] = QuoteState.from_dict(json.loads(v))
        elif key.startswith("h:"):
            history[key[2:]] = tuple((float(t), float(p)) for t, p in json.loads(v))
        elif key == "fired":
            fired = json.loads(v)
        elif key == "rules":
            rules = {fp: RuleState.from_list(s) for fp, s in json.loads(v).items()}
    return ProductState(quotes, fired, rules, history)


def encode_state(st: ProductState) -> dict[str, str]:
    """The hash fields of a product's state. Fields are replaced, never merged: write all of them."""
    out = {f"q:{src}": json.dumps(q.to_dict(), separators=(",", ":")) for src, q in st.quotes.items()}
    out.update({f"h:{src}": json.dumps(h, separators=(",", ":")) for src, h in st.history.items()})
    out["fired"] = json.dumps(dict(st.last_fired), separators=(",", ":"))
    out["rules"] = json.dumps({k: s.to_list() for k, s in st.rules.items()}, separators=(",", ":"))
    return out


def load_states(client: redis.Redis, keys: Keys, product_keys: Iterable[str]) -> dict[str, ProductState | None]:
    pkeys = list(product_keys)
    pipe = client.pipeline(transaction=False)
    for pk in pkeys:
        pipe.hgetall(keys.state(pk))
    return {pk: decode_state(raw) for pk, raw in zip(pkeys, pipe.execute(), strict=True)}


def news_member(ev: NewsEvent, seq: str = "") -> str:
    """An article in the news history: ``{"e": the event as published, "seq": arrival position}``
    (JSON); score: its published time."""
    d: dict[str, Any] = {"type": "news", "id": ev.id, "headline": ev.headline, "body": ev.body, "url": ev.url,
                         "published_at": datetime.fromtimestamp(ev.published_at, UTC).isoformat(),
                         "source": ev.source, "tags": list(ev.tags)}
    event = {k: v for k, v in d.items() if v not in (None, "", [])}
    return json.dumps({"e": event, "seq": seq}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _js(text: str) -> str:
    """A JSON string; the common plain-ASCII case without json.dumps."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


def history_member(ev: PriceEvent, late: bool = False, seq: str = "") -> str:
    """A quote in the history: ``[date, price, event id, low, high, late, seq]`` (JSON); score: the
    quote time. ``late``: it arrived after a newer quote; ``seq``: its arrival position (stream entry id),
    so a replay can see the quotes in the order the live evaluation did."""
    # formatted by hand: one of these per quote on the hot path (json.dumps of the same list is 3x slower)
    low = "null" if ev.low is None else repr(ev.low)
    high = "null" if ev.high is None else repr(ev.high)
    return f'["{ev.as_of_date}",{ev.price!r},{_js(ev.id)},{low},{high},{int(late)},{_js(seq)}]'
