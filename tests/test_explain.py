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
    assert "last alert: 2025-02-25; cooldown until 2025-02-28 00:00" in out
    assert "condition held on 2 of 3 quotes" in explain(settings, "tb-confirm")
    p.run(quote(449_000, "2025-02-26"))
    assert "smm: last quote 449,000 CNY/t on 2025-02-26; armed" in explain(settings, "prnd-450k")


def test_explain_unknown_rule(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "explain", "nope"], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "no enabled rule 'nope'" in proc.stderr
