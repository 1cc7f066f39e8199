"""Feed pollers against a real HTTP server on 127.0.0.1: JSON, CSV, RSS 2.0 and Atom; conditional requests;
errors, slow and malformed and oversized answers; secrets kept out of every message; ``alerts poll --once``; the
poll role's loop sharing sources and surviving failures (the sources file's checks: tests/test_sources_file.py)."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis

from alerts.events import Event, NewsEvent, PriceEvent, decode_wire
from alerts.ingest.feeds import Validators
from alerts.ingest.poll import JITTER_FLOOR, PollResult, backoff, poll
from alerts.ingest.sources import Source, parse_sources
from alerts.settings import Settings
from alerts.store import sources as store
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from alerts.store.streams import WIRE_FIELD
from tests.conftest import env_for
from tests.feed_server import FeedServer, Route
from tests.servers import wait_for
from workers.cli import common
from workers.cli import main as cli
from workers.roles.poller import Poller, make_publisher, poll_now

PRICES = [
    {"name": "Pr-Nd oxide", "avg": "444,000", "unit": "CNY/t", "date": "2025-03-11", "low": 440000, "high": 448000},
    {"name": "terbium oxide", "avg": 6525, "unit": "CNY/kg", "date": "2025-03-11"},
]
RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Rare earth news</title><link>https://news.example/</link>
<item><title>Large magnet makers obtain export licences</title>
<link>https://news.example/a/1</link><guid isPermaLink="false">story-1</guid>
<description>&lt;p&gt;Several &lt;b&gt;magnet&lt;/b&gt; makers said &amp;amp; confirmed.&lt;/p&gt;</description>
<pubDate>Tue, 11 Mar 2025 08:00:00 GMT</pubDate></item>
<item><title>Myanmar border crossing closed</title><link>https://news.example/a/2</link>
<pubDate>Wed, 12 Mar 2025 09:30:00 GMT</pubDate></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Desk feed</title><id>urn:desk</id>
<updated>2025-03-12T10:00:00Z</updated>
<entry><title>China tightens rare earth export controls</title><id>urn:uuid:1225c695-cfb8</id>
<link href="https://desk.example/e/1"/><updated>2025-03-12T10:00:00Z</updated>
<content type="html">&lt;div&gt;Seven medium and heavy rare earths added.&lt;/div&gt;</content></entry>
</feed>"""


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.stop()


@pytest.fixture
def publisher(client: redis.Redis, settings: Settings) -> Publisher:
    return make_publisher(client, settings)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


def source(text: str, env: dict[str, str] | None = None) -> Source:
    sources = parse_sources(text, "sources.yaml", env or {})
    assert not sources.problems, sources.problems
    assert len(sources.sources) == 1
    return sources.sources[0]


def json_source(url: str, extra: str = "") -> Source:
    return source(f"""
sources:
  - name: vendor-prices
    kind: json
    url: {url}
    every: 15m
    map: {{product: name, price: avg, unit: unit, as_of: date, low: low, high: high}}
{extra}""")


def stream_events(client: redis.Redis, shards: int = 4) -> list[Event]:
    out: list[Event] = []
    for shard in range(shards + 1):
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(f"alerts:events:{shard}"))
        out.extend(decode_wire(fields[WIRE_FIELD.encode()]) for _id, fields in entries)
    return out


def test_json_feed_with_map_publishes_quotes_and_an_etag_304_publishes_nothing(
        client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer) -> None:
    feed.routes["/prices"] = Route(json.dumps(PRICES).encode(), etag='"v1"')
    src = json_source(feed.url("/prices"))
    first = poll(client, http, src, publisher)
    assert first.error is None and not first.rejected
    quotes = sorted((e.product, e.price, e.unit, e.low, e.high, e.source) for e in first.published
                    if isinstance(e, PriceEvent))
    assert quotes == [("Pr-Nd oxide", 444000.0, "CNY/t", 440000.0, 448000.0, "vendor-prices"),
                      ("terbium oxide", 6525.0, "CNY/kg", None, None, "vendor-prices")]
    assert len(stream_events(client)) == 2
    st_ = store.read_status(client, publisher.keys, ["vendor-prices"])["vendor-prices"]
    assert st_.etag == '"v1"' and st_.last_published == 2 and st_.failures == 0
    second = poll(client, http, src, publisher, validators=Validators(st_.etag, st_.last_modified))
    assert second.not_modified and second.published == []
    assert feed.seen("/prices")[-1].headers["if-none-match"] == '"v1"'
    assert len(stream_events(client)) == 2


def test_last_modified_is_sent_back(client: redis.Redis, publisher: Publisher, http: httpx.Client,
                                    feed: FeedServer) -> None:
    stamp = "Tue, 11 Mar 2025 08:00:00 GMT"
    feed.routes["/p"] = Route(json.dumps(PRICES).encode(), last_modified=stamp)
    src = json_source(feed.url("/p"))
    poll(client, http, src, publisher)
    st_ = store.read_status(client, publisher.keys, [src.name])[src.name]
    assert st_.last_modified == stamp and st_.etag is None
    again = poll(client, http, src, publisher, validators=Validators(st_.etag, st_.last_modified))
    assert again.not_modified
    assert feed.seen("/p")[-1].headers["if-modified-since"] == stamp


def test_a_feed_read_again_publishes_only_new_items(client: redis.Redis, publisher: Publisher,
                                                    http: httpx.Client, feed: FeedServer) -> None:
    feed.routes["/p"] = Route(json.dumps(PRICES).encode())  # no validators: the body comes every time
    src = json_source(feed.url("/p"))
    assert len(poll(client, http, src, publisher).published) == 2
    again = poll(client, http, src, publisher)
    assert again.published == [] and again.already == 2
    more = [*PRICES, {"name": "Dy oxide", "avg": 1665, "unit": "CNY/kg", "date": "2025-03-12"}]
    feed.routes["/p"] = Route(json.dumps(more).encode())
    third = poll(client, http, src, publisher)
    assert [e.product for e in third.published if isinstance(e, PriceEvent)] == ["dysprosium oxide"]
    assert third.already == 2
    assert len(stream_events(client)) == 3


def test_json_items_path_defaults_and_bad_items_cost_nothing_valid(
        client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer) -> None:
    doc = {"data": {"prices": [
        {"sku": "Pr-Nd oxide", "quote": {"avg": 450000}, "day": "2025-03-12"},
        {"sku": "unobtainium", "quote": {"avg": 1}, "day": "2025-03-12"},
        {"sku": "Pr-Nd oxide", "quote": {"avg": "cheap"}, "day": "2025-03-13"},
        "not an object",
        {"sku": "Pr-Nd oxide", "quote": {"avg": 452000}, "day": "2025-03-13"},
    ]}}
    feed.routes["/v"] = Route(json.dumps(doc).encode())
    src = source(f"""
sources:
  - name: nested
    kind: json
    url: {feed.url('/v')}
    every: 1h
    items: data.prices
    map: {{product: sku, price: quote.avg, as_of: day}}
    defaults: {{unit: CNY/t}}
""")
    r = poll(client, http, src, publisher)
    assert r.error is None
    assert sorted(e.price for e in r.published if isinstance(e, PriceEvent)) == [450000.0, 452000.0]
    assert [w for w, _ in r.rejected] == ["item 2", "item 3", "item 4"]
    assert "unobtainium" in r.rejected[0][1]
    assert "price" in r.rejected[1][1]
    assert "object" in r.rejected[2][1]


def test_json_items_without_a_map_are_events_in_the_publish_format(
        client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer) -> None:
    items = [{"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", "as_of": "2025-03-11"},
             {"type": "news", "headline": "Quota cut", "id": "n1", "published_at": "2025-03-11T08:00:00Z"}]
    feed.routes["/e"] = Route("\n".join(json.dumps(i) for i in items).encode())  # JSON Lines is not a document
    src = source(f"sources:\n  - {{name: events, kind: json, url: '{feed.url('/e')}', every: 5m}}\n")
    bad = poll(client, http, src, publisher)
    assert bad.error is not None and "not JSON" in bad.error
    feed.routes["/e"] = Route(json.dumps(items).encode())
    ok = poll(client, http, src, publisher)
    assert ok.error is None and sorted(type(e).__name__ for e in ok.published) == ["NewsEvent", "PriceEvent"]


def test_csv_feed(client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer) -> None:
    body = (b"Product,Average,Date\n"
            b"Pr-Nd oxide,\"444,000\",2025-03-11\n"
            b"Pr-Nd oxide,,2025-03-12\n"
            b"terbium oxide,6525,2025-03-11,extra\n"
            b"\n"
            b"Pr-Nd oxide,446000,2025-03-12\n")
    feed.routes["/c.csv"] = Route(body, content_type="text/csv")
    src = source(f"""
sources:
  - name: csv-vendor
    kind: csv
    url: {feed.url('/c.csv')}
    every: 1d
    map: {{product: product, price: average, as_of: date}}
    defaults: {{unit: CNY/t}}
""")
    r = poll(client, http, src, publisher)
    assert r.error is None
    assert [(e.price, e.as_of_date) for e in r.published if isinstance(e, PriceEvent)] == [
        (444000.0, "2025-03-11"), (446000.0, "2025-03-12")]
    assert [w for w, _ in r.rejected] == ["CSV line 3", "CSV line 4"]
    assert "4 fields" in r.rejected[1][1]


@pytest.mark.parametrize(("body", "expected"), [
    (RSS, [("rss:story-1", "Large magnet makers obtain export licences", "Several magnet makers said & confirmed.",
            "https://news.example/a/1", "2025-03-11T08:00:00"),
           ("rss:https://news.example/a/2", "Myanmar border crossing closed", "", "https://news.example/a/2",
            "2025-03-12T09:30:00")]),
    (ATOM, [("rss:urn:uuid:1225c695-cfb8", "China tightens rare earth export controls",
             "Seven medium and heavy rare earths added.", "https://desk.example/e/1", "2025-03-12T10:00:00")]),
], ids=["rss2", "atom"])
def test_rss_and_atom_items_become_news_events(client: redis.Redis, publisher: Publisher, http: httpx.Client,
                                               feed: FeedServer, body: bytes,
                                               expected: list[tuple[str, ...]]) -> None:
    feed.routes["/feed"] = Route(body, content_type="application/rss+xml", etag='"r1"')
    src = source(f"sources:\n  - {{name: rss, kind: rss, url: '{feed.url('/feed')}', every: 10m, tags: [news]}}\n")
    r = poll(client, http, src, publisher)
    assert r.error is None and not r.rejected
    got = [(e.id, e.headline, e.body, e.url, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(e.published_at)))
           for e in r.published if isinstance(e, NewsEvent)]
    assert got == expected
    assert all(isinstance(e, NewsEvent) and e.tags == ("news",) and e.source == "rss" for e in r.published)
    assert poll(client, http, src, publisher).published == []  # no validators passed: the seen ids


@pytest.mark.parametrize(("route", "fragment"), [
    (Route(status=500), "HTTP 500"),
    (Route(status=404), "HTTP 404"),
    (Route(b"[1, 2", ), "not JSON"),
    (Route(b'{"prices": []}'), "expected a list"),
    (Route(b"x" * 5000), "more than the limit of 4,096 bytes"),
    (Route(b"x" * 5000, no_length=True), "more than the limit of 4,096 bytes"),
    (Route(b"[]", delay=2.0), "no answer within 0.5 s"),
    (Route(b"\xff\xfe[]"), "not UTF-8"),
], ids=["500", "404", "malformed", "no-list", "oversized", "oversized-unannounced", "slow", "not-utf8"])
def test_a_failed_poll_is_recorded_with_why_and_backs_off(client: redis.Redis, publisher: Publisher,
                                                          http: httpx.Client, feed: FeedServer, route: Route,
                                                          fragment: str) -> None:
    feed.routes["/bad"] = route
    src = source(f"""
sources:
  - {{name: bad, kind: json, url: '{feed.url('/bad')}', every: 10m, timeout: 0.5s, max_bytes: 4096}}
""")
    before = time.time()
    r = poll(client, http, src, publisher)
    assert r.error is not None and fragment in r.error, r.error
    assert r.published == []
    st_ = store.read_status(client, publisher.keys, ["bad"])["bad"]
    assert st_.failures == 1 and st_.last_error == r.error and st_.last_success is None
    assert before + 600 * JITTER_FLOOR - 1 <= st_.due <= time.time() + 600
    assert stream_events(client) == []


def test_not_a_feed(client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer) -> None:
    feed.routes["/x"] = Route(b"<html><body>Sign in</body></html>", content_type="text/html")
    src = source(f"sources:\n  - {{name: x, kind: rss, url: '{feed.url('/x')}', every: 1h}}\n")
    r = poll(client, http, src, publisher)
    assert r.error is not None and "not an RSS or Atom feed" in r.error


def test_retry_after_and_backoff_grow_with_jitter(client: redis.Redis, publisher: Publisher,
                                                  http: httpx.Client, feed: FeedServer) -> None:
    feed.routes["/busy"] = Route(status=429, headers={"Retry-After": "1800"})
    src = source(f"sources:\n  - {{name: busy, kind: json, url: '{feed.url('/busy')}', every: 1m}}\n")
    r = poll(client, http, src, publisher)
    assert r.error is not None and "429" in r.error and r.next_due - time.time() > 1790
    rng = random.Random(7)
    waits = [[backoff(src, n, rng) for _ in range(200)] for n in (1, 2, 3, 10)]
    assert all(30 <= w <= 60 for w in waits[0]) and all(60 <= w <= 120 for w in waits[1])
    assert all(120 <= w <= 240 for w in waits[2]) and all(1800 <= w <= 3600 for w in waits[3])
    assert len({round(w, 3) for w in waits[0]}) > 100  # jitter: sources failing together spread out


def test_headers_from_the_environment_are_sent_and_never_shown(
        client: redis.Redis, publisher: Publisher, http: httpx.Client, feed: FeedServer,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-vendor-token-value"
    feed.routes["/auth?key=" + secret] = Route(status=503)
    src = source(f"""
sources:
  - name: private
    kind: json
    url: {feed.url('/auth')}?key=${{VENDOR_KEY}}
    every: 15m
    headers: {{Authorization: "Bearer ${{VENDOR_TOKEN}}"}}
""", env={"VENDOR_TOKEN": secret, "VENDOR_KEY": secret})
    common.setup_logging(verbose=True)  # the service's logging, at its most talkative
    with caplog.at_level(logging.DEBUG):
        r = poll(client, http, src, publisher)
    assert feed.requests[-1].headers["authorization"] == f"Bearer {secret}"
    assert feed.requests[-1].path == "/auth?key=" + secret
    assert r.error is not None and "HTTP 503" in r.error
    stored = client.hgetall(store.source_key(publisher.keys, "private"))
    shown = [r.error, repr(src), str(src), caplog.text, repr(stored)]
    assert all(secret not in text for text in shown)
    assert "${VENDOR_KEY}" in r.error  # the url as written


def test_connection_errors_do_not_leak_the_url_secret(client: redis.Redis, publisher: Publisher,
                                                      http: httpx.Client) -> None:
    secret = "t0ps3cr3t"
    src = source("sources:\n  - {name: gone, kind: json, url: 'http://127.0.0.1:9/${K}/p', every: 1m}\n",
                 env={"K": secret})
    r = poll(client, http, src, publisher)
    assert r.error is not None and secret not in r.error and "${K}" in r.error


def test_poll_once_prints_what_it_published(settings: Settings, feed: FeedServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, client: redis.Redis,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    feed.routes["/prices"] = Route(json.dumps(PRICES).encode(), etag='"a"')
    path = tmp_path / "sources.yaml"
    path.write_text(f"""
sources:
  - name: vendor-prices
    kind: json
    url: {feed.url('/prices')}
    every: 15m
    map: {{product: name, price: avg, unit: unit, as_of: date}}
""")
    for k, v in env_for(settings, ALERTS_SOURCES_FILE=str(path)).items():
        monkeypatch.setenv(k, v)
    assert cli.main(["poll", "--once", "vendor-prices"]) == 0
    out = capsys.readouterr().out
    assert "vendor-prices: price Pr-Nd oxide 444,000 CNY/t (low 440,000, high 448,000) as of 2025-03-11" in out
    assert "vendor-prices: published 2 events, 0 already published" in out
    assert cli.main(["poll", "--once", "vendor-prices"]) == 0
    assert "not modified since the last poll (HTTP 304): nothing published" in capsys.readouterr().out
    assert cli.main(["poll", "--once", "nope"]) == 2
    assert "no source 'nope' to poll" in capsys.readouterr().err
    feed.routes["/prices"] = Route(status=500)
    client.delete(store.source_key(Keys(), "vendor-prices"))
    assert cli.main(["poll", "--once", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["source"] == "vendor-prices" and "HTTP 500" in doc[0]["error"]


def test_the_poll_role_polls_due_sources_and_a_failing_one_never_stops_the_others(
        settings: Settings, client: redis.Redis, feed: FeedServer, tmp_path: Path) -> None:
    feed.routes["/good"] = Route(json.dumps(PRICES).encode())
    feed.routes["/hung"] = Route(b"[]", delay=5.0)
    path = tmp_path / "sources.yaml"
    path.write_text(f"""
sources:
  - {{name: good, kind: json, url: '{feed.url('/good')}', every: 1s,
     map: {{product: name, price: avg, unit: unit, as_of: date}}}}
  - {{name: refused, kind: json, url: 'http://127.0.0.1:9/x', every: 1s}}
  - {{name: hung, kind: json, url: '{feed.url('/hung')}', every: 1s, timeout: 3s}}
  - {{name: broken, kind: xml, url: 'http://127.0.0.1:9/x', every: 1s}}
""")
    s = settings.model_copy(update={"sources_file": path})
    pollers = [Poller(client, s), Poller(client, s)]  # two processes' worth: they share the sources
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in pollers]
    for t in threads:
        t.start()
    try:
        keys = Keys(s.key_prefix)
        wait_for(lambda: len(stream_events(client)) == 2, 10, "the good source's quotes")
        wait_for(lambda: len(feed.seen("/good")) >= 3, 10, "the good source polled every second")
        status = store.read_status(client, keys, ["good", "refused", "hung"])
        assert status["refused"].failures >= 1 and status["refused"].last_error
        assert status["good"].failures == 0 and status["good"].last_success is not None
        assert len(feed.seen("/hung")) == 1  # still waiting for its one answer, alone
        # two pollers, yet each source is polled by one at a time: no duplicate events
        assert len(stream_events(client)) == 2
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not any(t.is_alive() for t in threads)


def test_poll_now_respects_another_pollers_lock(settings: Settings, client: redis.Redis, feed: FeedServer) -> None:
    feed.routes["/p"] = Route(json.dumps(PRICES).encode())
    src = json_source(feed.url("/p"))
    assert store.take_lock(client, Keys(), src.name, "someone-else", 30)
    r: PollResult = poll_now(client, settings, src)
    assert r.error is not None and "another poller" in r.error and feed.requests == []


def test_alerts_worker_role_poll_runs_the_pollers(settings: Settings, client: redis.Redis, feed: FeedServer,
                                                   tmp_path: Path) -> None:
    feed.routes["/p"] = Route(json.dumps(PRICES).encode(), etag='"1"')
    path = tmp_path / "sources.yaml"
    missing = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--role", "poll"],
                             env=env_for(settings, ALERTS_SOURCES_FILE=str(path)), capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"alerts: --role poll: the sources file {path} (ALERTS_SOURCES_FILE, from {Path.cwd()}) does not exist"]
    path.write_text(f"sources:\n  - {{name: v, kind: json, url: '{feed.url('/p')}', every: 1h,"
                    " map: {product: name, price: avg, as_of: date}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "poll"],
                            env=env_for(settings, ALERTS_SOURCES_FILE=str(path)), stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(stream_events(client)) == 2, 30, "the worker's poller to publish")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "source v: 2 new events published" in err
