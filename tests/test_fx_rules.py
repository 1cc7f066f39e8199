"""Thresholds in another currency than the product's: compared at the exchange rate of each quote's time."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from alerts.evaluate.session import Session
from alerts.events import Event, FxEvent, parse_event, parse_time
from alerts.model import Alert
from alerts.rules.load import load_rules
from alerts.settings import Settings
from tests.pipeline import quote

TZ = "Asia/Shanghai"
RULES = """
rules:
  - id: prnd-usd
    price: {product: Pr-Nd oxide, below: "63 USD/kg"}
    notify: [console]
"""


def fx(pair: str, rate: float, day: str) -> FxEvent:
    ts, date = parse_time(day, TZ, "as_of")
    return FxEvent(f"x-{pair}-{day}", pair, rate, ts, date, "pboc")


def run(tmp_path: Path, events: list[Event | dict[str, object]], body: str = RULES,
        max_age_days: float = 7.0) -> list[Alert]:
    (tmp_path / "r.yaml").write_text(body)
    rules = load_rules(tmp_path, timezone=TZ)
    assert not rules.errors, rules.errors
    parsed = [e if isinstance(e, FxEvent) else parse_event(e, rules.catalog, TZ) for e in events]
    return Session(rules, fx_max_age=max_age_days * 86400).run(parsed)


def test_a_usd_threshold_on_a_cny_product_converts_at_the_rate_of_the_quote_time(tmp_path: Path) -> None:
    (a,) = run(tmp_path, [fx("USD/CNY", 7.10, "2025-03-10"), fx("USD/CNY", 6.90, "2025-03-12"),
                          quote(444_000, "2025-03-11")])  # 444 CNY/kg / 7.10 = 62.54 USD/kg; at 6.90 it would be 64.35
    assert a.text == ("Pr-Nd oxide 444,000 CNY/t on 2025-03-11 = 62.54 USD/kg at USD/CNY 7.1 (2025-03-10), "
                      "below 63 USD/kg")
    assert (a.rule_id, a.unit, a.threshold, a.as_of) == ("prnd-usd", "USD/kg", 63, "2025-03-11")


def test_the_inverse_pair_converts_too(tmp_path: Path) -> None:
    (a,) = run(tmp_path, [fx("CNY/USD", 0.1408, "2025-03-10"), quote(444_000, "2025-03-11")])
    assert "= 62.52 USD/kg at CNY/USD 0.1408 (2025-03-10)" in a.text


@pytest.mark.parametrize("events", [
    [quote(444_000, "2025-03-11")],  # no rate at all
    [fx("USD/CNY", 7.10, "2025-03-01"), quote(444_000, "2025-03-11")],  # ten days old
    [quote(444_000, "2025-03-11"), fx("USD/CNY", 7.10, "2025-03-12")],  # only a later one
])
def test_no_usable_rate_no_alert(tmp_path: Path, events: list[Event | dict[str, object]]) -> None:
    assert run(tmp_path, events) == []


def test_arming_works_in_the_threshold_currency(tmp_path: Path) -> None:
    body = RULES.replace('notify: [console]', 'rearm: "64 USD/kg"\n    resolve: true\n    notify: [console]')
    out = run(tmp_path, [fx("USD/CNY", 7.10, "2025-03-10"), quote(444_000, "2025-03-11"),  # 62.54: fires
                         quote(445_000, "2025-03-12"),  # 62.68: still below, nothing
                         quote(452_000, "2025-03-13"),  # 63.66: resolved (not below), not re-armed yet
                         quote(446_000, "2025-03-14"), fx("USD/CNY", 7.10, "2025-03-15"),  # 62.82: not re-armed
                         quote(455_000, "2025-03-17"), quote(446_000, "2025-03-18")], body)  # 64.08 re-arms; fires
    assert [(a.status, a.as_of) for a in out] == [("firing", "2025-03-11"), ("resolved", "2025-03-13"),
                                                  ("firing", "2025-03-18")]


def test_currency_mistakes_are_reported(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("""
rules:
  - id: change-usd
    price: {product: Pr-Nd oxide, change: {over: 7d, above: "2 USD/kg"}}
    notify: [console]
  - id: allof-usd
    all_of:
      - price: {product: Pr-Nd oxide, below: "63 USD/kg"}
      - news: {any: [export control*]}
    within: 3d
    notify: [console]
""")
    problems = [str(p) for p in load_rules(tmp_path, timezone=TZ).errors]
    assert any("change-usd" in p and "use change_pct" in p for p in problems), problems
    assert any("allof-usd" in p and "not supported inside all_of" in p for p in problems), problems


def test_live_in_event_time_with_explain_and_check(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import env_for
    from tests.pipeline import Pipeline
    from tests.servers import write_rules

    write_rules(rules_dir, RULES)
    env = env_for(settings)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env, capture_output=True, text=True,
                              check=False)

    assert "no USD/CNY rate is stored, so this rule cannot fire" in cli("rules", "check").stdout
    p = Pipeline(client, settings)
    # the quote arrives before the rate of its day: it waits for the rate series to reach its time
    assert p.run(quote(444_000, "2025-03-11")) == []
    assert "no USD/CNY rate yet" in cli("rules", "explain", "prnd-usd").stdout
    rate = {"type": "fx", "pair": "USD/CNY", "rate": 7.10, "as_of": "2025-03-11", "source": "pboc"}
    (a,) = p.run(rate)
    assert a.text.startswith("Pr-Nd oxide 444,000 CNY/t on 2025-03-11 = 62.54 USD/kg at USD/CNY 7.1 (2025-03-11)")
    out = cli("rules", "explain", "prnd-usd").stdout
    assert "rate: USD/CNY 7.1 on 2025-03-11 (pboc)" in out and "last value: 62.54 USD/kg; fired" in out
    assert "last alert: 2025-03-11" in out
    assert "no USD/CNY rate is stored" not in cli("rules", "check").stdout


def test_rule_tests_take_fx_events(tmp_path: Path) -> None:
    from alerts.evaluate.ruletest import report, run_file

    (tmp_path / "r.yaml").write_text(RULES)
    (tmp_path / "r.test.yaml").write_text("""
tests:
  - name: a rate, a quote in USD and one in CNY
    start: 2025-03-10
    events:
      - {type: fx, pair: USD/CNY, rate: 7.10, as_of: +0d, source: pboc}
      - {type: price, product: Pr-Nd oxide, price: 62.5, unit: USD/kg, as_of: +1d, source: fob}
      - {type: price, product: Pr-Nd oxide, price: 450000, unit: CNY/t, as_of: +2d, source: smm}
      - {type: price, product: Pr-Nd oxide, price: 446000, unit: CNY/t, as_of: +3d, source: smm}
    expect:
      - {rule: prnd-usd, date: +1d, text: ["= 62.5 USD/kg at USD/CNY 7.1"]}
      - {rule: prnd-usd, date: +3d, text: ["446,000 CNY/t", "62.82 USD/kg"]}
""")
    days = Settings.model_fields["fx_max_age_days"].default
    text, ok = report([run_file(tmp_path / "r.test.yaml", TZ, fx_max_age_days=days)], TZ)
    assert ok, text
