"""The quote sanity check at every door (publish, POST /events, import, the pollers, articles), the quarantine
(``alerts quotes held|release|drop``), and what status and the metrics say of it. Real Redis, real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
import redis
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.events import PriceEvent, decode_wire
from alerts.ingest.poll import poll
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from alerts.store.quotes import held_quotes
from alerts.store.streams import WIRE_FIELD
from tests.conftest import env_for
from tests.feed_server import FeedServer, Route
from tests.pipeline import Pipeline, quote
from tests.servers import wait_for, write_rules
from tests.test_feeds import json_source
from workers.web.http import HttpServer, make_app

TOKEN = "quote-doors-token"
DY_GOOD = quote(1705, "2025-03-11", product="Dy oxide", unit="CNY/kg")
DY_PER_T = quote(1705, "2025-03-12", product="Dy oxide", unit="CNY/t")  # a per-kg price written per tonne


def cli(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env_for(settings), input=stdin,
                          capture_output=True, text=True, check=False, timeout=120)


def quotes_on_streams(client: redis.Redis, shards: int) -> list[PriceEvent]:
    out = []
    for shard in range(shards + 1):
        for _id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(f"alerts:events:{shard}")):
            ev = decode_wire(fields[WIRE_FIELD.encode()])
            if isinstance(ev, PriceEvent):
                out.append(ev)
    return out


def committed_reference(client: redis.Redis, settings: Settings) -> None:
    """Dy oxide at 1,705 CNY/kg, published and evaluated: the state every later publish call reads."""
    write_rules(settings.rules_dir, "rules: []\n")
    p = Pipeline(client, settings)
    p.publish(DY_GOOD)
    p.evaluate()


def test_publish_holds_a_per_kg_product_written_per_tonne_and_the_quarantine_releases_it(
        client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    f.write_text(json.dumps(DY_GOOD) + "\n" + json.dumps(DY_PER_T) + "\n"
                 + json.dumps({**DY_PER_T, "as_of": "2025-03-13", "override": True}) + "\n")
    proc = cli(settings, "publish", str(f))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{f}:2: held (h-"), proc.stderr
    assert "1,705 CNY/t is 1,000x below dysprosium oxide's last 1,705 CNY/kg (smm): a per-kg price?" in lines[0]
    assert "published 2 events, 1 quotes held by the sanity check" in proc.stdout
    assert sorted(e.as_of_date for e in quotes_on_streams(client, settings.stream_shards)) == \
        ["2025-03-11", "2025-03-13"]  # the override went through; the held one did not

    listed = cli(settings, "quotes", "held", "--format", "json")
    held = json.loads(listed.stdout)
    assert len(held) == 1 and held[0]["product"] == "dysprosium oxide" and held[0]["price"] == pytest.approx(1.705)
    assert held[0]["via"] == "publish" and held[0]["where"] == f"{f}: line 2"
    text = cli(settings, "quotes", "held").stdout
    assert held[0]["id"] in text and "a per-kg price?" in text

    status = cli(settings, "status", "--format", "json")
    assert json.loads(status.stdout)["held"]["count"] == 1

    released = cli(settings, "quotes", "release", held[0]["id"])
    assert released.returncode == 0 and "released: dysprosium oxide 1.705 CNY/kg on 2025-03-12" in released.stdout
    assert len(quotes_on_streams(client, settings.stream_shards)) == 3
    assert held_quotes(client, Keys()) == []
    again = cli(settings, "quotes", "release", held[0]["id"])
    assert again.returncode == 1 and "not in the quarantine" in again.stderr


def test_a_later_publish_call_is_checked_against_the_committed_state_and_drop_discards(
        client: redis.Redis, settings: Settings) -> None:
    committed_reference(client, settings)
    proc = cli(settings, "publish", "-", stdin=json.dumps(quote(17.05, "2025-03-12", product="Dy oxide",
                                                                unit="CNY/kg")) + "\n")
    assert proc.returncode == 1 and "held (h-" in proc.stderr, proc.stderr
    assert "17.05 CNY/kg is 100x below dysprosium oxide's last 1,705 CNY/kg (smm): not a price of this product?" \
        in proc.stderr, proc.stderr
    [h] = held_quotes(client, Keys())
    dropped = cli(settings, "quotes", "drop", "--all")
    assert dropped.returncode == 0 and f"{h.id}: dropped" in dropped.stdout
    assert held_quotes(client, Keys()) == []
    assert len(quotes_on_streams(client, settings.stream_shards)) == 1  # the first only
    log = [json.loads(x) for x in client.lrange("alerts:held:log", 0, -1)]
    assert [e["action"] for e in log] == ["drop"]


@pytest.fixture
def http_app(client: redis.Redis, settings: Settings) -> Iterator[str]:
    s = settings.model_copy(update={"ingest_token": SecretStr(TOKEN)})
    http = HttpServer(make_app(client, s, builtin_catalog), s).start()
    url = f"http://127.0.0.1:{http.port}"
    wait_for(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 10, "the HTTP app")
    yield url
    http.stop()


def test_post_events_answers_400_with_the_held_item(client: redis.Redis, http_app: str) -> None:
    body = json.dumps([DY_GOOD, quote(44.4, "2025-03-12", product="Pr-Nd oxide"),
                       quote(444_000, "2025-03-12", product="Pr-Nd oxide")])
    r = httpx.post(f"{http_app}/events", content=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 400
    answer = r.json()
    assert answer["accepted"] == 2 and answer["held"] == 1 and answer["errors"][0]["item"] == 2
    assert "44.4 CNY/t is about 10,000x below" in answer["errors"][0]["error"]
    assert "万元" in answer["errors"][0]["error"]
    [h] = held_quotes(client, Keys())
    assert h.via == "http" and h.where == "item 2"
    metrics = httpx.get(f"{http_app}/metrics", timeout=10).text
    assert 'alerts_quotes_held_total{via="http"} 1.0' in metrics
    assert "alerts_quotes_in_quarantine 1.0" in metrics


def test_import_holds_the_row_and_names_its_line(client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    write_rules(settings.rules_dir, "rules: []\n")
    f = tmp_path / "history.csv"
    f.write_text("as_of,product,price,unit,override\n2025-03-10,Dy oxide,1700,CNY/kg,\n2025-03-11,Dy oxide,1705,"
                 "CNY/t,\n2025-03-12,Dy oxide,1710,CNY/kg,\n2025-03-13,Dy oxide,3000,CNY/kg,yes\n"
                 "2025-03-14,Dy oxide,3010,CNY/kg,maybe\n")
    proc = cli(settings, "import", str(f))
    assert proc.returncode == 1
    errs = proc.stderr.splitlines()
    assert errs[0].startswith(f"{f}:3: held (h-") and "a per-kg price?" in errs[0], proc.stderr
    assert errs[1].startswith(f"{f}:6: override: must be true or false"), proc.stderr
    assert "3 quotes imported as history" in proc.stdout and "1 bad rows, 1 held by the sanity check" in proc.stdout
    [h] = held_quotes(client, Keys())
    assert h.via == "import" and h.event.history and h.where == f"{f}: line 3"


def test_a_poller_reports_the_held_item_as_refused(client: redis.Redis, settings: Settings) -> None:
    committed_reference(client, settings)
    feed = FeedServer()
    try:
        items = [{"name": "Dy oxide", "avg": 1705, "unit": "CNY/t", "date": "2025-03-12"},
                 {"name": "Dy oxide", "avg": 1712, "unit": "CNY/kg", "date": "2025-03-13"}]
        feed.routes["/p"] = Route(json.dumps(items).encode())
        with httpx.Client() as http:
            result = poll(client, http, json_source(feed.url("/p")), Publisher.from_settings(client, settings))
    finally:
        feed.stop()
    assert len(result.published) == 1 and len(result.rejected) == 1
    assert "held (h-" in result.rejected[0][1] and "a per-kg price?" in result.rejected[0][1]
    [h] = held_quotes(client, Keys())
    assert h.where.startswith("source vendor-prices")


def test_an_article_quote_far_from_the_last_is_held(client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    write_rules(settings.rules_dir, "rules: []\n")
    p = Pipeline(client, settings)
    p.publish(quote(7000, "2025-03-11", product="Tb oxide", unit="CNY/kg"))
    p.evaluate()
    article = tmp_path / "article.txt"
    article.write_text("Terbium oxide was quoted at 2,500 yuan/kg on March 12, 2025, traders said.\n")
    proc = cli(settings, "ingest", "article", str(article), "--date", "2025-03-12")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "quote 1: held (h-" in proc.stderr and "fall from terbium oxide's last 7,000 CNY/kg" in proc.stderr
    assert [h.via for h in held_quotes(client, Keys())] == ["publish"]


def test_quotes_latest_shows_each_vendor_and_its_freshness(client: redis.Redis, settings: Settings) -> None:
    write_rules(settings.rules_dir, "rules: []\n")
    p = Pipeline(client, settings)
    p.publish(DY_GOOD, {**DY_GOOD, "source": "fastmarkets", "price": 1690, "as_of": "2025-03-12"},
              quote(444_000, "2025-03-11"))
    p.evaluate()
    rows = json.loads(cli(settings, "quotes", "latest", "--format", "json").stdout)
    assert [(r["product"], r["source"], r["price"], r["as_of"], r["stale"]) for r in rows] == [
        ("dysprosium oxide", "fastmarkets", 1690.0, "2025-03-12", True),
        ("dysprosium oxide", "smm", 1705.0, "2025-03-11", True),
        ("Pr-Nd oxide", "smm", 444_000.0, "2025-03-11", True)]
    text = cli(settings, "quotes", "latest", "--product", "Dy oxide").stdout.splitlines()
    assert text[0].startswith("dysprosium oxide  fastmarkets  1,690 CNY/kg  2025-03-12") and text[0].endswith("STALE")
    assert len(text) == 2
