"""``GET /metrics``: the cluster's metrics in Prometheus' text format, read from Redis at scrape time.

Every process adds its counts to one Redis hash (``alerts.store.metrics``); this collector reads it, and
the consumer groups' pending entries and lag, when Prometheus scrapes, so the one HTTP face shows what
every evaluator and delivery worker on every machine did. Nothing here is per process, and no label
holds a target, a message or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.store.keys import Keys
from alerts.store.metrics import METRICS, paused_count, read, stream_lags
from alerts.store.quotes import held_count


class RedisCollector(Collector):
    def __init__(self, client: redis.Redis, keys: Keys, shards: int):
        self.client = client
        self.keys = keys
        self.shards = shards

    def collect(self) -> Iterator[Metric]:
        found = read(self.client, self.keys)
        for m in METRICS:
            name = m.name.removesuffix("_total")
            mine = [s for s in found if s.metric is m]
            if m.buckets is None:
                c = CounterMetricFamily(name, m.help, labels=list(m.labels))
                for s in mine:
                    c.add_metric(list(s.labels), s.value)
                yield c
            else:
                h = HistogramMetricFamily(name, m.help, labels=list(m.labels))
                for s in mine:
                    h.add_metric(list(s.labels), list(s.buckets), s.sum)
                yield h
        lags = stream_lags(self.client, self.keys, self.shards)
        pending = GaugeMetricFamily("alerts_stream_pending_entries", "Entries a consumer of the group read and has "
                                    "not acknowledged yet.", labels=["stream", "group"])
        lag = GaugeMetricFamily("alerts_stream_lag_entries", "Entries the group has not read yet (Redis 7 or "
                                "later; absent on Redis 6.2).", labels=["stream", "group"])
        for g in lags:
            pending.add_metric([g.stream, g.group], g.pending)
            if g.lag is not None:
                lag.add_metric([g.stream, g.group], g.lag)
        yield pending
        yield lag
        yield GaugeMetricFamily("alerts_rules_paused", "Rules the circuit breaker has paused now.",
                                value=paused_count(self.client, self.keys))
        yield GaugeMetricFamily("alerts_quotes_in_quarantine", "Quotes the sanity check holds now, waiting for "
                                "`alerts quotes release` or `drop`.", value=held_count(self.client, self.keys))


def registry(client: redis.Redis, keys: Keys, shards: int) -> CollectorRegistry:
    """A registry of its own (not the process's default one, which would add this process's Python metrics)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(client, keys, shards))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
