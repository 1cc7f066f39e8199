"""`alerts rules explain ID`: the rule's state per product, read from Redis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules

RULES = """
rules:
  - id: prnd-450k
    description: Pr-Nd oxide breaks 450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    cooldown: 3d
    notify: [console]
  - id: tb-confirm
    price: {product: Tb oxide, above: 6000}
    confirm: 3
    notify: [console]
"""


def explain(settings: Settings, rule: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "explain", rule], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_explain_shows_arming_cooldown_and_confirm_counts(client: redis.Redis, settings: Settings,
                                                          rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    assert "no quote seen yet: armed" in explain(settings, "prnd-450k")
    p = Pipeline(client, settings)
    p.run(quote(452_000, "2025-02-25"), quote(6_100, "2025-02-25", product="Tb oxide", unit="CNY/kg"),
          quote(6_200, "2025-02-26", product="Tb oxide", unit="CNY/kg"))
    out = explain(settings, "prnd-450k")
    assert "Pr-Nd oxide: above 450,000 CNY/t, cooldown 3d" in out
    assert "smm: last quote 452,000 CNY/t on 2025-02-25; not armed" in out
    assert "last alert: 2025-02-25; cooldown until 2025-02-28 00:00 +08:00" in out
    assert "condition held on 2 of 3 quotes" in explain(settings, "tb-confirm")
    p.run(quote(449_000, "2025-02-26"))
    assert "smm: last quote 449,000 CNY/t on 2025-02-26; armed" in explain(settings, "prnd-450k")


def test_explain_unknown_rule(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "explain", "nope"], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "no enabled rule 'nope'" in proc.stderr


SPREAD_AND_ALL_OF = """
rules:
  - id: alloy-premium
    spread: {of: Pr-Nd alloy, minus: Pr-Nd oxide, above: "110,000 CNY/t"}
    rearm: "105,000 CNY/t"
    notify: [console]
  - id: tb-and-controls
    all_of:
      - price: {product: terbium oxide, above: "6,000 CNY/kg"}
      - news: {any: [export control*]}
    within: 3d
    notify: [console]
"""


def test_explain_speaks_plainly_for_spreads_and_all_of(client: redis.Redis, settings: Settings,
                                                       rules_dir: Path) -> None:
    write_rules(rules_dir, SPREAD_AND_ALL_OF)
    assert "no quote of either leg yet" in explain(settings, "alloy-premium")
    p = Pipeline(client, settings)
    p.run(quote(546_500, "2025-03-03", product="Pr-Nd alloy"), quote(434_000, "2025-03-03"))  # 112,500: fires
    p.run(quote(433_000, "2025-03-04"))  # the alloy of 03-04 has not come yet
    out = explain(settings, "alloy-premium")
    assert "spread Pr-Nd alloy minus Pr-Nd oxide: above 110,000 CNY/t, re-arms at 105,000 CNY/t" in out
    assert "Pr-Nd alloy: 546,500 CNY/t on 2025-03-03 (smm)" in out
    assert "Pr-Nd oxide: 434,000 CNY/t on 2025-03-03 (smm)" in out  # 03-04 is not evaluated yet
    assert "value: 112,500 CNY/t; fired; waiting to re-arm" in out
    assert "evaluated in event time up to 2025-03-03" in out
    assert "waiting for Pr-Nd alloy to report 2025-03-04" in out
    assert "last alert: 2025-03-03" in out and "{" not in out  # plain words, no state JSON
    p.run(quote(6_100, "2025-03-03", product="Tb oxide", unit="CNY/kg"))
    out = explain(settings, "tb-and-controls")
    assert "1. terbium oxide above 6,000 CNY/kg: held on 2025-03-03: terbium oxide 6,100 CNY/kg" in out
    assert "(not evaluated yet: the other conditions' data has not reached that time)" in out
    assert "2. a matching article: has not held yet" in out
    assert "last alert: never" in out


def test_a_held_alert_is_not_the_last_alert(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, SPREAD_AND_ALL_OF)
    p = Pipeline(client, settings)
    client.hset("alerts:paused", "alloy-premium", '{"at": 0, "count": 21}')  # the circuit breaker paused it
    p.run(quote(546_500, "2025-03-03", product="Pr-Nd alloy"), quote(434_000, "2025-03-03"))
    out = explain(settings, "alloy-premium")
    assert "fired; waiting to re-arm" in out and "last alert: never" in out
