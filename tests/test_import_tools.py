"""Imported history and the rule tools agree (issue 17), and a backtest never says "nothing would fire" for rules
it did not run or history it did not read (issue 22). Real Redis, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import redis

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules

SPREAD = """
rules:
  - id: tb-dy
    spread:
      of: terbium oxide
      minus: Dy oxide
      above: 5000
    notify: [console]
"""
BROKEN = """
  - id: broken
    price:
      product: Pr-Nd oxide
      above: 450,000 CNY/t
      bogus: 1
    notify: [console]
"""


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env_for(settings), capture_output=True,
                          text=True, check=False, timeout=120)


def history_csv(path: Path, days: int = 10) -> Path:
    start = date.today() - timedelta(days=days + 2)
    rows = ["product,price,unit,as_of"]
    for i in range(days):
        day = start + timedelta(days=i)
        rows += [f"terbium oxide,{7000 + 10 * i},CNY/kg,{day}", f"Dy oxide,{1700 + i},CNY/kg,{day}"]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_backtest_before_the_service_read_an_import_says_what_to_do(
        client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    write_rules(settings.rules_dir, SPREAD)
    assert cli(settings, "import", str(history_csv(tmp_path / "h.csv"))).returncode == 0
    proc = cli(settings, "backtest")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "20 events published or imported (alerts import) wait on the event streams for an evaluator" in last
    assert "start the service" in last
    doc = json.loads(cli(settings, "backtest", "--format", "json").stdout)
    assert doc["waiting"] == 20 and doc["events"] == 0
    explained = cli(settings, "rules", "explain", "tb-dy").stdout
    assert "20 events published or imported wait on the event streams" in explained


def test_after_the_service_read_an_import_explain_shows_the_legs_the_backtest_fires_on(
        client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    write_rules(settings.rules_dir, SPREAD)
    assert cli(settings, "import", str(history_csv(tmp_path / "h.csv"))).returncode == 0
    Pipeline(client, settings).evaluate()  # the service reads the import: state and legs, no alert
    backtest = cli(settings, "backtest")
    assert backtest.returncode == 0 and "1 alerts from 20 events" in backtest.stdout, backtest.stderr
    explained = cli(settings, "rules", "explain", "tb-dy").stdout
    assert "no quote of either leg" not in explained
    assert "terbium oxide: 7,090 CNY/kg" in explained and "dysprosium oxide: 1,709 CNY/kg" in explained
    assert "value from these: 5,381 CNY/kg" in explained and "not evaluated yet" in explained


def test_importing_a_file_again_under_another_source_warns(client: redis.Redis, settings: Settings,
                                                           tmp_path: Path) -> None:
    write_rules(settings.rules_dir, "rules: []\n")
    f = history_csv(tmp_path / "h.csv")
    p = Pipeline(client, settings)
    assert cli(settings, "import", str(f), "--source", "smm").returncode == 0
    p.evaluate()
    again = cli(settings, "import", str(f), "--source", "smm")
    assert again.returncode == 0 and "warning" not in again.stderr and "20 already stored" in again.stdout
    other = cli(settings, "import", str(f), "--source", "fastmarkets")
    assert other.returncode == 0
    warnings = [x for x in other.stderr.splitlines() if "warning" in x]
    assert len(warnings) == 2, other.stderr  # one per product
    assert "10 of the first 10 quotes of terbium oxide imported as source 'fastmarkets' are stored already " \
           "under source 'smm'" in other.stderr


def test_a_backtest_with_a_refused_rule_exits_1_and_names_it_last(settings: Settings, tmp_path: Path) -> None:
    write_rules(settings.rules_dir, SPREAD.replace("rules:\n", "rules:\n" + BROKEN.lstrip("\n"), 1))
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps({"type": "price", "product": "Pr-Nd oxide", "price": 455000, "unit": "CNY/t",
                                  "as_of": "2025-03-12"}) + "\n")
    proc = cli(settings, "backtest", "--events", str(events))
    assert proc.returncode == 1
    assert "unknown key 'bogus'" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("alerts: rules refused: broken (1 problems, listed above); not backtested"), last
    doc = json.loads(cli(settings, "backtest", "--events", str(events), "--format", "json").stdout)
    assert doc["refused"] == [{"file": str(settings.rules_dir / "rules.yaml"), "line": 7, "rule": "broken",
                               "reason": "unknown key 'bogus'"}]
    fixed = write_rules(tmp_path / "fixed", SPREAD)
    good = cli(settings, "backtest", "--events", str(events), "--rules", str(fixed.parent))
    assert good.returncode == 0 and good.stderr == "", good.stderr  # no rule refused, nothing waiting: 0
    missing = cli(settings, "backtest", "--events", str(events), "--rules", str(tmp_path / "none"))
    assert missing.returncode == 1 and "the rule files have errors" in missing.stderr.splitlines()[-1]


def test_rules_test_with_a_refused_rule_says_its_tests_did_not_run(settings: Settings, tmp_path: Path) -> None:
    write_rules(tmp_path, SPREAD.replace("rules:\n", "rules:\n" + BROKEN.lstrip("\n"), 1))
    (tmp_path / "rules.test.yaml").write_text("""rule_files: [rules.yaml]
tests:
  - name: the spread fires
    events:
      - {type: price, product: Tb oxide, price: 7000, unit: CNY/kg, as_of: "2025-03-11"}
      - {type: price, product: Dy oxide, price: 1700, unit: CNY/kg, as_of: "2025-03-11"}
    expect:
      - {rule: tb-dy}
""")
    proc = cli(settings, "rules", "test", str(tmp_path / "rules.test.yaml"))
    assert proc.returncode == 1
    assert "unknown key 'bogus'" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == (
        "0 tests, 0 failed, 1 problems: the tests of 1 file did not run (their rules or tests were refused, "
        "above); nothing is known of what those rules would fire")
