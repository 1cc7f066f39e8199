"""Rule loading and `alerts rules check`: every problem, with file, line and rule id."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alerts.rules.load import load_rules

REPO = Path(__file__).resolve().parents[1]


def problems(tmp_path: Path, body: str, name: str = "r.yaml") -> list[str]:
    (tmp_path / name).write_text(body)
    return [str(p) for p in load_rules(tmp_path).problems]


def test_shipped_examples_are_valid() -> None:
    rs = load_rules(REPO / "rules")
    assert rs.problems == []
    assert {"prnd-oxide-450k", "export-licence-news"} <= set(rs.by_id)


def test_unknown_key_names_line_and_rule(tmp_path: Path) -> None:
    body = """rules:
  - id: ok-rule
    price: {product: Dy oxide, above: 1700}
    notify: [console]
  - id: typo-rule
    price:
      product: Pr-Nd oxide
      abve: 450000
    notify: [console]
"""
    out = problems(tmp_path, body)
    path = str(tmp_path / "r.yaml")
    assert out == [f"{path}:8: typo-rule: unknown key 'abve' (did you mean 'above'?)"]


def test_valid_rules_survive_a_broken_neighbour(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("""rules:
  - id: good
    price: {product: Dy oxide, above: 1700}
    notify: [console]
  - id: bad
    price: {product: Dy oxide, above: 1700}
    notify: [pager:#x]
""")
    rs = load_rules(tmp_path)
    assert set(rs.by_id) == {"good"}
    assert [str(p) for p in rs.problems] == [
        f"{tmp_path / 'r.yaml'}:7: bad: notify: unknown target 'pager:#x'; use slack:#channel, console, "
        "digest:NAME, email:ADDRESS or webhook:NAME"]


@pytest.mark.parametrize("snippet,line,message", [
    ("    price: {product: unobtainium, above: 1}\n    notify: [console]\n", 3, "unknown product 'unobtainium'"),
    ("    price: {product: Dy oxide, above: 1700 USD/kg}\n    notify: [console]\n", 3,
     "cannot convert USD/kg to CNY/kg: different currencies"),
    ("    price: {product: Dy oxide, above: lots}\n    notify: [console]\n", 3, "cannot read 'lots'"),
    ("    price: {product: Dy oxide, above: 1, below: 2}\n    notify: [console]\n", 3, "(got above, below)"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [digest:nope]\n", 4,
     "digest 'nope' is not defined under digests:"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: []\n", 4, "notify: List should have at least 1"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    cooldown: soon\n", 5,
     "cooldown: 'soon' is not a duration"),
    ("    price: {product: Dy oxide, above: 1700}\n    news: {any: [x]}\n    notify: [console]\n", 2,
     "exactly one condition"),
    ("    news: {none: [webinar]}\n    notify: [console]\n", 3, "give at least one of any:, all:, regex: or products:"),
    ("    news: {any: [\"**\"]}\n    notify: [console]\n", 3, "phrase '**' has no words"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [slack:general]\n", 4, "a Slack channel is"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    severity: urgent\n", 5,
     "severity: Input should be 'info', 'warning' or 'critical'"),
])
def test_rule_errors(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    assert_one_problem(tmp_path, snippet, line, message)


def assert_one_problem(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    """The rule r1 made of ``snippet`` has exactly one problem, on ``line``, saying ``message``."""
    out = problems(tmp_path, "rules:\n  - id: r1\n" + snippet)
    assert len(out) == 1, out
    assert out[0].startswith(f"{tmp_path / 'r.yaml'}:{line}: r1: "), out
    assert message in out[0]


def test_bad_ids_duplicates_and_top_level(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rules:\n  - id: dup\n    news: {any: [x]}\n    notify: [console]\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text(
        "alerts: []\nrules:\n  - id: dup\n    news: {any: [y]}\n    notify: [console]\n"
        "  - id: Bad Id\n    news: {any: [y]}\n    notify: [console]\n")
    out = [str(p) for p in load_rules(tmp_path).problems]
    b = tmp_path / "sub" / "b.yml"
    assert (f"{b}:1: -: unknown top-level key 'alerts'; expected one of rules, digests, products, holidays, "
            "webhooks") in out
    assert f"{b}:3: dup: duplicate rule id, first defined at {tmp_path / 'a.yaml'}:2" in out
    assert any(p.startswith(f"{b}:6: Bad Id: id: String should match pattern") for p in out), out


def test_yaml_syntax_error_and_duplicate_key(tmp_path: Path) -> None:
    out = problems(tmp_path, "rules:\n  - id: x\n    notify: [console\n")
    assert len(out) == 1 and out[0].startswith(f"{tmp_path / 'r.yaml'}:4: -: invalid YAML"), out
    out = problems(tmp_path, "rules:\n  - id: x\n    id: y\n")
    assert out == [f"{tmp_path / 'r.yaml'}:3: -: duplicate key 'id'"]


def test_products_extend_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("products:\n  - {name: yttrium oxide, unit: CNY/t, aliases: [Y oxide]}\n")
    (tmp_path / "r.yaml").write_text("rules:\n  - id: y\n    price: {product: y-oxide, above: 45 CNY/kg}\n"
                                     "    notify: [console]\n")
    rs = load_rules(tmp_path)
    assert rs.problems == []
    (idx,) = rs.by_product.values()
    (rule,) = idx.by_fp.values()
    assert (rule.product.name, rule.threshold) == ("yttrium oxide", 45_000)


def test_rules_check_command(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - id: r1\n    price: {product: nope, above: 1}\n"
                                     "    notify: [console]\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"{tmp_path / 'r.yaml'}:3: r1: price.product: unknown product 'nope'"
    ok = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(REPO / "rules")],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.parametrize("snippet,line,message", [
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    message: '{{ prise }}'\n", 5,
     "message: unknown field 'prise'"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    message: '{{ price | }}'\n", 5,
     "message: template does not compile"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    rearm: 1800\n", 5,
     "rearm: for above, the re-arm level must be at or below the threshold"),
    ("    price: {product: Dy oxide, crosses_above: 1700}\n    notify: [console]\n    confirm: 2\n", 5,
     "confirm: and resolve: apply to above/below"),
    ("    price: {product: Dy oxide, change_pct: {over: 30d, above: 5 CNY/kg}}\n    notify: [console]\n", 3,
     "a percentage takes no unit"),
    ("    price: {product: Dy oxide, change_pct: {over: soon, above: 5}}\n    notify: [console]\n", 3,
     "price.change_pct.over: 'soon' is not a duration"),
    ("    price: {product: Dy oxide, change_pct: {over: 30d}}\n    notify: [console]\n", 3,
     "give exactly one of above, below, abs_above"),
    ("    price: {products: [Dy oxide, nope], above: 1}\n    notify: [console]\n", 3,
     "price.products: unknown product 'nope'"),
    ("    price: {product: Dy oxide, products: [Tb oxide], above: 1}\n    notify: [console]\n", 3,
     "give exactly one of product: or products:"),
    ("    news: {any: [x]}\n    notify: [console]\n    resolve: true\n", 2,
     "resolve: applies to price and spread rules only"),
])
def test_more_rule_errors(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    assert_one_problem(tmp_path, snippet, line, message)


def test_warnings_do_not_fail_the_check(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - id: w\n    news: {any: [magnets], all: [rare earth], none: [earth]}\n"
                                     "    notify: [console]\n")
    rs = load_rules(tmp_path)
    assert rs.errors == [] and set(rs.by_id) == {"w"}
    (w,) = rs.warnings
    assert str(w).startswith(f"{tmp_path / 'r.yaml'}:3: w: warning: news.none: 'earth' is in every article")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "warning: news.none" in proc.stdout


def test_warnings_from_price_history(client: object, settings: object, rules_dir: Path) -> None:
    from alerts.settings import Settings
    from tests.conftest import env_for
    from tests.pipeline import Pipeline, quote

    assert isinstance(settings, Settings)
    (rules_dir / "r.yaml").write_text("""rules:
  - id: unit-slip
    price: {product: Pr-Nd oxide, above: 450}
    notify: [console]
  - id: short-window
    price: {product: Pr-Nd oxide, change_pct: {over: 12h, above: 5}}
    notify: [console]
  - id: fine
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [console]
""")
    p = Pipeline(client, settings)  # type: ignore[arg-type]
    p.run(quote(444_000, "2025-03-10"), quote(445_000, "2025-03-11"), quote(447_000, "2025-03-12"))
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check"], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = rules_dir / "r.yaml"
    assert (f"{path}:2: unit-slip: warning: threshold 450 CNY/t is far outside any price seen for Pr-Nd oxide "
            "(444,000 to 447,000): check the number and the unit") in proc.stdout
    assert (f"{path}:5: short-window: warning: window 12h is shorter than the usual time between quotes of "
            "Pr-Nd oxide (1d)") in proc.stdout
    assert "fine" not in proc.stdout


@pytest.mark.parametrize("snippet,line,message", [
    ("    spread: {of: Pr-Nd alloy, minus: nope, above: 1}\n    notify: [console]\n", 3,
     "spread.minus: unknown product 'nope'"),
    ("    spread: {of: Pr-Nd alloy, minus: Dy oxide, above: 1}\n    notify: [console]\n", 3, ""),
    ("    stale: {product: Dy oxide, after: soon}\n    notify: [console]\n", 3,
     "stale.after: 'soon' is neither 'N business days' nor a duration"),
    ("    all_of:\n      - price: {product: Dy oxide, above: 1}\n      - news: {any: [x]}\n    notify: [console]\n", 2,
     "all_of: and within: go together"),
    ("    all_of:\n      - price: {product: nope, above: 1}\n      - news: {any: [x]}\n    within: 3d\n"
     "    notify: [console]\n", 4, "all_of.0.price.product: unknown product 'nope'"),
])
def test_composite_rule_errors(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    if not message:
        assert problems(tmp_path, "rules:\n  - id: r1\n" + snippet) == []
        return
    assert_one_problem(tmp_path, snippet, line, message)


@pytest.mark.parametrize("template,message", [
    ("{{ 9 ** (9 ** 10) }}", "exponent"),
    ("{{ 'x' * 4000000000 }}", "repeating text"),
    ("{{ (price|int) ** 999999999 }}", "exponent"),
    ("{% for i in range(99999) %}x{% endfor %}", "range() is not available"),
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
])
def test_templates_that_could_hang_or_escape_are_refused(tmp_path: Path, template: str, message: str) -> None:
    import json

    out = problems(tmp_path, "rules:\n  - id: t\n    price: {product: Dy oxide, above: 1700}\n"
                             f"    notify: [console]\n    message: {json.dumps(template)}\n")
    assert len(out) == 1 and out[0].startswith(f"{tmp_path / 'r.yaml'}:5: t: message: "), out
    assert message in out[0]


@pytest.mark.parametrize("body,line,message", [
    ("rules:\n  - id: r\n    news: {any: [x]}\n    notify: [console]\n    expires: 2025-02-30\n", 5,
     "'2025-02-30' is not valid: day is out of range for month"),
    ("holidays: [2025-13-01]\n", 1, "'2025-13-01' is not valid"),
    ("a: &a [*a]\n", 1, "an alias refers to itself"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", 0,
     "expands to more than 200,000 values"),
    ("digests:\n  - {name: d, schedule: not a cron, to: [a@b.c]}\n", 2, "schedule 'not a cron' is not a cron"),
    ("digests:\n  - {name: d, schedule: '0 8 * * 1-5', timezone: Mars/Base, to: [a@b.c]}\n", 2,
     "unknown time zone 'Mars/Base'"),
])
def test_hostile_or_wrong_yaml_is_a_problem_not_a_crash(tmp_path: Path, body: str, line: int, message: str) -> None:
    out = problems(tmp_path, body)
    assert len(out) == 1, out
    assert message in out[0]
    if line:
        assert out[0].startswith(f"{tmp_path / 'r.yaml'}:{line}: "), out
