"""Cluster-wide metrics in Redis: every process counts in memory and adds its counts to one hash, which the
HTTP app's ``GET /metrics`` reads at scrape time (``workers.web.metrics``).

Key: ``P:metrics`` (hash: one field per counter series, and per histogram series one field per bucket plus
``sum`` and ``count``; values are added with HINCRBY / HINCRBYFLOAT, never set, so any number of processes
add to them at once). A field is the JSON list ``[name, [label values], part]`` (part "" for a counter, the
bucket's upper bound, "sum" or "count" for a histogram). Label values are bounded: rule ids (as many as the
rule files hold), channels (target kinds), reasons (``REASONS``), ``via`` (``VIAS``); never a target, a
message or anything secret.

A ``Recorder`` is what a component counts into: ``inc`` and ``observe`` touch only memory; ``flush`` sends
every changed field in one pipelined round trip, ``maybe_flush`` at most once per ``FLUSH_SECONDS``.
Publishing adds its counts to the pipeline that XADDs the events (``count_publish``): no extra round trip.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import redis

from alerts.evaluate.breaker import BreakerVerdict
from alerts.store.keys import DISPATCH_GROUP, EVALUATOR_GROUP, Keys

log = logging.getLogger(__name__)
breaker_log = logging.getLogger(f"{__name__}.breaker")  # the circuit breaker's pauses

#: Seconds between two flushes of a recorder (``maybe_flush``).
FLUSH_SECONDS = 1.0

#: Reasons a delivery was retried or failed (the ``reason`` label).
REASONS = ("http_429", "http_5xx", "timeout", "network", "refused", "other")
#: How events came in (the ``via`` label): POST /events, every other publisher (``alerts publish``, the feed
#: pollers, the Python API), and entries the evaluator could not decode (rejected only).
VIAS = ("http", "publish", "evaluate")

#: Buckets (seconds) of the latency histograms.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # a histogram when set, else a counter


EVENTS_RECEIVED = Metric("alerts_events_received_total", "Events accepted and published to the event streams.",
                         ("via",))
EVENTS_REJECTED = Metric("alerts_events_rejected_total", "Events refused: invalid items at publish, entries "
                         "the evaluator could not decode.", ("via",))
EVENTS_EVALUATED = Metric("alerts_events_evaluated_total", "Events evaluated (committed by an evaluator).")
ALERTS = Metric("alerts_alerts_total", "Alerts written to the alert stream, per rule (a circuit breaker's "
                "pause notice included).", ("rule",))
BREAKER_PAUSES = Metric("alerts_breaker_pauses_total", "Rules paused by the circuit breaker.", ("rule",))
DELIVERIES_SENT = Metric("alerts_deliveries_sent_total", "Deliveries a channel accepted.", ("channel",))
DELIVERIES_RETRIED = Metric("alerts_deliveries_retried_total", "Delivery attempts that failed and will be "
                            "tried again (a 429 rescheduled after its Retry-After included).", ("channel", "reason"))
DELIVERIES_FAILED = Metric("alerts_deliveries_failed_total", "Deliveries that failed for good (as listed by "
                           "`alerts failed`).", ("channel", "reason"))
EVALUATION_SECONDS = Metric("alerts_evaluation_batch_seconds", "Time to evaluate and commit one batch of events.",
                            buckets=FAST_BUCKETS)
PUBLISH_TO_EVALUATION = Metric("alerts_publish_to_evaluation_seconds", "From the publish of a batch's oldest "
                               "event (its stream entry id) to the batch's commit.", buckets=SLOW_BUCKETS)
ALERT_TO_DELIVERY = Metric("alerts_alert_to_delivery_seconds", "From an alert's entry on the alert stream "
                           "(written when its event was evaluated) to the delivery's success.", ("channel",),
                           SLOW_BUCKETS)
PUBLISH_TO_DELIVERY = Metric("alerts_publish_to_delivery_seconds", "From the publish of the event that fired an "
                             "alert (its stream entry's time) to the delivery's success.", ("channel",),
                             SLOW_BUCKETS)

QUOTES_HELD = Metric("alerts_quotes_held_total", "Quotes the sanity check held in the quarantine instead of "
                     "publishing them (`alerts quotes held`), by door: http, publish (the CLI, pollers, articles), "
                     "import.", ("via",))

METRICS: tuple[Metric, ...] = (EVENTS_RECEIVED, EVENTS_REJECTED, QUOTES_HELD, EVENTS_EVALUATED, ALERTS,
                               BREAKER_PAUSES, DELIVERIES_SENT, DELIVERIES_RETRIED, DELIVERIES_FAILED,
                               EVALUATION_SECONDS, PUBLISH_TO_EVALUATION, ALERT_TO_DELIVERY, PUBLISH_TO_DELIVERY)
BY_NAME = {m.name: m for m in METRICS}


def metrics_key(keys: Keys) -> str:
    return f"{keys.prefix}:metrics"


@lru_cache(maxsize=65536)  # label values are bounded; a field is built once, not per batch
def field_of(metric: Metric, labels: tuple[str, ...], part: str = "") -> str:
    return json.dumps([metric.name, list(labels), part], separators=(",", ":"))


@lru_cache(maxsize=65536)
def _histogram_fields(metric: Metric, labels: tuple[str, ...]) -> tuple[tuple[str, ...], str, str]:
    """The bucket fields (one per bound, then +Inf), the count field and the sum field of a series."""
    assert metric.buckets is not None
    buckets = (*(field_of(metric, labels, bucket_name(b)) for b in metric.buckets), field_of(metric, labels, "+Inf"))
    return buckets, field_of(metric, labels, "count"), field_of(metric, labels, "sum")


def bucket_name(bound: float) -> str:
    return repr(float(bound))


class Recorder:
    """Counts of one component, in memory until flushed (thread-safe)."""

    def __init__(self, keys: Keys, interval: float = FLUSH_SECONDS):
        self.key = metrics_key(keys)
        self.interval = interval
        self._lock = threading.Lock()
        self._ints: dict[str, int] = {}
        self._floats: dict[str, float] = {}
        self._next = time.monotonic() + interval

    def inc(self, metric: Metric, n: int = 1, *labels: str) -> None:
        if n:
            f = field_of(metric, labels)
            with self._lock:
                self._ints[f] = self._ints.get(f, 0) + n

    def observe(self, metric: Metric, seconds: float, *labels: str) -> None:
        assert metric.buckets is not None
        buckets, c, s = _histogram_fields(metric, labels)
        b = buckets[bisect.bisect_left(metric.buckets, seconds)]
        with self._lock:
            self._ints[b] = self._ints.get(b, 0) + 1
            self._ints[c] = self._ints.get(c, 0) + 1
            self._floats[s] = self._floats.get(s, 0.0) + seconds

    def verdict(self, verdict: BreakerVerdict) -> None:
        """What a committed circuit-breaker verdict let out (alerts per rule) and which rules it paused; a
        pause is logged, once, by the process that committed it."""
        if not verdict.alerts and not verdict.paused:
            return
        counted = [(field_of(ALERTS, (rule,)), n) for rule, n in Counter(a.rule_id for a in verdict.alerts).items()]
        with self._lock:
            for f, n in counted:
                self._ints[f] = self._ints.get(f, 0) + n
        for rule, info in verdict.paused.items():
            self.inc(BREAKER_PAUSES, 1, rule)
            breaker_log.warning("rule %s paused by the circuit breaker after %d alerts within the window; "
                                "`alerts rules resume %s` resumes it", rule, int(info.get("count", 0)), rule,
                                extra={"rule_id": rule})

    def maybe_flush(self, client: redis.Redis) -> None:
        if time.monotonic() >= self._next:
            self.flush(client)

    def flush(self, client: redis.Redis) -> None:
        """Add the counts to Redis in one pipelined round trip. On a Redis error they are kept for the next
        flush (and the error is logged at debug: the component's own Redis calls report it)."""
        self._next = time.monotonic() + self.interval
        with self._lock:
            ints, floats = self._ints, self._floats
            self._ints, self._floats = {}, {}
        if not ints and not floats:
            return
        try:
            pipe = client.pipeline(transaction=False)
            for f, n in ints.items():
                pipe.hincrby(self.key, f, n)
            for f, x in floats.items():
                pipe.hincrbyfloat(self.key, f, x)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("metrics not flushed, kept for the next flush: %s", exc)
            with self._lock:
                for f, n in ints.items():
                    self._ints[f] = self._ints.get(f, 0) + n
                for f, x in floats.items():
                    self._floats[f] = self._floats.get(f, 0.0) + x


def count_publish(pipe: redis.client.Pipeline, keys: Keys, via: str, published: int, rejected: int) -> None:
    """Add a publish's counts to the pipeline that XADDs its events."""
    if published:
        pipe.hincrby(metrics_key(keys), field_of(EVENTS_RECEIVED, (via,)), published)
    if rejected:
        pipe.hincrby(metrics_key(keys), field_of(EVENTS_REJECTED, (via,)), rejected)


# --- reading, at scrape time -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    metric: Metric
    labels: tuple[str, ...]
    value: float = 0.0  # a counter's value
    buckets: tuple[tuple[str, float], ...] = ()  # a histogram's cumulative (bound, count), "+Inf" last
    sum: float = 0.0


def read(client: redis.Redis, keys: Keys) -> list[Series]:
    """Every series in the metrics hash (fields of metrics this version does not know are skipped)."""
    raw = cast(dict[bytes, bytes], client.hgetall(metrics_key(keys)))
    return series(raw)


def series(raw: Mapping[bytes, bytes]) -> list[Series]:
    counters: dict[tuple[str, tuple[str, ...]], float] = {}
    hists: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
    for f, v in raw.items():
        try:
            name, labels, part = json.loads(f)
            metric = BY_NAME.get(name)
            if metric is None or len(labels) != len(metric.labels):
                continue
            key = (name, tuple(str(x) for x in labels))
            if metric.buckets is None:
                counters[key] = counters.get(key, 0.0) + float(v)
            else:
                parts = hists.setdefault(key, {})
                parts[str(part)] = float(v)
        except (ValueError, TypeError):
            continue
    out = [Series(BY_NAME[n], labels, value) for (n, labels), value in sorted(counters.items())]
    for (n, labels), parts in sorted(hists.items()):
        metric = BY_NAME[n]
        assert metric.buckets is not None
        running = 0.0
        cumulative = []
        for bound in metric.buckets:
            running += parts.get(bucket_name(bound), 0.0)
            cumulative.append((bucket_name(bound), running))
        count = max(parts.get("count", 0.0), running + parts.get("+Inf", 0.0))
        cumulative.append(("+Inf", count))
        out.append(Series(metric, labels, buckets=tuple(cumulative), sum=parts.get("sum", 0.0)))
    return out


@dataclass(frozen=True)
class StreamLag:
    stream: str  # the key without the prefix: "events:0", "alerts"
    group: str
    pending: int  # read by a consumer of the group, not acknowledged yet
    lag: int | None  # entries not read by the group yet (None: Redis before 7 does not say)


def stream_lags(client: redis.Redis, keys: Keys, shards: int) -> list[StreamLag]:
    """The consumer groups of the event streams and of the alert stream (one pipelined round trip)."""
    streams = [(keys.events(s), EVALUATOR_GROUP) for s in range(shards)] + [(keys.alerts, DISPATCH_GROUP)]
    pipe = client.pipeline(transaction=False)
    for name, _ in streams:
        pipe.xinfo_groups(name)
    out = []
    for (name, group), reply in zip(streams, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):  # no such stream yet
            continue
        for g in cast(Iterable[dict[str, object]], reply):
            gname = g.get("name")
            gname = gname.decode() if isinstance(gname, bytes) else str(gname)
            if gname != group:
                continue
            lag = g.get("lag")
            out.append(StreamLag(name.removeprefix(f"{keys.prefix}:"), group, int(cast(int, g.get("pending") or 0)),
                                 int(cast(int, lag)) if lag is not None else None))
    return out


def paused_count(client: redis.Redis, keys: Keys) -> int:
    return int(client.hlen(keys.paused))
