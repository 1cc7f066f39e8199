"""Drive the real pipeline step by step in the test process: evaluator, dispatcher, rq worker."""

from __future__ import annotations

from typing import Any

import redis

from alerts.model import Alert
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.keys import EVALUATOR_GROUP, Keys
from alerts.store.publish import Publisher
from alerts.store.streams import read_alerts
from tests.streams import stream_entries
from workers.deliver import Delivery
from workers.roles.composer import Composer
from workers.roles.delivery_worker import DeliveryWorker
from workers.roles.dispatch import Dispatcher, make_queues
from workers.roles.evaluator import Evaluator


class Pipeline:
    def __init__(self, client: redis.Redis, settings: Settings, rules: RuleSet | None = None):
        self.client = client
        self.settings = settings
        self.rules = rules or load_rules(settings.rules_dir, timezone=settings.timezone)
        assert not self.rules.errors, self.rules.errors
        self.keys = Keys(settings.key_prefix)
        self.publisher = Publisher(client, self.rules.catalog, settings.timezone, settings.stream_shards,
                                   settings.key_prefix)
        self.evaluator = Evaluator(client, settings, lambda: self.rules)
        self.composer = Composer(client, settings, lambda: self.rules)
        self.dispatcher = Dispatcher(client, settings)
        self.delivery = Delivery(settings, lambda: self.rules)

    def publish(self, *events: dict[str, Any]) -> None:
        report = self.publisher.publish(*events)
        assert report.ok, report.errors

    def evaluate(self) -> list[Alert]:
        self.evaluator.maintain_leases(force=True)
        alerts: list[Alert] = []
        for _ in range(10_000):
            r = self.evaluator.step()
            alerts.extend(r.alerts)
            if not r.events and not self.evaluator.needs_pending:
                break
        return alerts + self.composer.step()

    def flush(self) -> list[Alert]:
        """The event-time stage's step as if every waiting time had outlived the grace."""
        return self.composer.step(now=float("inf"))

    def dispatch(self) -> int:
        n = 0
        while True:
            got = self.dispatcher.step(block_ms=1)
            n += got
            if not got and not self.dispatcher.read_pending:
                return n

    def deliver(self) -> None:
        DeliveryWorker(make_queues(self.client, self.settings), connection=self.client,
                       delivery=self.delivery).work(burst=True, logging_level="WARNING")

    def run(self, *events: dict[str, Any]) -> list[Alert]:
        self.publish(*events)
        alerts = self.evaluate()
        self.dispatch()
        self.deliver()
        return alerts

    def alert_stream(self) -> list[dict[str, Any]]:
        return stream_alerts(self.client, self.keys.alerts)


def stream_alerts(client: redis.Redis, key: str = "alerts:alerts") -> list[dict[str, Any]]:
    """Every alert in the alert stream, in order (entries hold up to 100 alerts each)."""
    return [a.to_dict() for _, fields in stream_entries(client, key) for a in read_alerts(fields)]


def streams_drained(client: redis.Redis, shards: int, keys: Keys | None = None) -> bool:
    """Every event on every shard delivered to the evaluators' group and acknowledged."""
    keys = keys or Keys()
    for s in range(shards):
        stream = keys.events(s)
        if not client.exists(stream):
            continue
        groups = {g["name"].decode(): g for g in client.xinfo_groups(stream)}
        g = groups.get(EVALUATOR_GROUP)
        last = client.xinfo_stream(stream)["last-generated-id"]
        if g is None or g["pending"] or g["last-delivered-id"] != last:
            return False
    return True


def quote(price: float, day: str, product: str = "Pr-Nd oxide", unit: str = "CNY/t", **kw: Any) -> dict[str, Any]:
    return {"type": "price", "product": product, "price": price, "unit": unit, "as_of": day, "source": "smm", **kw}


#: One news rule to a Slack channel: the rule the delivery and metrics tests fire with ``licence_news``.
LICENCE_RULES = """
rules:
  - id: licences
    news: {any: [export licen*]}
    notify: [slack:#desk]
"""


def licence_news(n: int) -> dict[str, object]:
    """News event ``n`` that LICENCE_RULES fires on."""
    return {"type": "news", "id": f"n{n}", "headline": f"Export licences, round {n}", "source": "smm"}
