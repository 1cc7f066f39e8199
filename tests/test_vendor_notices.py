"""Vendor notices end to end: the ``notice`` event at every door (``alerts publish``, POST /events, a json feed),
refused with one clear message each; the ``vendor_notice`` rule kind and the default routing to the targets of the
rules that read the products (one message per target per notice, once per notice id) live, in the stored-history
backtest (same alerts) and in ``rules explain``; ``alerts status`` naming the discontinued series rules still read
and the freshness of each product per vendor."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.errors import EventError
from alerts.evaluate.backtest import run_backtest
from alerts.evaluate.notices import DEFAULT_RULE_ID, rule_vendors, watching
from alerts.events import NoticeEvent, decode_wire, encode_wire, parse_event
from alerts.events.limits import MAX_NOTICE_PRODUCTS, MAX_NOTICE_TEXT
from alerts.ingest.poll import poll
from alerts.ingest.sources import parse_sources
from alerts.rules.load import load_rules
from alerts.rules.models import PriceCondition
from alerts.settings import Settings
from alerts.store.history import stored_events
from alerts.store.keys import Keys
from alerts.store.notices import stored_notices
from alerts.store.streams import WIRE_FIELD
from tests.conftest import env_for
from tests.feed_server import FeedServer, Route
from tests.pipeline import Pipeline
from tests.servers import wait_for, write_rules
from tests.streams import stream_entries
from workers.cli import main as cli
from workers.cli.status import collect, render
from workers.roles.poller import make_publisher
from workers.web.http import HttpServer, make_app

TZ = "Asia/Shanghai"
CAT = builtin_catalog()
TOKEN = "notice-token"
NOTICE: dict[str, Any] = {"type": "notice", "source": "smm", "kind": "discontinued", "products": ["Dy oxide"],
                          "effective": "2025-08-01", "text": "SMM stops assessing Dy oxide 99.5%",
                          "url": "https://smm.example/n/1", "published_at": "2025-07-01T09:00:00+08:00"}
RULES = """
rules:
  - id: dy-1700
    price: {product: Dy oxide, above: 1700}
    notify: [slack:#heavy-re, console]
  - id: dy-move
    price:
      product: dysprosium oxide
      change_pct: {over: 30d, abs_above: 5}
    notify: [slack:#heavy-re, slack:#desk]
  - id: tb-stale
    stale: {product: Tb oxide, after: 3 business days}
    notify: [slack:#ops]
  - id: dy-news
    news: {products: [Dy oxide], any: [dysprosium]}
    notify: [slack:#news]
  - id: smm-dy-changes
    vendor_notice: {products: [Dy oxide], kinds: [discontinued, methodology], sources: [SMM]}
    notify: [slack:#heavy-re]
    severity: critical
"""


def at(day: str, hhmm: str = "09:00") -> float:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=ZoneInfo(TZ)).timestamp()


# --- the event ----------------------------------------------------------------------------------------------------

def test_a_notice_is_typed_once_and_goes_on_the_wire() -> None:
    ev = parse_event({**NOTICE, "products": ["Dy oxide", "dysprosium oxide", "Tb oxide"]}, CAT, TZ)
    assert isinstance(ev, NoticeEvent)
    assert ev.products == ("dysprosium oxide", "terbium oxide") and ev.kind == "discontinued"
    assert ev.effective_date == "2025-08-01" and ev.effective == at("2025-08-01", "00:00")
    assert ev.published_at == at("2025-07-01") and ev.source == "smm" and ev.id.startswith("v-")
    assert decode_wire(encode_wire(ev)) == ev
    assert parse_event({**NOTICE, "id": "n-1"}, CAT, TZ).id == "n-1"
    same = parse_event(NOTICE, CAT, TZ)  # without an id: a hash of its content, the same for the same notice
    assert isinstance(same, NoticeEvent) and same.id == parse_event(dict(NOTICE), CAT, TZ).id != ev.id


@pytest.mark.parametrize("change,message", [
    ({"kind": "ended"}, "kind: Input should be 'methodology', 'launch', 'discontinued', 'schedule' or 'other'"),
    ({"products": []}, "products: must name at least one product"),
    ({"products": "Dy oxide"}, "products: must be an array of texts, not the text 'Dy oxide'"),
    ({"products": ["Dy oxid"]}, "products[0]: unknown product 'Dy oxid' (did you mean 'Dy oxide'?)"),
    ({"products": ["Dy oxide"] * (MAX_NOTICE_PRODUCTS + 1)}, f"products: {MAX_NOTICE_PRODUCTS + 1} items; the limit "
                                                              f"is {MAX_NOTICE_PRODUCTS}"),
    ({"text": "x" * (MAX_NOTICE_TEXT + 1)}, f"text: {MAX_NOTICE_TEXT + 1:,} characters; the limit is "
                                           f"{MAX_NOTICE_TEXT:,}"),
    ({"effective": 20250801}, 'effective: must be an ISO date or datetime in a string, such as "2025-03-11", not '
                              "the number 20250801"),
    ({"effective": "1 August"}, "effective: '1 August' is not an ISO date or datetime"),
    ({"product": "Dy oxide"}, "product: unknown field (did you mean 'products'?)"),
])
def test_a_bad_notice_is_one_clear_message(change: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError) as exc:
        parse_event({**NOTICE, **change}, CAT, TZ)
    assert str(exc.value) == message


def test_a_notice_needs_its_vendor_and_may_not_be_published_ahead() -> None:
    with pytest.raises(EventError, match=r"^source: Field required$"):
        parse_event({k: v for k, v in NOTICE.items() if k != "source"}, CAT, TZ)
    with pytest.raises(EventError, match=r"^published_at: 2026-01-01 is in the future"):
        parse_event({**NOTICE, "published_at": "2026-01-01"}, CAT, TZ, now=at("2025-07-01"), max_future_days=1)
    # the effective date may be ahead: a discontinuation is announced before it happens
    assert isinstance(parse_event({**NOTICE, "effective": "2027-01-01"}, CAT, TZ, now=at("2025-07-01"),
                                  max_future_days=1), NoticeEvent)


@given(st.dictionaries(st.sampled_from(["source", "kind", "products", "effective", "text", "url", "published_at",
                                        "id", "extra"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=12)
                       | st.lists(st.text(max_size=12), max_size=3), max_size=9))
@hsettings(max_examples=300, deadline=None)
def test_any_notice_object_is_a_notice_or_one_message(fields: dict[str, Any]) -> None:
    try:
        assert isinstance(parse_event({"type": "notice", **fields}, CAT, TZ, now=at("2025-07-01")), NoticeEvent)
    except EventError as exc:
        assert str(exc) and "\n" not in str(exc)


# --- the doors ----------------------------------------------------------------------------------------------------

def stream_notices(client: redis.Redis, shards: int) -> list[NoticeEvent]:
    out = []
    for s in range(shards):
        for _, fields in stream_entries(client, f"alerts:events:{s}"):
            ev = decode_wire(fields[WIRE_FIELD.encode()])
            if isinstance(ev, NoticeEvent):
                out.append(ev)
    return out


def test_alerts_publish_takes_notices_and_reports_a_bad_one_by_line(client: redis.Redis, settings: Settings,
                                                                    tmp_path: Path) -> None:
    f = tmp_path / "notices.jsonl"
    f.write_text("\n".join([json.dumps(NOTICE), json.dumps({**NOTICE, "kind": "stopped"}),
                            json.dumps({**NOTICE, "id": "n2", "kind": "schedule", "products": ["Tb oxide"]})]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"{f}:2: kind: Input should be 'methodology', 'launch', 'discontinued', 'schedule' or 'other'"]
    assert [(n.kind, n.products) for n in stream_notices(client, settings.stream_shards)] == [
        ("discontinued", ("dysprosium oxide",)), ("schedule", ("terbium oxide",))]


@pytest.fixture
def http_url(client: redis.Redis, settings: Settings) -> Iterator[str]:
    s = settings.model_copy(update={"ingest_token": SecretStr(TOKEN)})
    http = HttpServer(make_app(client, s, builtin_catalog), s).start()
    url = f"http://127.0.0.1:{http.port}"

    def answers() -> bool:
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    wait_for(answers, 10, "the HTTP app to start")
    yield url
    http.stop()


def test_post_events_takes_notices_and_lists_a_bad_one_by_item(http_url: str, client: redis.Redis,
                                                                settings: Settings) -> None:
    body = json.dumps([NOTICE, {**NOTICE, "products": ["unobtainium"]}])
    r = httpx.post(f"{http_url}/events", content=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 400
    doc = r.json()
    assert doc["accepted"] == 1 and [e["item"] for e in doc["errors"]] == [2]
    assert doc["errors"][0]["error"].startswith("products[0]: unknown product 'unobtainium'")
    assert len(stream_notices(client, settings.stream_shards)) == 1


def test_a_json_feed_of_events_takes_notices(client: redis.Redis, settings: Settings) -> None:
    feed = FeedServer()
    try:
        feed.routes["/n"] = Route(json.dumps([NOTICE, {**NOTICE, "id": "bad", "text": ""}]).encode())
        sources = parse_sources(f"sources:\n  - {{name: smm-notices, kind: json, url: '{feed.url('/n')}', "
                                "every: 1h}\n", "sources.yaml", {})
        with httpx.Client() as http:
            r = poll(client, http, sources.sources[0], make_publisher(client, settings))
    finally:
        feed.stop()
    assert r.error is None and [type(e).__name__ for e in r.published] == ["NoticeEvent"]
    assert r.rejected == [("item 2", "text: String should have at least 1 character")]


# --- rules, routing, live and backtest ----------------------------------------------------------------------------

def test_live_the_rule_fires_and_the_default_routing_tells_each_other_target_once(
        client: redis.Redis, settings: Settings, rules_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    write_rules(rules_dir, RULES)
    p = Pipeline(client, settings)
    alerts = p.run(NOTICE, {**NOTICE, "products": ["Pr-Nd oxide"], "id": "nobody-watches"})
    by_rule = {a.rule_id: a for a in alerts}
    assert sorted(by_rule) == [DEFAULT_RULE_ID, "smm-dy-changes"]
    rule, default = by_rule["smm-dy-changes"], by_rule[DEFAULT_RULE_ID]
    assert rule.targets == ("slack:#heavy-re",) and rule.severity == "critical" and rule.kind == "vendor_notice"
    assert rule.text.startswith("smm: series discontinued: dysprosium oxide (effective 2025-08-01): SMM stops")
    # dy-1700 and dy-move read Dy oxide: their targets, each once, less the one smm-dy-changes told; not the news
    # rule's, not the stale rule's (another product); the notice no rule reads went nowhere
    assert default.targets == ("console", "slack:#desk") and default.severity == "warning"
    assert default.condition == "discontinued" and default.url == NOTICE["url"]
    assert "dy-1700, dy-move" in default.description
    assert p.run(NOTICE) == []  # published again: told once
    assert sorted(n.id for n, _ in stored_notices(client, Keys())) == sorted([rule.event_id, "nobody-watches"])
    # the stored history replays the notices: the backtest gives the live alerts
    events = stored_events(client, Keys(), p.rules.catalog, TZ)
    replayed = run_backtest(p.rules, events, fx_max_age_days=7).alerts
    assert sorted((a.id, a.targets, a.text) for a in replayed) == sorted((a.id, a.targets, a.text) for a in alerts)
    for k, v in env_for(settings).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert cli.main(["rules", "explain", "smm-dy-changes"]) == 0
    out = capsys.readouterr().out
    assert "vendor notice rule: notices on dysprosium oxide; discontinued, methodology; from smm" in out
    assert "last alert: 2025-07-01 09:00" in out


def test_a_rule_test_and_a_file_backtest_read_notices(tmp_path: Path, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir, timezone=TZ)
    events = [parse_event(NOTICE, rules.catalog, TZ),
              parse_event({**NOTICE, "kind": "launch", "id": "l1"}, rules.catalog, TZ)]
    result = run_backtest(rules, events, fx_max_age_days=7)
    assert [(a.rule_id, a.condition) for a in result.alerts] == [
        ("smm-dy-changes", "discontinued"), (DEFAULT_RULE_ID, "discontinued"), (DEFAULT_RULE_ID, "launch")]
    launch = result.alerts[2]
    assert launch.targets == ("slack:#heavy-re", "console", "slack:#desk") and launch.severity == "info"


def test_which_rules_watch_a_product(rules_dir: Path) -> None:
    """The product level always; the vendor level when a rule names its vendors (``source:``): then only
    notices of that vendor reach its targets by default."""
    rules = load_rules(Path(__file__).resolve().parents[1] / "rules" / "examples", timezone=TZ)
    dy = CAT.find("Dy oxide")
    assert dy is not None
    ids = [r.id for r in watching(rules, (dy.key,), "smm")]
    assert "dy-oxide-1700" in ids and not [i for i in ids if "news" in i or "notice" in i]
    if "source" not in PriceCondition.model_fields:
        pytest.skip("source: is not in the rule language yet")
    write_rules(rules_dir, RULES + """
  - id: dy-fm-only
    price: {product: Dy oxide, above: 1800, source: fastmarkets}
    notify: [slack:#fm]
""")
    rules = load_rules(rules_dir, timezone=TZ)
    assert not rules.errors, rules.errors
    (fm,) = rules.by_id["dy-fm-only"]
    assert rule_vendors(fm) == frozenset({"fastmarkets"})
    assert "dy-fm-only" not in [r.id for r in watching(rules, (dy.key,), "SMM")]
    assert "dy-fm-only" in [r.id for r in watching(rules, (dy.key,), "Fastmarkets")]
    alerts = run_backtest(rules, [parse_event(NOTICE, rules.catalog, TZ)], fx_max_age_days=7).alerts
    assert "slack:#fm" not in {t for a in alerts for t in a.targets}


# --- status -------------------------------------------------------------------------------------------------------

def test_status_names_discontinued_series_rules_read_and_each_vendors_freshness(
        client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    p = Pipeline(client, settings)
    p.run({"type": "price", "product": "Dy oxide", "price": 1690, "unit": "CNY/kg", "as_of": "2025-07-28",
           "source": "smm"},
          {"type": "price", "product": "Dy oxide", "price": 1695, "unit": "CNY/kg", "as_of": "2025-08-11",
           "source": "fastmarkets"},
          NOTICE,
          {**NOTICE, "id": "later", "products": ["Tb oxide"], "effective": "2025-09-01"})
    now = at("2025-08-12", "10:00")
    s = collect(client, settings, now=now)
    text = render(s)
    (line,) = [ln for ln in text.splitlines() if "notices" in ln]
    assert line.startswith("WARN  notices     dysprosium oxide from smm: discontinued since 2025-08-01 (notice ")
    assert line.endswith("still read by dy-1700, dy-move; point them at another vendor or product")
    (vendors,) = [ln for ln in text.splitlines() if "by vendor" in ln]
    assert vendors == ("WARN  vendors     dysprosium oxide by vendor: fastmarkets 2025-08-11 (1d10h old), "
                       "smm 2025-07-28 (15d10h old, STALE)"), text
    doc = s.to_json()
    assert [(d["product"], d["source"], d["rules"]) for d in doc["discontinued"]] == [
        ("dysprosium oxide", "smm", ["dy-1700", "dy-move"])]
    assert [(v["source"], v["as_of"], v["stale"]) for v in doc["vendors"]] == [
        ("fastmarkets", "2025-08-11", False), ("smm", "2025-07-28", True)]
    assert doc["vendors"][0]["age_seconds"] == round(now - at("2025-08-11", "00:00"))
    # before the effective date (and for Tb oxide, not effective yet): no warning
    assert not collect(client, settings, now=at("2025-07-31", "10:00")).to_json()["discontinued"]
    assert s.fresh is True  # a discontinued series and a stale vendor warn; the product is fresh
