"""Every rule example of the documentation is a rule file that loads without a problem: each ```yaml
block of rules/README.md and README.md, as written (a block that means to show a warning says so in a
`# warning: TEXT` comment, and gives exactly that warning). The shipped examples load clean and pass
their rule tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alerts.evaluate.ruletest import report, run_file
from alerts.ingest.sources import parse_sources
from alerts.rules.checks import warnings
from alerts.rules.load import load_rules
from alerts.settings import Settings
from tests.rule_docs import REPO, Block, all_blocks, example_files

BLOCKS = all_blocks()
RULE_TEST_BLOCKS = [b for b in BLOCKS if re.search(r"^tests:", b.text, re.MULTILINE)]
SOURCES_BLOCKS = [b for b in BLOCKS if re.search(r"^sources:", b.text, re.MULTILINE)]
RULE_FILE_BLOCKS = [b for b in BLOCKS if b not in RULE_TEST_BLOCKS and b not in SOURCES_BLOCKS]
_WARNING = re.compile(r"#\s*warning:\s*(.+?)\s*$", re.MULTILINE)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def test_the_docs_have_their_blocks() -> None:
    assert {b.doc for b in BLOCKS} == {REPO / "README.md", REPO / "rules" / "README.md"}
    assert len(RULE_FILE_BLOCKS) >= 15 and len(RULE_TEST_BLOCKS) == 1 and len(SOURCES_BLOCKS) == 1
    rules = [r for b in RULE_FILE_BLOCKS for r in yaml.safe_load(b.text).get("rules") or []]
    assert len(rules) >= 12 and {"prnd-oxide-450k", "export-licence-news", "prnd-alloy-premium"} <= {
        r["id"] for r in rules}


@pytest.mark.parametrize("block", SOURCES_BLOCKS, ids=[b.name for b in SOURCES_BLOCKS])
def test_every_sources_file_block_loads_without_problems(block: Block) -> None:
    env = {name: "a-secret-for-the-test" for name in _ENV_REF.findall(block.text)}
    sources = parse_sources(block.text, block.name, env)
    assert [str(p) for p in sources.problems] == [], block.text
    assert len(sources.sources) == len(yaml.safe_load(block.text)["sources"]) >= 1


@pytest.mark.parametrize("block", RULE_FILE_BLOCKS, ids=[b.name for b in RULE_FILE_BLOCKS])
def test_every_doc_block_is_a_rule_file_without_problems(block: Block, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_REF.findall(block.text):  # secrets come from the environment, as documented
        monkeypatch.setenv(name, "a-secret-for-the-test")
    path = tmp_path / "rules.yaml"
    path.write_text(block.text, "utf-8")
    rs = load_rules(path)
    assert [str(p) for p in rs.problems if p.severity == "error"] == [], block.text
    found = [p.message for p in [*rs.warnings, *warnings(rs, {})]]
    meant = _WARNING.findall(block.text)
    assert len(found) == len(meant), (found, block.text)
    for text, message in zip(meant, found, strict=True):
        assert text in message, (text, message)
    written = yaml.safe_load(block.text).get("rules") or []
    assert sorted(rs.by_id) == sorted(r["id"] for r in written)  # each rule compiled: none left out


def test_the_docs_rule_test_block_passes(tmp_path: Path) -> None:
    (block,) = RULE_TEST_BLOCKS
    shutil.copy(REPO / "rules" / "examples" / "prices.yaml", tmp_path / "prices.yaml")  # its rule_files
    path = tmp_path / "doc.test.yaml"
    path.write_text(block.text, "utf-8")
    result = run_file(path, "Asia/Shanghai", fx_max_age_days=Settings.model_fields["fx_max_age_days"].default)
    text, ok = report([result], "Asia/Shanghai")
    assert ok and result.cases and all(c.ok and c.fired for c in result.cases), text


def test_no_doc_block_writes_a_number_with_commas_unquoted_inside_braces() -> None:
    """The trap of rules/README.md's old spread and change: examples, looked for in the text too."""
    trap = re.compile(r"\{[^}\n]*:\s*-?\d{1,3}(?:,\d{3})+[^}\n]*\}")
    assert [b.name for b in BLOCKS if trap.search(b.text)] == []


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_files_load_without_problems_or_warnings(path: Path) -> None:
    rs = load_rules(path)
    assert rs.problems == [] and warnings(rs, {}) == []
    assert rs.by_id


def test_example_rule_tests_pass() -> None:
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "test", str(REPO / "rules" / "examples")],
                          capture_output=True, text=True, check=False, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"^(\d+) tests, 0 failed$", proc.stdout, re.MULTILINE)
    assert m and int(m.group(1)) >= 10, proc.stdout
