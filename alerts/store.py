"""Redis layout and the small operations on it that several processes share.

Keys (``P`` is ``ALERTS_KEY_PREFIX``)::

    P:events:{shard}         stream of events; consumer group "evaluators"
    P:lease:{shard}          which evaluator owns the shard (token, expires)
    P:commits:{shard}        number of batches committed on the shard (detects lost writes)
    P:config                 hash: settings every process must agree on (stream_shards)
    P:evaluators             sorted set of live evaluators by heartbeat time
    P:state:{product}        hash: "q:{source}" -> newest quote state; "fired" -> cooldown times
    P:history:{product}:{source}  sorted set of every quote, by quote time (late ones included)
    P:seen:{article}         set of news rule ids that alerted on an article (by id and by url)
    P:shared:{fingerprint}   JSON state of a spread or all_of rule (moved by several shards: WATCHed)
    P:newshistory            sorted set of every article evaluated, by published time (for backtests)
    P:newsfired              hash: news rule fingerprint -> time of its last alert (cooldown)
    P:alerts                 stream of alerts, up to 100 per entry (the outbox for dispatch and the history)
    P:enqueued:{alert}       marker: the alert's deliveries were handed to rq
    P:delivered:{alert}:{target}  marker: delivered to that target
    P:breaker:{minute}       hash: rule id -> alerts sent in that minute (circuit breaker)
    P:paused                 hash: rule id -> when and why the circuit breaker paused it
    P:outbox:digest:{name}   list of alerts waiting for their digest
    P:digest:{name}:state    JSON: the last slot sent, when, and the prices it showed
    P:digest:{name}:lock     the one sender of a digest at a time (SET NX)
    P:failed                 hash: failed deliveries, for `alerts failed`
    P:pace:{target}          token bucket pacing messages to one channel
    P:sending:{alert}:{target}  short lock while one worker sends a message
    P:attempt:{alert}:{target}  when a send began; left behind by a worker that died while sending
    P:slackchannel:{name}    the id of a Slack channel known by name (from Slack's answers)
    P:alerts:dead            stream of alert entries that could not be dispatched, with the reason
    P:invalid                stream of events an evaluator could not accept, with the reason
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, cast

import redis

from alerts.checks import PriceStats
from alerts.compiled import RuleSet
from alerts.errors import ConfigError
from alerts.events import Event, NewsEvent, PriceEvent
from alerts.model import History, ProductState, QuoteState, RuleState

EVALUATOR_GROUP = "evaluators"
DISPATCH_GROUP = "dispatch"
#: Seconds a news article is remembered for de-duplication.
SEEN_TTL = 180 * 86400
#: Seconds an enqueued/delivered marker is kept.
MARKER_TTL = 30 * 86400
#: Entries kept in the invalid-event stream (approximate).
INVALID_MAXLEN = 10_000


@dataclass(frozen=True)
class Keys:
    prefix: str = "alerts"

    def events(self, shard: int) -> str:
        return f"{self.prefix}:events:{shard}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    def commits(self, shard: int) -> str:
        return f"{self.prefix}:commits:{shard}"

    @property
    def config(self) -> str:
        return f"{self.prefix}:config"

    @property
    def evaluators(self) -> str:
        return f"{self.prefix}:evaluators"

    def state(self, pkey: str) -> str:
        return f"{self.prefix}:state:{pkey}"

    def history(self, pkey: str, source: str) -> str:
        return f"{self.prefix}:history:{pkey}:{source}"

    def seen(self, article_key: str) -> str:
        return f"{self.prefix}:seen:{article_key}"

    def shared(self, fp: str) -> str:
        return f"{self.prefix}:shared:{fp}"

    @property
    def news_history(self) -> str:
        return f"{self.prefix}:newshistory"

    @property
    def news_fired(self) -> str:
        return f"{self.prefix}:newsfired"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}:alerts"

    def enqueued(self, alert_id: str) -> str:
        return f"{self.prefix}:enqueued:{alert_id}"

    def delivered(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:delivered:{alert_id}:{target}"

    def breaker(self, minute: str) -> str:
        return f"{self.prefix}:breaker:{minute}"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"

    def outbox(self, kind: str, name: str) -> str:
        return f"{self.prefix}:outbox:{kind}:{name}"

    def digest_state(self, name: str) -> str:
        return f"{self.prefix}:digest:{name}:state"

    def digest_lock(self, name: str) -> str:
        return f"{self.prefix}:digest:{name}:lock"

    @property
    def failed(self) -> str:
        return f"{self.prefix}:failed"

    def pace(self, target: str) -> str:
        return f"{self.prefix}:pace:{target}"

    def attempt(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:attempt:{alert_id}:{target}"

    def slack_channel(self, name: str) -> str:
        return f"{self.prefix}:slackchannel:{name}"

    def sending(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:sending:{alert_id}:{target}"

    @property
    def dead_alerts(self) -> str:
        return f"{self.prefix}:alerts:dead"

    @property
    def invalid(self) -> str:
        return f"{self.prefix}:invalid"


#: News all go to this shard: one owner evaluates them in order, so de-duplication and cooldowns
#: of news rules never race. News is a trickle next to prices.
NEWS_SHARD = 0


def shard_of(event: Event, shards: int) -> int:
    """Events of one product always land on the same shard; news on NEWS_SHARD."""
    if isinstance(event, PriceEvent):
        return zlib.crc32(event.product_key.encode()) % shards
    return NEWS_SHARD


def shared_rules(rules: RuleSet, events: Iterable[Event]) -> set[str]:
    """Fingerprints of the spread and all_of rules these events can move."""
    fps: set[str] = set()
    if not rules.has_shared:
        return fps
    news = False
    for ev in events:
        if isinstance(ev, PriceEvent):
            idx = rules.price.get(ev.product_key)
            if idx is not None:
                fps.update(s.state_key for s in idx.spreads)
                fps.update(r.state_key for r, _, _ in idx.parts)
        else:
            news = True
    if news:
        fps.update(r.state_key for r, _, _ in rules.news_parts)
    return fps


def price_stats(client: redis.Redis, keys: Keys) -> dict[str, PriceStats]:
    """Per product: lowest and highest price ever stored, median time between quotes."""
    prefix = keys.history("", "")[:-1]
    prices: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        pkey = key.decode()[len(prefix):].split(":", 1)[0]
        for member, score in cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True)):
            prices.setdefault(pkey, []).append(float(json.loads(member)[1]))
            times.setdefault(pkey, []).append(score)
    out = {}
    for pkey, ps in prices.items():
        ts = sorted(set(times[pkey]))
        gaps = sorted(b - a for a, b in pairwise(ts))
        out[pkey] = PriceStats(min(ps), max(ps), gaps[len(gaps) // 2] if gaps else 86400.0, len(ps))
    return out


def check_shard_count(client: redis.Redis, keys: Keys, shards: int) -> None:
    """Every publisher and evaluator must use the same ALERTS_STREAM_SHARDS; the first one fixes it."""
    client.hsetnx(keys.config, "stream_shards", shards)
    fixed = int(client.hget(keys.config, "stream_shards") or shards)
    if fixed != shards:
        raise ConfigError(f"ALERTS_STREAM_SHARDS is {shards} here but {fixed} in Redis (prefix {keys.prefix!r}); "
                          "every process of a deployment must use the same value")


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def read_group(client: redis.Redis, group: str, consumer: str, streams: dict[str, str], count: int,
               block: int | None = None) -> list[tuple[bytes, StreamEntries]]:
    """XREADGROUP with the reply typed: [(stream name, [(entry id, fields)])]."""
    reply = client.xreadgroup(group, consumer, streams, count=count, block=block)  # type: ignore[arg-type]
    return cast(list[tuple[bytes, StreamEntries]], reply or [])


# --- state ---------------------------------------------------------------------------------------

#: Alerts per entry of the alert stream: one XADD per hundred alerts, not one per alert (hot path).
ALERTS_PER_ENTRY = 100


def alert_entries(alerts: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Alert stream entries (``{"alerts": JSON list}``) holding these alerts, in order."""
    return [{"alerts": json.dumps(alerts[i:i + ALERTS_PER_ENTRY], ensure_ascii=False, separators=(",", ":"))}
            for i in range(0, len(alerts), ALERTS_PER_ENTRY)]


def read_alerts(fields: dict[bytes, bytes]) -> list[Any]:
    """The alerts of one alert stream entry. Raises ValueError when it holds none."""
    try:
        value = json.loads(fields[b"alerts"])
    except (KeyError, ValueError):
        raise ValueError("not an alert entry") from None
    if not isinstance(value, list):
        raise ValueError("not an alert entry")
    return value


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
