"""The feed sources file (ALERTS_SOURCES_FILE) checked as rule files are: every problem as FILE:LINE: NAME:
message in one run (``alerts sources check``), the valid sources still loaded, and no file at all crashing the
loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from alerts.ingest.sources import load_sources, parse_sources
from workers.cli import main as cli

SOURCES_BAD = """\
sources:
  - name: ok-one
    kind: json
    url: https://vendor.example/p
    every: 15m
  - name: typo
    kind: jsn
    url: https://vendor.example/q
    every: 15m
  - name: no-url
    kind: csv
    every: 1h
    mapp: {product: name}
  - name: env
    kind: json
    url: https://vendor.example/q
    every: 0.1s
    headers: {Authorization: "Bearer ${MISSING_TOKEN}"}
  - name: rss-map
    kind: rss
    url: ftp://x
    every: 1h
    map: {prodcut: x}
  - name: ok-one
    kind: json
    url: https://vendor.example/r
    every: 1h
"""


def test_sources_check_reports_every_problem_by_file_and_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(SOURCES_BAD)
    code = cli.main(["sources", "check", str(path)])
    err = capsys.readouterr()
    assert code == 1
    lines = err.err.splitlines()
    p = str(path)
    expected = [
        f"{p}:7: typo: kind:",
        f"{p}:10: no-url: missing required key 'url'",
        f"{p}:13: no-url: unknown key 'mapp' (did you mean 'map'?)",
        f"{p}:17: env: every: must be at least 1s",
        f"{p}:18: env: headers.Authorization: ${{MISSING_TOKEN}} is not set in the environment",
        f"{p}:21: rss-map: url: must be an http:// or https:// URL",
        f"{p}:24: ok-one: name: 'ok-one' is used twice (first on line 2)",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert "1 sources ok" in err.out
    # a valid source is still loaded: the broken ones never cost it
    sources = load_sources(path, {})
    assert [s.name for s in sources.sources] == ["ok-one"]


def test_sources_check_names_a_missing_variable_and_a_bad_column(tmp_path: Path) -> None:
    text = """\
sources:
  - name: env
    kind: json
    url: https://vendor.example/q
    every: 1h
    headers: {Authorization: "Bearer ${MISSING_TOKEN}"}
  - name: cols
    kind: csv
    url: https://vendor.example/c
    every: 1h
    map: {prodcut: x}
  - name: rss
    kind: rss
    url: https://vendor.example/r
    every: 1h
    map: {product: x}
"""
    got = [str(p) for p in parse_sources(text, "s.yaml", {}).problems]
    assert got[0] == "s.yaml:6: env: headers.Authorization: ${MISSING_TOKEN} is not set in the environment"
    assert got[1].startswith("s.yaml:11: cols: map: unknown column 'prodcut' (did you mean 'product'?)")
    assert got[2].startswith("s.yaml:16: rss: map: only for json and csv sources")
    assert len(got) == 3


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["sources", "name", "kind", "url", "every", "headers", "map", "defaults", "items",
                         "timeout", "max_bytes", "tags", "enabled", "source", "x"]), kids, max_size=6),
    max_leaves=25))
def test_no_sources_file_crashes_the_loader(doc: object) -> None:
    text = json.dumps({"sources": [doc]} if not isinstance(doc, dict) else doc)
    out = parse_sources(text, "f.yaml", {"X": "1"})
    for p in out.problems:
        assert str(p).startswith("f.yaml:")
    for s in out.sources:
        assert s.every >= 1 and s.kind in ("json", "csv", "rss")
