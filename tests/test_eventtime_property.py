"""The guarantee of event time: the same events, each product's quotes in date order, give the same
alerts whatever the interleaving between products, the batching, the number of shards and evaluators,
and whether they come live or from a backtest. Vendors correct some quotes (``alerts.evaluate.corrections``):
right after the quote, or after the next day's (a late correction); the follow-ups agree too."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alerts.evaluate.backtest import run_backtest
from alerts.events import Event, FxEvent, NewsEvent, PriceEvent, event_time, parse_event
from alerts.model import Alert
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.pipeline import stream_alerts
from tests.servers import write_rules
from workers.roles.composer import Composer
from workers.roles.evaluator import Evaluator

TZ = "Asia/Shanghai"
RULES = """
rules:
  - id: alloy-premium
    spread: {of: Pr-Nd alloy, minus: Pr-Nd oxide, above: "100,000 CNY/t"}
    rearm: "95,000 CNY/t"
    resolve: true
    notify: [console]
  - id: alloy-crosses
    spread: {of: Pr-Nd alloy, minus: Pr-Nd oxide, crosses_below: "98,000 CNY/t"}
    notify: [console]
  - id: oxide-vs-tb
    spread: {of: Tb oxide, minus: Pr-Nd oxide, below: "5,900,000 CNY/t"}
    confirm: 2
    notify: [console]
  - id: tb-up-and-controls
    all_of:
      - price: {product: terbium oxide, change_pct: {over: 5d, above: 2}}
      - news: {any: [export control*]}
    within: 3d
    notify: [console]
  - id: oxide-and-alloy-up
    all_of:
      - price: {product: Pr-Nd oxide, above: "445,000 CNY/t"}
      - price: {product: Pr-Nd alloy, above: "545,000 CNY/t"}
    within: 2d
    notify: [console]
  - id: oxide-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [console]
  - id: oxide-usd
    price: {product: Pr-Nd oxide, crosses_below: "62 USD/kg"}
    notify: [console]
  - id: tb-usd
    price: {product: Tb oxide, above: "900 USD/kg"}
    rearm: "890 USD/kg"
    notify: [console]
  - id: dy-preferred
    price: {product: Dy oxide, sources: [smm, fastmarkets], above: 1710}
    rearm: 1700
    resolve: true
    notify: [console]
  - id: dy-preferred-crosses
    price: {product: Dy oxide, sources: [fastmarkets, argus, smm], crosses_below: 1690}
    notify: [console]
  - id: dy-consensus-move
    price: {product: Dy oxide, consensus: [smm, fastmarkets, argus], change_pct: {over: 3d, abs_above: 1}}
    notify: [console]
  - id: dy-disagree
    divergence: {product: Dy oxide, sources: [smm, fastmarkets, argus], above: 1.5%}
    notify: [console]
  - id: dy-disagree-amount
    divergence: {product: Dy oxide, sources: [smm, argus], above: 20 CNY/kg}
    cooldown: 2d
    notify: [console]
  - id: dy-smm-only
    price: {product: Dy oxide, source: smm, crosses_above: 1705}
    notify: [console]
"""
#: Dysprosium oxide is quoted by three vendors, each its own sequence in date order (arriving in any order).
VENDORS = ("smm", "fastmarkets", "argus")
START = date(2025, 2, 3)
BASES = {"Pr-Nd oxide": (440_000, "CNY/t"), "Pr-Nd alloy": (542_000, "CNY/t"), "Tb oxide": (6_400, "CNY/kg")}
HEADLINES = ["New export controls on rare earths", "Magnet makers obtain export licences",
             "Export control list widened", "Prices steady"]


def corrected(draw: Any, quotes: list[dict[str, Any]], digits: int) -> list[dict[str, Any]]:
    """The quotes with some corrected by their vendor: another price for the same day, published right after the
    quote or after the next one."""
    out = list(quotes)
    for i in reversed(range(len(quotes))):
        how = draw(st.integers(0, 4))  # 0: corrected at once, 1: after the next quote, else not corrected
        if how > 1:
            continue
        q = quotes[i]
        fixed = {**q, "price": round(q["price"] * (1 + draw(st.sampled_from([-15, -8, 8, 15])) / 1000), digits)}
        at = out.index(q) + 1 + (how == 1 and i + 1 < len(quotes))
        out.insert(at, fixed)
    return out


@st.composite
def histories(draw: Any) -> dict[str, list[dict[str, Any]]]:
    """Per product its quotes in date order (days skipped at random); the news in time order under "news"."""
    out: dict[str, list[dict[str, Any]]] = {}
    for product, (base, unit) in BASES.items():
        price = float(base)
        quotes = []
        for day in range(draw(st.integers(4, 12))):
            if draw(st.booleans()) and day:
                continue  # no quote that day
            price = round(price * (1 + draw(st.integers(-25, 25)) / 1000), -1 if unit == "CNY/kg" else -2)
            quotes.append({"type": "price", "product": product, "price": price, "unit": unit,
                           "as_of": (START + timedelta(days=day)).isoformat(), "source": "smm"})
        out[product] = corrected(draw, quotes, -1 if unit == "CNY/kg" else -2)
    for vendor in VENDORS:  # some vendors skip days, or stop: freshness decides which one a rule uses
        price, quotes = 1_700.0, []
        for day in range(draw(st.integers(0, 12))):
            if draw(st.integers(0, 2)) == 0:
                continue
            price = round(price * (1 + draw(st.integers(-20, 20)) / 1000))
            quotes.append({"type": "price", "product": "Dy oxide", "price": price, "unit": "CNY/kg",
                           "as_of": (START + timedelta(days=day)).isoformat(), "source": vendor})
        out[f"Dy oxide|{vendor}"] = corrected(draw, quotes, 0)
    rate, rates = 7.10, []
    for day in range(draw(st.integers(0, 12))):  # USD/CNY, some days missing
        if draw(st.booleans()):
            rate = round(rate * (1 + draw(st.integers(-20, 20)) / 1000), 4)
            rates.append({"type": "fx", "pair": "USD/CNY", "rate": rate, "source": "pboc",
                          "as_of": (START + timedelta(days=day)).isoformat()})
    out["fx"] = rates
    news = []
    for i, hour in enumerate(sorted(draw(st.lists(st.integers(0, 12 * 24), max_size=4)))):
        day, h = divmod(hour, 24)
        news.append({"type": "news", "id": f"n{i}", "headline": draw(st.sampled_from(HEADLINES)),
                     "published_at": f"{(START + timedelta(days=day)).isoformat()}T{h:02d}:00:00+08:00"})
    out["news"] = news
    return out


def interleave(seqs: dict[str, list[dict[str, Any]]], picks: list[int]) -> list[dict[str, Any]]:
    """One merge of the sequences keeping each one's order, steered by ``picks``."""
    queues = {k: list(v) for k, v in seqs.items() if v}
    out: list[dict[str, Any]] = []
    i = 0
    while queues:
        names = sorted(queues)
        name = names[picks[i % len(picks)] % len(names)] if picks else names[0]
        i += 1
        out.append(queues[name].pop(0))
        if not queues[name]:
            del queues[name]
    return out


def key(a: Alert | dict[str, Any]) -> tuple[Any, ...]:
    d = a if isinstance(a, dict) else a.to_dict()
    return d["rule_id"], d["status"], d["id"], round(d["price"], 2) if d.get("price") is not None else None, d["text"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=histories(), picks=st.lists(st.integers(0, 5), min_size=1, max_size=60),
       shards=st.sampled_from([1, 2, 4]), evaluators=st.integers(1, 2), batch=st.integers(1, 7),
       chunks=st.lists(st.integers(1, 9), min_size=1, max_size=10), steps=st.lists(st.integers(0, 3), min_size=1))
def test_live_equals_backtest_whatever_the_arrival_order(
        client: redis.Redis, settings: Settings, rules_dir: Path, data: dict[str, list[dict[str, Any]]],
        picks: list[int], shards: int, evaluators: int, batch: int, chunks: list[int], steps: list[int]) -> None:
    client.flushall()
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir, timezone=TZ)
    assert not rules.errors, rules.errors
    s = settings.model_copy(update={"stream_shards": shards, "batch_size": batch, "block_ms": 2})
    events = interleave(data, picks)
    # any history (jumps included): what is compared is live and backtest, not the quote sanity check
    publisher = Publisher(client, rules.catalog, TZ, shards, s.key_prefix, max_daily_move_pct=None)
    workers = [Evaluator(client, s, lambda: rules, name=f"ev{i}") for i in range(evaluators)]
    composer = Composer(client, s, lambda: rules)
    for _ in range(2):
        for w in workers:
            w.maintain_leases(force=True)
    sent = 0
    turn = 0
    while sent < len(events):  # publish in chunks; evaluators and the stage run in between, in any order
        n = chunks[turn % len(chunks)]
        report = publisher.publish(*events[sent:sent + n])
        assert report.ok, report.errors
        sent += n
        for _ in range(steps[turn % len(steps)]):
            workers[turn % len(workers)].step()
            turn += 1
            if turn % 3 == 0:
                composer.step()
        turn += 1
    for _ in range(200):  # drain every shard
        if sum(w.step().events for w in workers) == 0 and not any(w.needs_pending for w in workers):
            break
    composer.step()
    composer.step(now=math.inf)  # the end of the data: nothing more is coming for any leg
    live = sorted(key(a) for a in stream_alerts(client))
    parsed: list[Event] = [parse_event(e, rules.catalog, TZ) for e in events]
    backtest = sorted(key(a) for a in run_backtest(rules, parsed, fx_max_age_days=settings.fx_max_age_days).alerts)
    assert live == backtest
    # and the backtest does not depend on the interleaving either: the rates, then each product's quotes (a vendor's
    # in the order it published them, corrections included), then the news
    in_time = sorted(parsed, key=event_time)
    per_vendor: dict[tuple[str, str], list[Event]] = {}
    for ev in parsed:
        if isinstance(ev, PriceEvent):
            per_vendor.setdefault((ev.product_key, ev.source), []).append(ev)
    other = sorted(key(a) for a in run_backtest(rules, [ev for ev in in_time if isinstance(ev, FxEvent)]
                                                + [ev for k in sorted(per_vendor) for ev in per_vendor[k]]
                                                + [ev for ev in in_time if isinstance(ev, NewsEvent)],
                                                fx_max_age_days=settings.fx_max_age_days).alerts)
    assert other == backtest
    if any(a["kind"] == "correction" for a in stream_alerts(client)):
        event("a correction's follow-up")
