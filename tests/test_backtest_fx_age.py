"""Backtests and rule tests take ALERTS_FX_MAX_AGE_DAYS as the live event-time stage does (the setting is the only
default): a threshold in another currency compared with a rate ten days older than the quote fires live with
ALERTS_FX_MAX_AGE_DAYS=14, and so in ``alerts backtest`` (of a file and of the stored history) and ``alerts rules
test``; with the default (7 days) it fires nowhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules
from workers.cli import main as cli

RULES = """
rules:
  - id: prnd-usd
    price: {product: Pr-Nd oxide, below: "63 USD/kg"}
    notify: [console]
"""
#: A USD/CNY rate, and ten days later a quote: 444 CNY/kg at 7.10 is 62.54 USD/kg, below 63.
EVENTS: list[dict[str, Any]] = [
    {"type": "fx", "pair": "USD/CNY", "rate": 7.10, "as_of": "2025-03-01", "source": "pboc"},
    {"type": "price", "product": "Pr-Nd oxide", "price": 444_000, "unit": "CNY/t", "as_of": "2025-03-11",
     "source": "smm"},
]
RULE_TEST = """
rule_files: [r.yaml]
tests:
  - name: a rate ten days old
    start: 2025-03-01
    events:
      - {type: fx, pair: USD/CNY, rate: 7.10, as_of: +0d, source: pboc}
      - {type: price, product: Pr-Nd oxide, price: 444000, unit: CNY/t, as_of: +10d, source: smm}
    expect:
      - {rule: prnd-usd, date: +10d, text: ["62.54 USD/kg at USD/CNY 7.1 (2025-03-01)"]}
"""


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(args)
    got = capsys.readouterr()
    return rc, got.out, got.err


@pytest.mark.parametrize("days,fires", [(14, True), (None, False)])
def test_backtest_and_rule_tests_take_the_fx_age_the_live_stage_takes(
        client: redis.Redis, settings: Settings, rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], days: int | None, fires: bool) -> None:
    write_rules(rules_dir, RULES)
    s = settings if days is None else settings.model_copy(update={"fx_max_age_days": float(days)})
    extra = {} if days is None else {"ALERTS_FX_MAX_AGE_DAYS": str(days)}
    for k, v in env_for(s, **extra).items():
        monkeypatch.setenv(k, v)

    live = Pipeline(client, s)
    for obj in EVENTS:
        live.publish(obj)
    live.evaluate()
    live.flush()
    live_alerts = [(a["id"], a["text"]) for a in live.alert_stream()]
    assert len(live_alerts) == (1 if fires else 0), live_alerts

    f = tmp_path / "events.jsonl"
    f.write_text("".join(json.dumps(o) + "\n" for o in EVENTS))
    rc, out, err = _cli(["backtest", "--events", str(f), "--format", "json"], capsys)
    assert rc == 0, err
    assert [(a["id"], a["text"]) for a in json.loads(out)["alerts"]] == live_alerts
    rc, out, err = _cli(["backtest", "--format", "json"], capsys)  # the stored history
    assert rc == 0, err
    assert [(a["id"], a["text"]) for a in json.loads(out)["alerts"]] == live_alerts

    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "r.yaml").write_text(RULES)
    (tests / "r.test.yaml").write_text(RULE_TEST)
    rc, out, err = _cli(["rules", "test", str(tests)], capsys)
    assert rc == (0 if fires else 1), out + err
