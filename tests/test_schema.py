"""rules/schema.json is generated from the rule models and must not go stale; every example rule file (rules/examples
and the documentation's blocks) is valid against it, and it states the models' limits."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from alerts.rules import models
from alerts.rules.schema import render
from tests.rule_docs import REPO, Block, all_blocks

SCHEMA = json.loads((REPO / "rules" / "schema.json").read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = sorted((REPO / "rules" / "examples").glob("*.yaml"))
RULE_FILES = [p for p in EXAMPLES if not p.name.endswith(".test.yaml")]
#: The documentation's rule file blocks (not its rule test and feed sources blocks: other formats).
BLOCKS = [b for b in all_blocks() if not re.search(r"^(?:tests|sources):", b.text, re.MULTILINE)]


def as_json(value: Any) -> Any:
    """A YAML document as an editor's YAML language server reads it: dates are text."""
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    return value.isoformat() if isinstance(value, date) else value


def errors(doc: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(as_json(doc))]


def test_schema_is_up_to_date() -> None:
    committed = (REPO / "rules" / "schema.json").read_text("utf-8")
    assert committed == render(), "rules/schema.json is stale: run `python -m alerts.rules.schema > rules/schema.json`"


def test_the_schema_is_a_valid_2020_12_schema_of_every_top_level_key() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False
    assert tuple(SCHEMA["properties"]) == models.TOP_LEVEL_KEYS
    assert {k: v["maxItems"] for k, v in SCHEMA["properties"].items()} == models.TOP_LEVEL_MAX


def test_schema_knows_the_rule_keys() -> None:
    rule = SCHEMA["$defs"]["Rule"]
    assert rule["additionalProperties"] is False
    assert set(rule["properties"]) == set(models.Rule.model_fields)


def test_every_example_declares_the_schema() -> None:
    assert len(RULE_FILES) >= 3
    for path in RULE_FILES:
        assert path.read_text("utf-8").startswith("# yaml-language-server: $schema=../schema.json\n"), path


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_example_file_is_valid_against_the_schema(path: Path) -> None:
    assert errors(yaml.safe_load(path.read_text("utf-8"))) == []


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_every_doc_rule_file_is_valid_against_the_schema(block: Block) -> None:
    assert errors(yaml.safe_load(block.text)) == [], block.text


def test_the_docs_give_holidays_webhooks_and_owners() -> None:
    """The keys the schema once lacked are among what is validated."""
    keys = {k for b in BLOCKS for k in yaml.safe_load(b.text)} | {
        k for p in RULE_FILES for k in yaml.safe_load(p.read_text("utf-8"))}
    assert set(models.TOP_LEVEL_KEYS) <= keys


RULE = {"id": "r1", "news": {"any": ["x"]}, "notify": ["console"]}


@pytest.mark.parametrize(("doc", "path", "says"), [
    ({"rules": [{**RULE, "description": "x" * 501}]}, "rules.0.description", "is too long"),
    ({"rules": [{**RULE, "labels": {f"k{i}": "v" for i in range(21)}}]}, "rules.0.labels", "too many properties"),
    ({"rules": [{**RULE, "labels": {"desk name": "v"}}]}, "rules.0.labels", "does not match"),
    ({"rules": [{**RULE, "notify": ["console"] * 21}]}, "rules.0.notify", "is too long"),
    ({"rules": [{**RULE, "news": {"any": ["x" * 201]}}]}, "rules.0.news.any.0", "is too long"),
    ({"rules": [{**RULE, "news": {"regex": "x" * 1001}}]}, "rules.0.news.regex", "is not valid under any"),
    ({"rules": [{**RULE, "nope": 1}]}, "rules.0", "Additional properties are not allowed"),
    ({"holidays": ["2025-10-01"] * 1001}, "holidays", "is too long"),
    ({"webhooks": [{"name": "h", "url": "https://x.test/" + "a" * 2048, "secret": "k"}]}, "webhooks.0.url",
     "is too long"),
    ({"nope": []}, "", "Additional properties are not allowed"),
])
def test_the_schema_refuses_what_the_models_refuse(doc: dict[str, Any], path: str, says: str) -> None:
    found = errors(doc)
    assert any(e.startswith(f"{path}: ") and says in e for e in found), found
