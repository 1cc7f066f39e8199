"""No rule file, however broken, makes the loader raise: mutated versions of every example rule file
(rules/examples and the documentation's blocks) only ever give reported problems."""

from __future__ import annotations

import datetime as dt
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.rules.checks import warnings
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_catalog, load_rules
from alerts.rules.models import Change, NewsCondition, Part, PriceCondition, Rule, SpreadCondition, StaleCondition
from tests.rule_docs import all_blocks, example_files

#: Examples per run; RULE_FUZZ_EXAMPLES=5000 for a deeper search on a developer's machine.
EXAMPLES = int(os.environ.get("RULE_FUZZ_EXAMPLES", "250"))
SOURCES = [p.read_text("utf-8") for p in example_files()] + [b.text for b in all_blocks()]
KEYS = sorted({k for m in (Rule, PriceCondition, NewsCondition, Change, SpreadCondition, StaleCondition, Part)
               for k in m.model_fields} | {"rules", "digests", "products", "holidays", "webhooks"})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10**400, -(10**400), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["450,000 CNY/t", "-5", "0", "1e400", "30d", "-3d", "0d", "3 business days", "console",
                     "digest:desk-daily", "webhook:risk-system", "slack:#x", "Pr-Nd oxide", "terbium oxide",
                     "{{ price }}", "{{", "(a", "*", "", " ", "\x00", "氧化镨钕", "450 CNY/kg", "5%", "abs_above",
                     "9" * 400 + "d", "1" + "0" * 400 + " CNY/t", "{{ price|nope }}", "x" * 5000]),
    st.dates(min_value=dt.date(1, 1, 1)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner,
                                                 max_size=3)), max_leaves=8)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for el in path[:-1]:
        doc = doc[el]
    return doc


def mutate(doc: Any, draw: st.DrawFn) -> Any:
    """One structural change: a key or value deleted, duplicated, replaced, renamed or its type swapped."""
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return draw(values)
    path = draw(st.sampled_from(paths))
    parent, key = _parent(doc, path), path[-1]
    op = draw(st.sampled_from(["delete", "duplicate", "replace", "rename", "swap", "wrap", "negate"]))
    if op == "delete":
        del parent[key]
    elif op == "duplicate" and isinstance(parent, dict):
        parent[draw(st.sampled_from(KEYS))] = parent[key]
    elif op == "duplicate":
        parent.append(parent[key])
    elif op == "replace":
        parent[key] = draw(values)
    elif op == "rename" and isinstance(parent, dict):
        new = draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers()))
        parent[new] = parent.pop(key)
    elif op == "swap":
        v = parent[key]
        parent[key] = str(v) if not isinstance(v, str) else draw(st.one_of(st.integers(), st.floats(), st.none()))
    elif op == "wrap":
        parent[key] = draw(st.sampled_from([[parent[key]], {"x": parent[key]}, {parent[key]: 1}
                                            if isinstance(parent[key], str | int) else [parent[key]]]))
    elif op == "negate":
        v = parent[key]
        parent[key] = -v if isinstance(v, int | float) and not isinstance(v, bool) else f"-{v}"
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    if draw(st.booleans()):  # structural: parse, change, write back (block or flow style)
        doc = yaml.safe_load(text)
        for _ in range(draw(st.integers(1, 4))):
            doc = mutate(doc, draw)
        text = yaml.safe_dump(doc, allow_unicode=True, default_flow_style=draw(st.sampled_from([False, None, True])),
                              sort_keys=False)
    for _ in range(draw(st.integers(0 if text else 1, 3))):  # textual
        op = draw(st.sampled_from(["truncate", "insert", "drop_line", "dup_line", "replace_char"]))
        lines = text.splitlines(keepends=True) or [""]
        at = draw(st.integers(0, max(len(text), 1) - 1))
        n = draw(st.integers(0, len(lines) - 1))
        if op == "truncate":
            text = text[:at]
        elif op == "insert":
            text = text[:at] + draw(st.text(min_size=1, max_size=5)) + text[at:]
        elif op == "drop_line":
            text = "".join(lines[:n] + lines[n + 1:])
        elif op == "dup_line":
            text = "".join(lines[:n + 1] + lines[n:])
        elif text:
            text = text[:at] + draw(st.characters()) + text[at + 1:]
    return text


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def assert_only_problems(rs: RuleSet, path: Path) -> None:
    for p in [*rs.problems, *warnings(rs, {})]:
        assert p.path == str(path)
        assert isinstance(p.line, int) and p.line >= 0
        assert isinstance(p.message, str) and p.message.strip()
        assert p.severity in ("error", "warning")
        assert str(p).startswith(f"{path}:{p.line}: ")
    for compiled in rs.by_id.values():
        for r in compiled:
            threshold = getattr(r, "threshold", 0.0)
            assert math.isfinite(threshold)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated())
def test_mutated_rule_files_give_problems_never_exceptions(workdir: Path, text: str) -> None:
    path = workdir / "rules.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert_only_problems(load_rules(path), path)
    assert load_catalog(path).find("Pr-Nd oxide") is not None  # what publish reads: never raises either


def test_the_sources_are_there() -> None:
    assert len(SOURCES) >= 3 + 10  # the three example files and the documentation's blocks
