"""`alerts rules test`: rule unit tests in YAML, with a readable difference on a mismatch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [console]
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "rules", "test", *args], capture_output=True,
                          text=True, check=False, cwd=REPO)


def test_the_shipped_examples_pass() -> None:
    proc = run("rules/examples")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout and "FAIL" not in proc.stdout


def test_a_mismatch_shows_what_differs(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    t = tmp_path / "r.test.yaml"
    t.write_text("""tests:
  - name: wrong expectation
    start: 2025-02-24
    events:
      - {type: price, product: Pr-Nd oxide, price: 447000, unit: CNY/t, as_of: +0d}
      - {type: price, product: Pr-Nd oxide, price: 452000, unit: CNY/t, as_of: +1d}
    expect:
      - {rule: prnd-450k, product: PrNd oxide, date: +2d}
  - name: right expectation
    start: 2025-02-24
    events:
      - {type: price, product: Pr-Nd oxide, price: 452000, unit: CNY/t, as_of: "+1d"}
    expect:
      - {rule: prnd-450k, date: 2025-02-25, text: ["452,000 CNY/t"]}
""")
    proc = run(str(t))
    assert proc.returncode == 1
    out = proc.stdout
    assert f"FAIL  wrong expectation  ({t}:2)" in out
    assert "expected, did not fire:\n          - prnd-450k  Pr-Nd oxide  +2d" in out
    assert "fired, not expected:\n          + prnd-450k  Pr-Nd oxide  2025-02-25" in out
    assert "ok    right expectation (1 alerts)" in out
    assert "2 tests, 1 failed" in out


def test_a_broken_test_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    t = tmp_path / "bad.test.yaml"
    t.write_text("tests:\n  - name: x\n    events:\n      - {type: price}\n    expekt: []\n")
    proc = run(str(t))
    assert proc.returncode == 1
    assert f"{t}:5: -: tests.0.expekt: Extra inputs are not permitted" in proc.stdout
    t.write_text("tests:\n  - name: x\n    events:\n      - {type: price, product: nope, price: 1, unit: CNY/t, "
                 "as_of: +1d}\n")
    proc = run(str(t))
    assert "event 1: '+1d' is relative: give the test a start: date" in proc.stdout


def test_rule_files_are_not_confused_with_test_files() -> None:
    from alerts.rules.load import load_rules

    rs = load_rules(REPO / "rules" / "examples")
    assert rs.problems == [] and not any(f.endswith(".test.yaml") for f in rs.files)


def test_bad_dates_in_a_test_are_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RULES)
    t = tmp_path / "d.test.yaml"
    t.write_text("tests:\n  - name: x\n    events:\n      - {type: price, product: Pr-Nd oxide, price: 1, "
                 "unit: CNY/t, as_of: 2025-02-24}\n    expect:\n      - {rule: prnd-450k, date: +1d}\n"
                 "  - name: y\n    start: 2025-02-24\n    events:\n      - {type: price, product: Pr-Nd oxide, "
                 "price: 1, unit: CNY/t, as_of: +99999999999d}\n")
    proc = run(str(t))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "expect 1: date: '+1d' is relative: give the test a start: date" in proc.stdout
    assert "event 1:" in proc.stdout
