"""Backtests replay events through the live evaluation code: same events, same alerts."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import redis

from alerts.evaluate.backtest import alert_day, read_events, run_backtest
from alerts.events import local_date
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.history import stored_events
from alerts.store.keys import Keys
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    rearm: 445,000 CNY/t
    resolve: true
    notify: [console]
  - id: prnd-cross-440k
    price: {product: PrNd oxide, crosses_below: 440 CNY/kg}
    notify: [console]
    cooldown: 3d
  - id: tb-up-5pct
    price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}
    confirm: 2
    notify: [console]
  - id: dy-move
    price: {products: [Dy oxide, Tb oxide], change: {over: 7d, abs_above: 40 CNY/kg}}
    notify: [console]
  - id: licences
    news: {any: [export licen*], none: [webinar]}
    notify: [console]
  - id: prnd-move-3d
    price: {product: Pr-Nd oxide, change_pct: {over: 3d, abs_above: 3}}
    notify: [console]
"""


def event_lines(n_days: int = 240) -> list[str]:
    rng = random.Random(7)
    prices = {"Pr-Nd oxide": (445_000.0, "CNY/t"), "terbium oxide": (6_000.0, "CNY/kg"),
              "dysprosium oxide": (1_700.0, "CNY/kg")}
    lines = []
    day = date(2025, 1, 2)
    for i in range(n_days):
        for product, (price, unit) in list(prices.items()):
            price *= 1 + rng.uniform(-0.02, 0.02)
            prices[product] = (price, unit)
            lines.append(json.dumps({"type": "price", "product": product, "price": round(price), "unit": unit,
                                     "as_of": day.isoformat(), "source": "smm"}))
        if i % 9 == 0:
            lines.append(json.dumps({"type": "news", "id": f"n{i}", "headline": f"Export licences, round {i}",
                                     "published_at": f"{day.isoformat()}T10:00:00+08:00", "source": "smm"}))
        if i % 20 == 5:  # a late quote and a repeated one
            lines.append(lines[-4])
            lines.append(json.dumps({"type": "price", "product": "Pr-Nd oxide", "price": 460_000, "unit": "CNY/t",
                                     "as_of": (day - timedelta(days=3)).isoformat(), "source": "smm"}))
        day += timedelta(days=1)
    return lines


def test_backtest_and_live_agree(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    lines = event_lines()
    live = Pipeline(client, settings)
    report = live.publisher.publish_lines(lines)
    assert report.ok
    live.evaluate()
    live_alerts = {(a["id"], a["text"]) for a in live.alert_stream()}
    assert len(live_alerts) > 20
    assert {a["rule_id"] for a in live.alert_stream()} == {
        "prnd-450k", "prnd-cross-440k", "tb-up-5pct", "dy-move", "licences", "prnd-move-3d"}

    rules = load_rules(rules_dir, timezone=settings.timezone)
    events, errors = read_events(lines, rules.catalog, settings.timezone, fx_max_age_days=settings.fx_max_age_days)
    assert errors == []
    from_file = run_backtest(rules, events, fx_max_age_days=settings.fx_max_age_days)
    assert {(a.id, a.text) for a in from_file.alerts} == live_alerts

    stored = stored_events(client, Keys(), rules.catalog, settings.timezone)
    from_history = run_backtest(rules, stored, fx_max_age_days=settings.fx_max_age_days)
    # the stored history comes back in time order; quotes that arrived late are left out, as the
    # live run ignored them: the same alerts
    assert {(a.id, a.text) for a in from_history.alerts} == live_alerts


def test_period_and_counts(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir, timezone=settings.timezone)
    events, _ = read_events(event_lines(), rules.catalog, settings.timezone, fx_max_age_days=settings.fx_max_age_days)
    whole = run_backtest(rules, events, fx_max_age_days=settings.fx_max_age_days)
    march = run_backtest(rules, events, date(2025, 3, 1), date(2025, 3, 31), fx_max_age_days=settings.fx_max_age_days)
    # events before the period are replayed silently: rules enter March in the state they really had
    in_march = [a for a in whole.alerts if alert_day(a, settings.timezone).startswith("2025-03")]
    assert march.alerts == in_march and in_march
    assert set(whole.counts) == {"prnd-450k", "prnd-cross-440k", "tb-up-5pct", "dy-move", "licences", "prnd-move-3d"}
    assert sum(whole.counts.values()) == len(whole.alerts)


def test_backtest_command(settings: Settings, rules_dir: Path, tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join([*event_lines(60), "{bad json"]) + "\n")
    env = env_for(settings)
    text = subprocess.run([sys.executable, "-m", "workers.cli", "backtest", "--events", str(f)], env=env,
                          capture_output=True, text=True, check=False)
    assert text.returncode == 0, text.stderr
    assert f"{f}:" in text.stderr and "not valid JSON" in text.stderr
    assert "alerts from" in text.stdout and "prnd-450k" in text.stdout
    js = subprocess.run([sys.executable, "-m", "workers.cli", "backtest", "--events", str(f), "--format", "json",
                         "--from", "2025-02-01", "--to", "2025-02-28"], env=env, capture_output=True, text=True,
                        check=False)
    doc = json.loads(js.stdout)
    assert doc["counts"].keys() == {"prnd-450k", "prnd-cross-440k", "tb-up-5pct", "dy-move", "licences", "prnd-move-3d"}
    # every alert is dated in the period: a quote's by its as_of, an article's by its publication time
    days = {(a["rule_id"], a.get("as_of") or local_date(a["at"], settings.timezone)) for a in doc["alerts"]}
    assert all("2025-02-01" <= day <= "2025-02-28" for _, day in days), sorted(days)
    assert {day for rule, day in days if rule == "licences"} == {"2025-02-07", "2025-02-16", "2025-02-25"}
    assert doc["events"] == sum(1 for line in event_lines(60) if '"2025-03' not in line)


def test_undecodable_lines_are_reported_and_the_rest_read(settings: Settings, rules_dir: Path,
                                                          tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    f = tmp_path / "events.jsonl"
    good = event_lines(3)
    f.write_bytes(good[0].encode() + b"\n\xff\xfe broken\n" + "\n".join(good[1:]).encode() + b"\n")
    env = env_for(settings)
    for cmd in (["backtest", "--events", str(f)], ["publish", str(f)]):
        proc = subprocess.run([sys.executable, "-m", "workers.cli", *cmd], env=env, capture_output=True, text=True,
                              check=False)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert f"{f}:2: not UTF-8 text" in proc.stderr
