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
    ("    price: {product: Dy oxide, change: {over: 7d, above: 20 USD/kg}}\n    notify: [console]\n", 3,
     "a change in another currency is not supported; use change_pct"),
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
            "webhooks, owners, watchlists") in out
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


def test_every_problem_of_a_rule_in_one_run_in_line_order(tmp_path: Path) -> None:
    """The issue's rule: a misspelled key, an unknown product, a bad target and a bad duration. The
    misspelled key no longer hides the rest, and the problems come in the order of their lines."""
    (tmp_path / "r.yaml").write_text("""rules:
  - id: fine
    price: {product: Dy oxide, above: 1700}
    notify: [console]
  - id: r1
    cooldown: soon
    price:
      product: unobtainium
      abve: 450000
    notify: [pager:#x]
""")
    path = tmp_path / "r.yaml"
    expected = [
        f"{path}:6: r1: cooldown: 'soon' is not a duration; write for example 30m, 6h, 1d or 1h30m",
        f"{path}:8: r1: price.product: unknown product 'unobtainium'",
        f"{path}:9: r1: unknown key 'abve' (did you mean 'above'?)",
        f"{path}:10: r1: notify: unknown target 'pager:#x'; use slack:#channel, console, digest:NAME, "
        "email:ADDRESS or webhook:NAME",
    ]
    rs = load_rules(tmp_path)
    assert [str(p) for p in rs.problems] == expected
    assert set(rs.by_id) == {"fine"}  # the broken rule is checked, never run
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == expected


@pytest.mark.parametrize("snippet,expected", [
    # a misspelled rule key is checked as the key it resembles
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    cooldwn: soon\n",
     [(5, "unknown key 'cooldwn' (did you mean 'cooldown'?)"), (5, "cooldown: 'soon' is not a duration")]),
    # ... and what only the whole rule could say still shows: two conditions
    ("    severty: urgent\n    price: {product: Dy oxide, above: 1700}\n    news: {any: [x]}\n    notify: [console]\n",
     [(2, "a rule needs exactly one condition"), (3, "unknown key 'severty' (did you mean 'severity'?)"),
      (3, "severity: Input should be 'info', 'warning' or 'critical'")]),
    # an unknown key that resembles nothing: left out, the rest checked, no made-up "give exactly one of"
    ("    price: {product: nope, xyzzy: 1}\n    notify: [console, digest:nope]\n",
     [(3, "unknown key 'xyzzy'"), (3, "price.product: unknown product 'nope'"),
      (4, "notify: digest 'nope' is not defined under digests:")]),
    # an invalid value: the rest of the rule is still checked
    ("    price: {product: nope, above: lots}\n    notify: [console]\n    severity: urgent\n    within: 1y\n",
     [(2, "all_of: and within: go together"), (3, "price.product: unknown product 'nope'"),
      (3, "price.above: cannot read 'lots'"), (5, "severity: Input should be"),
      (6, "within: '1y' is not a duration")]),
    # a sub-condition without a required key is left out; the rest is checked
    ("    spread: {of: Pr-Nd alloy, above: 1}\n    notify: [pager:x]\n    message: '{{ prise }}'\n",
     [(3, "missing required key 'minus'"), (4, "notify: unknown target 'pager:x'"),
      (5, "message: unknown field 'prise'")]),
    # a missing id and notify: the rest is checked all the same
    ("    price: {product: nope, above: 1}\n", [(2, "missing required key 'notify'"),
                                               (3, "price.product: unknown product 'nope'")]),
    # a misspelled condition, with misspellings inside it
    ("    prise: {product: nope, abve: -1}\n    notify: [console]\n",
     [(3, "unknown key 'prise' (did you mean 'price'?)"), (3, "unknown key 'abve' (did you mean 'above'?)"),
      (3, "price.product: unknown product 'nope'")]),
    # a duplicate id: the copy's own problems show too
    ("    news: {any: [x]}\n    notify: [console]\n  - id: r1\n    stale: {product: Dy oxide, after: soon}\n"
     "    notify: [console]\n",
     [(5, "duplicate rule id, first defined at"), (6, "stale.after: 'soon' is neither")]),
])
def test_a_broken_rule_is_checked_as_far_as_it_can_be(tmp_path: Path, snippet: str,
                                                      expected: list[tuple[int, str]]) -> None:
    rs = load_rules(_write(tmp_path, "rules:\n  - id: r1\n" + snippet))
    got = [(p.line, p.message) for p in rs.problems]
    assert len(got) == len(expected), got
    for (line, message), (want_line, want) in zip(got, expected, strict=True):
        assert line == want_line and message.startswith(want), got
    duplicate = any("duplicate" in message for _, message in expected)
    assert sorted(rs.by_id) == (["r1"] if duplicate else [])  # a broken rule never runs; the first r1 does


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "r.yaml").write_text(body)
    return tmp_path


def test_problems_are_sorted_by_file_then_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rules:\n  - id: a1\n    news: {any: [x]}\n    notify: [console]\n"
                                     "    cooldown: soon\n  - id: a2\n    price: {product: nope, above: 1}\n"
                                     "    notify: [console]\ndigests:\n  - {name: d, schedule: nope, to: [a@b.c]}\n")
    (tmp_path / "b.yaml").write_text("products:\n  - {name: x, unit: furlongs}\nrules:\n  - id: b1\n"
                                     "    news: {any: [x]}\n    notify: [slack:general]\n")
    got = [(Path(p.path).name, p.line) for p in load_rules(tmp_path).problems]
    assert got == [("a.yaml", 5), ("a.yaml", 7), ("a.yaml", 10), ("b.yaml", 2), ("b.yaml", 6)]


_SPLIT = "inside { } reads as"


@pytest.mark.parametrize("snippet,line,message", [
    ("    price: {product: Pr-Nd oxide, above: 450,000 CNY/t}\n    notify: [console]\n", 3,
     "price.above: 450,000 CNY/t inside { } reads as above: 450 and a key '000 CNY/t', because a comma separates "
     "the entries of a { } mapping: quote the value (above: \"450,000 CNY/t\") or use block style"),
    ("    spread: {of: Pr-Nd alloy, minus: Pr-Nd oxide, above: 110,000 CNY/t}\n    notify: [console]\n", 3,
     "spread.above: 110,000 CNY/t inside { } reads as above: 110 and a key '000 CNY/t'"),
    ("    price: {product: Pr-Nd oxide, change: {over: 7d, above: 20,000 CNY/t}}\n    notify: [console]\n", 3,
     "price.change.above: 20,000 CNY/t inside { } reads as above: 20 and a key '000 CNY/t'"),
    ("    price: {product: Pr-Nd oxide, change: {over: 7d, abs_above: 20,000}}\n    notify: [console]\n", 3,
     "price.change.abs_above: 20,000 inside { } reads as abs_above: 20 and a key '000'"),
    ("    price: {product: Pr-Nd oxide, crosses_below: 1,445,000.5 yuan/mt}\n    notify: [console]\n", 3,
     "price.crosses_below: 1,445,000.5 yuan/mt inside { } reads as crosses_below: 1 and keys '445' and "
     "'000.5 yuan/mt'"),
    ("    price: {product: Pr-Nd oxide, below: 300,000}\n    notify: [console]\n", 3,
     "quote the value (below: \"300,000\")"),
    ("    all_of:\n      - price: {product: Pr-Nd oxide, above: 450,000}\n      - news: {any: [x]}\n"
     "    within: 3d\n    notify: [console]\n", 4, "all_of.0.price.above: 450,000 inside { }"),
])
def test_a_number_cut_at_its_commas_inside_braces(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    assert_one_problem(tmp_path, snippet, line, message)


def test_cut_numbers_anywhere_in_a_flow_rule_and_the_rest_of_it_checked(tmp_path: Path) -> None:
    body = ("rules:\n"
            "  - {id: r1, price: {product: Pr-Nd oxide, above: 450,000 CNY/t}, rearm: 445,000, notify: [console]}\n"
            "  - id: r2\n    price: {product: nope, above: 450,000, below: 300,000}\n    notify: [console]\n"
            "    rearm: 445,000 CNY/t\n")
    out = problems(tmp_path, body)
    path = tmp_path / "r.yaml"
    assert out == [
        f"{path}:2: r1: price.above: 450,000 CNY/t {_SPLIT} above: 450 and a key '000 CNY/t', because a comma "
        "separates the entries of a { } mapping: quote the value (above: \"450,000 CNY/t\") or use block style",
        f"{path}:2: r1: rearm: 445,000 {_SPLIT} rearm: 445 and a key '000', because a comma separates the entries "
        "of a { } mapping: quote the value (rearm: \"445,000\") or use block style",
        f"{path}:4: r2: price.above: 450,000 {_SPLIT} above: 450 and a key '000', because a comma separates the "
        "entries of a { } mapping: quote the value (above: \"450,000\") or use block style",
        f"{path}:4: r2: price.below: 300,000 {_SPLIT} below: 300 and a key '000', because a comma separates the "
        "entries of a { } mapping: quote the value (below: \"300,000\") or use block style",
        f"{path}:4: r2: price: give exactly one of above, below, crosses_above, crosses_below, change_pct, change "
        "(got above, below)",
        f"{path}:4: r2: price.product: unknown product 'nope'",
    ]  # the numbers as meant (450,000 and 445,000): no "rearm must be at or below the threshold"
    assert load_rules(tmp_path).by_id == {}


def test_cut_numbers_outside_rules_and_in_rule_test_files(tmp_path: Path) -> None:
    from alerts.rules.yaml_lines import YamlError, load

    out = problems(tmp_path, "webhooks:\n  - name: w\n    url: https://example.com/x\n    secret: s\n"
                             "    headers: {X-Limit: 1,000}\n")
    assert out == [f"{tmp_path / 'r.yaml'}:5: -: webhooks.0.headers.X-Limit: 1,000 {_SPLIT} X-Limit: 1 and a key "
                   "'000', because a comma separates the entries of a { } mapping: quote the value "
                   "(X-Limit: \"1,000\") or use block style"]
    with pytest.raises(YamlError, match=r"tests\.0\.events\.0\.price: 447,000 inside \{ \} reads as price: 447") as e:
        load("tests:\n  - name: x\n    events:\n      - {type: price, price: 447,000, unit: CNY/t}\n")
    assert e.value.line == 4
    # commas that are not thousands separators are YAML's own business
    assert problems(tmp_path, "rules:\n  - {id: r, news: {any: [a, b]}, notify: [console], labels: {n: '1,5'}}\n") == []


@pytest.mark.parametrize("snippet,line,message", [
    ("    all_of:\n      - price: {product: terbium oxide, change: {over: 30d, abs_above: -5}}\n"
     "      - news: {any: [x]}\n    within: 3d\n    notify: [console]\n", 4,
     "all_of.0.price.change.abs_above: abs_above takes a positive size of move"),
    ("    all_of:\n      - news: {any: [x]}\n      - price: {product: terbium oxide, change_pct: {over: 30d, "
     "abs_above: -5}}\n    within: 3d\n    notify: [console]\n", 5,
     "all_of.1.price.change_pct.abs_above: abs_above takes a positive size of move"),
    ("    all_of:\n      - price: {product: terbium oxide, above: -5}\n      - news: {any: [x]}\n    within: 3d\n"
     "    notify: [console]\n", 4, "all_of.0.price.above: a threshold must be positive"),
    ("    all_of:\n      - price: {product: nope, change: {over: soon, above: 1}}\n      - news: {any: [x]}\n"
     "    within: 3d\n    notify: [console]\n", 4, "all_of.0.price.product: unknown product 'nope'"),
    ("    price: {product: Dy oxide, above: .nan}\n    notify: [console]\n", 3,
     "price.above: 'nan' is not a number a price can be"),
    ("    price: {product: Dy oxide, above: -.inf}\n    notify: [console]\n", 3,
     "price.above: '-inf' is not a number a price can be"),
    ("    price: {product: Dy oxide, above: 1" + "0" * 400 + "}\n    notify: [console]\n", 3,
     "is not a number a price can be"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    cooldown: " + "9" * 30 + "d\n", 5,
     "is too long: a cooldown lasts at most 365 days"),
    ("    price: {product: Dy oxide, above: 1700}\n    notify: [console]\n    message: '{{ price|t0usands }}'\n", 5,
     "message: template does not compile: No filter named 't0usands'"),
])
def test_what_crashed_the_loader_is_a_problem(tmp_path: Path, snippet: str, line: int, message: str) -> None:
    """An integer in a key path joined as text (all_of's negative abs_above), numbers too big for a
    float, an unknown template filter: each a problem with its line, never an exception."""
    out = problems(tmp_path, "rules:\n  - id: r1\n" + snippet)
    assert any(p.startswith(f"{tmp_path / 'r.yaml'}:{line}: r1: ") and message in p for p in out), out
    assert all(p.startswith(f"{tmp_path / 'r.yaml'}:") for p in out)


def test_the_all_of_crash_no_longer_stops_rules_check(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - id: r1\n    all_of:\n"
                                     "      - price: {product: terbium oxide, change: {over: 30d, abs_above: -5}}\n"
                                     "      - news: {any: [x]}\n    within: 3d\n    notify: [console]\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check", str(tmp_path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == (f"{tmp_path / 'r.yaml'}:4: r1: all_of.0.price.change.abs_above: abs_above takes a "
                           "positive size of move\n")


@pytest.mark.parametrize("threshold,hint", [
    ("45", "10,000 times too low: a price in 万元/吨? 45 万元/吨 is 450,000 CNY/t (write 450000)"),
    ("4500000", ""),
    ("'44.4 万元/磅'", None),  # not a unit (per pound): an error, not a warning; 万元/吨 is one (issue 17)
])
def test_catalog_range_hints(tmp_path: Path, threshold: str, hint: str | None) -> None:
    from alerts.rules.checks import warnings

    rs = load_rules(_write(tmp_path, f"rules:\n  - id: r\n    price: {{product: Pr-Nd oxide, above: {threshold}}}\n"
                                     "    notify: [console]\n"))
    if hint is None:
        assert rs.errors and not rs.by_id
        return
    (w,) = warnings(rs, {})
    assert "is far outside the typical price of Pr-Nd oxide" in w.message
    assert w.message.endswith(hint if hint else "check the number and the unit")


def test_thresholds_inside_the_typical_range_do_not_warn(tmp_path: Path) -> None:
    from alerts.rules.checks import warnings

    rs = load_rules(_write(tmp_path, "rules:\n"
                           "  - {id: a, price: {product: Pr-Nd oxide, above: 450000}, notify: [console]}\n"
                           "  - {id: b, price: {product: terbium oxide, below: 6 CNY/kg}, notify: [console]}\n"
                           "  - {id: c, price: {product: Tb oxide, crosses_above: 6500000 CNY/t}, notify: [console]}\n"
                           "  - {id: d, price: {product: Tb oxide, change: {over: 7d, above: 5}}, notify: [console]}\n"
                           "  - {id: e, price: {product: yttrium oxide, above: 1}, notify: [console]}\n"
                           "products: [{name: yttrium oxide, unit: CNY/t}]\n"))
    assert rs.problems == [] and sorted(rs.by_id) == ["a", "b", "c", "d", "e"]
    # b is 6 CNY/kg for a product around 6,000: the one warning; yttrium oxide has no typical range
    assert [(w.rule_id, "far outside the typical price of terbium oxide" in w.message) for w in warnings(rs, {})] \
        == [("b", True)]
