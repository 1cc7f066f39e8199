"""Everything a trader writes in a rule file is bounded (alerts.rules.models, rules/README.md "Limits"): each
bound is tested at the limit (accepted) and one above (refused: one problem with its file, line and rule id,
``description: at most 500 characters (got 501)``), and a 5 MB description is refused at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.errors import Problem
from alerts.rules import models as m
from alerts.rules.load import load_rules


def j(value: Any) -> str:
    """``value`` as YAML (JSON is YAML), on one line."""
    return json.dumps(value, ensure_ascii=False)


def x(n: int) -> str:
    return "x" * n


def rule(*lines: str) -> str:
    """A rule file of one news rule ``r1``, with ``lines`` from line 4 on."""
    return "rules:\n  - id: r1\n    notify: [console]\n" + "".join(f"    {line}\n" for line in lines)


NEWS = "news: {any: [x]}"


def with_product(name: str, *lines: str) -> str:
    """A product ``name`` defined in the file (line 2), and a rule r1 with ``lines`` from line 6 on."""
    return (f"products:\n  - {{name: {j(name)}, unit: CNY/t}}\nrules:\n  - id: r1\n    notify: [console]\n"
            + "".join(f"    {line}\n" for line in lines))


def entry(key: str, base: dict[str, Any], **changes: Any) -> str:
    """A rule file with one ``key:`` entry (line 2): ``base`` with ``changes``."""
    return f"{key}:\n  - {j({**base, **changes})}\n"


def phrases(key: str, values: Callable[[int], list[str]]) -> Callable[[int], str]:
    """A news rule whose ``key:`` (any, all or none) holds ``values(n)`` (and any: [x] when it is not any)."""
    def text(n: int) -> str:
        others = "" if key == "any" else "any: [x], "
        return rule(f"news: {{{others}{key}: {j(values(n))}}}")
    return text


DIGEST = {"name": "d", "schedule": "0 8 * * 1-5", "to": ["desk@x.test"]}
WEBHOOK = {"name": "h", "url": "https://x.test/h", "secret": "k"}
PRODUCT = {"name": "yttrium oxide", "unit": "CNY/t"}
OWNER = {"name": "li.wei", "slack": "U0123ABCD"}


@dataclass(frozen=True)
class Case:
    name: str
    limit: int
    text: Callable[[int], str]  # the rule file with a value of size n
    line: int
    rule: str | None  # the rule id its problem names
    where: str | Callable[[int], str]  # what the message names
    unit: str = "characters"
    clean: bool = True  # at the limit, the file has no problem at all

    def message(self, n: int) -> str:
        where = self.where(n) if callable(self.where) else self.where
        return f"{where}: at most {self.limit:,} {self.unit} (got {n:,})"


CASES = [
    Case("description", m.DESCRIPTION_MAX, lambda n: rule(f"description: {j(x(n))}", NEWS), 4, "r1", "description"),
    Case("owner", m.NAME_MAX, lambda n: rule(f"owner: {j(x(n))}", NEWS), 4, "r1", "owner"),
    Case("labels", m.LABELS_MAX, lambda n: rule(f"labels: {j({f'k{i}': 'v' for i in range(n)})}", NEWS), 4, "r1",
         "labels", "entries"),
    Case("label key", m.LABEL_KEY_MAX, lambda n: rule(f"labels: {j({x(n): 'v'})}", NEWS), 4, "r1",
         lambda n: f"labels: key {x(n)!r}"),
    Case("label value", m.LABEL_VALUE_MAX, lambda n: rule(f"labels: {j({'desk': x(n)})}", NEWS), 4, "r1",
         "labels.desk"),
    Case("notify", m.TARGETS_MAX, lambda n: f"rules:\n  - id: r1\n    notify: {j(['console'] * n)}\n    {NEWS}\n", 3,
         "r1", "notify", "items"),
    Case("target", m.TARGET_MAX,
         lambda n: f"rules:\n  - id: r1\n    notify: {j(['email:' + 'a' * (n - 13) + '@x.test'])}\n    {NEWS}\n", 3,
         "r1", "notify.0"),
    Case("message", m.MESSAGE_MAX, lambda n: rule(f"message: {j(x(n))}", NEWS), 4, "r1", "message"),
    Case("cooldown", m.VALUE_MAX, lambda n: rule(f"cooldown: {j('0' * (n - 2) + '1d')}", NEWS), 4, "r1", "cooldown"),
    Case("amount", m.VALUE_MAX,
         lambda n: rule(f"price: {{product: Pr-Nd oxide, above: {j('0' * (n - 12) + '450000 CNY/t')}}}"), 4, "r1",
         "price.above"),
    Case("change over", m.VALUE_MAX,
         lambda n: rule(f"price: {{product: Tb oxide, change_pct: {{over: {j('0' * (n - 3) + '30d')}, above: 5}}}}"),
         4, "r1", "price.change_pct.over"),
    Case("stale after", m.VALUE_MAX,
         lambda n: rule(f"stale: {{product: Dy oxide, after: {j('0' * (n - 15) + '3 business days')}}}"), 4, "r1",
         "stale.after"),
    Case("within", m.VALUE_MAX,
         lambda n: rule("all_of: [{news: {any: [x]}}, {news: {any: [y]}}]", f"within: {j('0' * (n - 2) + '3d')}"),
         5, "r1", "within"),
    Case("all_of", m.PARTS_MAX, lambda n: rule(f"all_of: {j([{'news': {'any': [f'w{i}']}} for i in range(n)])}",
                                               "within: 3d"), 4, "r1", "all_of", "items"),
    Case("price product", m.NAME_MAX, lambda n: with_product(x(n), f"price: {{product: {j(x(n))}, above: 1000}}"), 6,
         "r1", "price.product"),
    Case("price products", m.PRODUCTS_MAX,
         lambda n: rule(f"price: {{products: {j(['Pr-Nd oxide'] * n)}, above: 450000}}"), 4, "r1", "price.products",
         "items"),
    Case("spread of", m.NAME_MAX,
         lambda n: with_product(x(n), f"spread: {{of: {j(x(n))}, minus: Pr-Nd oxide, above: 1}}"), 6, "r1",
         "spread.of"),
    Case("spread minus", m.NAME_MAX,
         lambda n: with_product(x(n), f"spread: {{of: Pr-Nd oxide, minus: {j(x(n))}, above: 1}}"), 6, "r1",
         "spread.minus"),
    Case("stale product", m.NAME_MAX, lambda n: with_product(x(n), f"stale: {{product: {j(x(n))}, after: 2d}}"), 6,
         "r1", "stale.product"),
    *(Case(f"news {key}", m.PHRASES_MAX, phrases(key, lambda n: ["p"] * n), 4, "r1", f"news.{key}", "items")
      for key in ("any", "all", "none")),
    *(Case(f"news {key} phrase", m.PHRASE_MAX, phrases(key, lambda n: [x(n)]), 4, "r1", f"news.{key}.0")
      for key in ("any", "all", "none")),
    Case("regex", m.REGEX_MAX, lambda n: rule(f"news: {{regex: {j(x(n))}}}"), 4, "r1", "news.regex"),
    Case("regexes", m.REGEXES_MAX, lambda n: rule(f"news: {{regex: {j([f'r{i}' for i in range(n)])}}}"), 4, "r1",
         "news.regex", "items"),
    Case("regex of a list", m.REGEX_MAX, lambda n: rule(f"news: {{regex: {j(['a', x(n)])}}}"), 4, "r1",
         "news.regex.1"),
    Case("news products", m.PRODUCTS_MAX, lambda n: rule(f"news: {{products: {j(['Tb oxide'] * n)}}}"), 4, "r1",
         "news.products", "items"),
    Case("news product", m.NAME_MAX, lambda n: with_product(x(n), f"news: {{products: {j([x(n)])}}}"), 6, "r1",
         "news.products.0"),
    Case("sources", m.SOURCES_MAX, lambda n: rule(f"news: {{any: [x], sources: {j(['smm'] * n)}}}"), 4, "r1",
         "news.sources", "items"),
    Case("source", m.NAME_MAX, lambda n: rule(f"news: {{any: [x], sources: {j([x(n)])}}}"), 4, "r1", "news.sources.0"),
    Case("digest name", m.ID_MAX, lambda n: entry("digests", DIGEST, name=x(n)), 2, None, "name"),
    Case("digest schedule", m.SCHEDULE_MAX, lambda n: entry("digests", DIGEST, schedule="0 8 * * 1-5" + " " * (n - 11)),
         2, None, "schedule"),
    Case("digest timezone", m.TIMEZONE_MAX, lambda n: entry("digests", DIGEST, timezone=x(n)), 2, None, "timezone",
         clean=False),
    Case("digest to", m.RECIPIENTS_MAX, lambda n: entry("digests", DIGEST, to=[f"d{i}@x.test" for i in range(n)]), 2,
         None, "to", "items"),
    Case("digest address", m.ADDRESS_MAX, lambda n: entry("digests", DIGEST, to=["a" * (n - 7) + "@x.test"]), 2, None,
         "to.0"),
    Case("digest subject", m.SUBJECT_MAX, lambda n: entry("digests", DIGEST, subject=x(n)), 2, None, "subject"),
    Case("webhook name", m.ID_MAX, lambda n: entry("webhooks", WEBHOOK, name=x(n)), 2, None, "name"),
    Case("webhook url", m.URL_MAX, lambda n: entry("webhooks", WEBHOOK, url="https://x.test/" + "a" * (n - 15)), 2,
         None, "url"),
    Case("webhook secret", m.SECRET_MAX, lambda n: entry("webhooks", WEBHOOK, secret=x(n)), 2, None, "secret"),
    Case("webhook headers", m.HEADERS_MAX,
         lambda n: entry("webhooks", WEBHOOK, headers={f"X-{i}": "v" for i in range(n)}), 2, None, "headers",
         "entries"),
    Case("header name", m.HEADER_NAME_MAX, lambda n: entry("webhooks", WEBHOOK, headers={"X" * n: "v"}), 2, None,
         lambda n: f"headers: key {'X' * 60!r}... ({n:,} characters)"),
    Case("header value", m.HEADER_VALUE_MAX, lambda n: entry("webhooks", WEBHOOK, headers={"X-Desk": x(n)}), 2, None,
         "headers.X-Desk"),
    Case("product name", m.NAME_MAX, lambda n: entry("products", PRODUCT, name=x(n)), 2, None, "name"),
    Case("product unit", m.UNIT_MAX, lambda n: entry("products", PRODUCT, unit="CNY/t" + " " * (n - 5)), 2, None,
         "unit", clean=False),
    Case("aliases", m.PRODUCTS_MAX, lambda n: entry("products", PRODUCT, aliases=[f"yo{i}" for i in range(n)]), 2,
         None, "aliases", "items"),
    Case("alias", m.NAME_MAX, lambda n: entry("products", PRODUCT, aliases=[x(n)]), 2, None, "aliases.0"),
    Case("owner name", m.NAME_MAX, lambda n: entry("owners", OWNER, name=x(n)), 2, None, "name"),
    Case("owner slack id", m.SLACK_ID_MAX, lambda n: entry("owners", OWNER, slack="U" + "0" * (n - 1)), 2, None,
         "slack"),
]


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "r.yaml"
    path.write_text(text, "utf-8")
    return [str(p) for p in load_rules(path).problems if p.severity == "error"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_limit_takes_its_bound_and_refuses_one_more(tmp_path: Path, case: Case) -> None:
    path = tmp_path / "r.yaml"
    at = problems(tmp_path, case.text(case.limit))
    assert not [p for p in at if case.message(case.limit).split(" (got")[0] in p], at
    if case.clean:
        assert at == []
    over = problems(tmp_path, case.text(case.limit + 1))
    expected = str(Problem(str(path), case.line, case.rule, case.message(case.limit + 1)))
    assert expected in over, (expected, over)
    assert all(len(p) < len(str(path)) + 300 for p in over), over  # what was written is never repeated whole


def test_a_rule_id_is_at_most_100_characters_and_its_problems_name_it_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    assert problems(tmp_path, f"rules:\n  - id: {x(m.ID_MAX)}\n    {NEWS}\n    notify: [console]\n") == []
    out = problems(tmp_path, f"rules:\n  - id: {x(5000)}\n    {NEWS}\n    notify: [console]\n    nope: 1\n")
    cut = x(m.ID_MAX) + "..."
    assert out == [f"{path}:2: {cut}: id: at most 100 characters (got 5,000)", f"{path}:5: {cut}: unknown key 'nope'"]


TOP = {"rules": "1", "digests": "1", "products": "1", "holidays": "2025-10-01", "webhooks": "1", "owners": "1",
       "watchlists": "1"}


@pytest.mark.parametrize("key", m.TOP_LEVEL_KEYS)
def test_each_top_level_list_is_bounded_per_file(tmp_path: Path, key: str) -> None:
    path = tmp_path / "r.yaml"
    limit = m.TOP_LEVEL_MAX[key]
    at = problems(tmp_path, f"{key}: [{', '.join([TOP[key]] * limit)}]\n")
    assert not [p for p in at if f"{key}: at most" in p]
    over = problems(tmp_path, f"# {key}\n{key}: [{', '.join([TOP[key]] * (limit + 1))}]\n")
    assert over == [f"{path}:2: -: {key}: at most {limit:,} items in one file (got {limit + 1:,}); split it into "
                    "several rule files"]


def test_a_rule_file_is_at_most_8_mib(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    head = f"rules:\n  - id: r1\n    {NEWS}\n    notify: [console]\n# "
    text = head + "x" * (m.FILE_MAX_BYTES - len(head) - 1) + "\n"
    assert len(text.encode()) == m.FILE_MAX_BYTES
    path.write_text(text, "utf-8")
    rs = load_rules(path)
    assert rs.problems == [] and list(rs.by_id) == ["r1"]
    path.write_text(text + "\n", "utf-8")
    rs = load_rules(path)
    assert [str(p) for p in rs.problems] == [f"{path}:1: -: the file is too large: at most 8,388,608 bytes (got "
                                             "8,388,609); split it into several rule files"]
    assert rs.by_id == {}


def test_a_5_mb_description_is_refused_at_once(tmp_path: Path) -> None:
    """The loader does linear work on it (YAML, validation, the repaired copy's checks): a hard bound of a
    second, on a busy machine, where quadratic work on 5,000,000 characters would take hours."""
    path = tmp_path / "r.yaml"
    for value in (j(x(5_000_000)), x(5_000_000), "|\n" + ("      " + x(100) + "\n") * 50_000):
        path.write_text(f"rules:\n  - id: r1\n    {NEWS}\n    notify: [console]\n    description: {value}\n"
                        "  - id: r2\n    news: {any: [y]}\n    notify: [console]\n", "utf-8")
        started = time.perf_counter()
        rs = load_rules(path)
        took = time.perf_counter() - started
        got = 5_000_000 if not value.startswith("|") else 5_050_000
        assert [str(p) for p in rs.problems] == [f"{path}:5: r1: description: at most 500 characters (got {got:,})"]
        assert list(rs.by_id) == ["r2"]  # the other rule of the file works
        assert took < 1.0, took


def test_keys_and_header_values_are_checked_for_what_they_may_hold(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    out = problems(tmp_path, rule('labels: {"desk name": a, desk.sub-1: b, _x: c}', NEWS)
                   + entry("webhooks", WEBHOOK, headers={"X Desk": "v", "X-Ok": "line\nbreak", "X-Tab": "a\tb"}))
    assert out == [
        f"{path}:4: r1: labels: key 'desk name': letters, digits, _, . and -, starting with a letter or _",
        f"{path}:7: -: headers: key 'X Desk': a header name: letters, digits and !#$%&'*+.^_`|~-",
        f"{path}:7: -: headers.X-Ok: no line breaks or control characters",
    ]


def test_a_value_of_a_union_too_long_is_one_problem(tmp_path: Path) -> None:
    """``regex:`` takes a text or a list, ``above:`` a number or a text: the too-long text is the problem, not
    that it is not a list (or a number) as well."""
    path = tmp_path / "r.yaml"
    assert problems(tmp_path, rule(f"news: {{regex: {j(x(1001))}}}")) == [
        f"{path}:4: r1: news.regex: at most 1,000 characters (got 1,001)"]
    assert problems(tmp_path, rule(f"price: {{product: Dy oxide, above: {j(x(51))}}}")) == [
        f"{path}:4: r1: price.above: at most 50 characters (got 51)"]


def test_a_long_holiday_or_top_level_key_is_named_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    out = problems(tmp_path, f"holidays: [{x(5000)}]\n? {'k' * 5000}\n: 1\n")  # ? : a key that long
    assert out == [f"{path}:1: -: holidays: {x(60)!r}... (5,000 characters) is not a date such as 2025-10-01",
                   f"{path}:2: -: unknown top-level key {'k' * 60!r}... (5,000 characters); expected one of rules, "
                   "digests, products, holidays, webhooks, owners, watchlists"]


long_text = st.text(min_size=0, max_size=3000)
PLACES = ["description", "owner", "message", "cooldown", "labels-key", "labels-value", "notify", "key", "id"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(place=st.sampled_from(PLACES), value=long_text)
def test_any_text_anywhere_is_a_short_problem_or_none(tmp_path: Path, place: str, value: str) -> None:
    """For any text in any of these places, loading never raises and no problem repeats more than a line of
    it (a line: the file's path, a cut rule id, the message)."""
    item: dict[str, Any] = {"id": "r1", "news": {"any": ["x"]}, "notify": ["console"]}
    if place == "labels-key":
        item["labels"] = {value: "v"}
    elif place == "labels-value":
        item["labels"] = {"desk": value}
    elif place == "notify":
        item["notify"] = [value]
    elif place == "key":
        item[value] = 1
    else:
        item[place] = value
    path = tmp_path / "r.yaml"
    path.write_text(j({"rules": [item]}), "utf-8")
    rs = load_rules(path)
    assert all(len(str(p)) < len(str(path)) + 400 for p in rs.problems), rs.problems
