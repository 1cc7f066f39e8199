"""The poll role takes up products added in the rule files while it runs, as the evaluators do: a real Poller
against a local feed server, on its own and with the process's watched rule set (``alerts run`` and ``alerts
worker``); quotes of a product no rule file names are refused until a rules file adds it, then published; an edit
that breaks the rule files leaves the last good products in force."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from alerts.catalog import Catalog
from alerts.events import PriceEvent
from alerts.rules.reload import RuleHolder
from alerts.settings import Settings
from alerts.store import sources as store
from alerts.store.keys import Keys
from tests.feed_server import FeedServer, Route
from tests.servers import wait_for
from tests.test_feeds import stream_events
from workers.roles.poller import Poller

QUOTES = [{"name": "yttrium oxide", "avg": 44_000, "unit": "CNY/t", "date": "2025-03-11"},
          {"name": "Pr-Nd oxide", "avg": 444_000, "unit": "CNY/t", "date": "2025-03-11"}]
RULES = "rules:\n  - {id: prnd, price: {product: Pr-Nd oxide, above: 450000 CNY/t}, notify: [console]}\n"
YTTRIUM = "products:\n  - {name: yttrium oxide, unit: CNY/t, aliases: [Y oxide]}\n"


def products(client: redis.Redis) -> list[str]:
    return [e.product for e in stream_events(client) if isinstance(e, PriceEvent)]


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


@pytest.mark.parametrize("watched", [False, True], ids=["own-rules", "the-process-rules"])
def test_a_product_added_to_a_rules_file_is_polled_without_a_restart(
        settings: Settings, client: redis.Redis, feed: FeedServer, rules_dir: Path, tmp_path: Path,
        watched: bool) -> None:
    (rules_dir / "prices.yaml").write_text(RULES)
    feed.routes["/q"] = Route(json.dumps(QUOTES).encode())
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - {{name: v, kind: json, url: '{feed.url('/q')}', every: 1s,"
                       " map: {product: name, price: avg, unit: unit, as_of: date}}\n")
    s = settings.model_copy(update={"sources_file": sources})
    stop = threading.Event()
    threads = []
    catalog = None
    if watched:  # as workers.service runs it: one RuleHolder per process, watched by its own thread
        holder = RuleHolder(s.rules_dir, s.timezone)
        threads.append(threading.Thread(target=holder.watch, args=(stop,), daemon=True))

        def catalog_now() -> Catalog:
            return holder.current().catalog

        catalog = catalog_now
    poller = Poller(client, s, catalog)
    threads.append(threading.Thread(target=poller.run, args=(stop,), daemon=True))
    for t in threads:
        t.start()
    keys = Keys(s.key_prefix)
    try:
        wait_for(lambda: len(feed.seen("/q")) >= 2, 20, "two polls")
        assert products(client) == ["Pr-Nd oxide"]  # yttrium: no such product yet
        assert store.read_status(client, keys, ["v"])["v"].failures == 0

        (rules_dir / "broken.yaml").write_text("rules:\n  - {id: x, price: {product: nope, above: 1}, notify: [c]}\n"
                                               + YTTRIUM)
        polled = len(feed.seen("/q"))
        wait_for(lambda: len(feed.seen("/q")) >= polled + 3, 20, "three more polls")
        # a broken edit is refused, for the pollers as for the evaluators: nothing of it is taken
        assert products(client) == ["Pr-Nd oxide"]

        (rules_dir / "broken.yaml").unlink()
        (rules_dir / "products.yaml").write_text(YTTRIUM)
        wait_for(lambda: "yttrium oxide" in products(client), 20,
                 "the yttrium quote published once the rules file adds the product")
        assert sorted(products(client)) == ["Pr-Nd oxide", "yttrium oxide"]
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not any(t.is_alive() for t in threads)
