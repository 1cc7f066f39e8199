"""The JSON Schema of a rule file, generated from the rule models (``alerts.rules.models.RuleFile``, every
key of every level, with the limits as ``maxLength``, ``maxItems`` and ``maxProperties``), so editors validate
rules as traders type them (YAML language server: ``# yaml-language-server: $schema=../schema.json``). Two
rewrites make editors' errors precise (``_key_patterns``, ``_no_null``).

    python -m alerts.rules.schema > rules/schema.json

tests/test_schema.py fails when rules/schema.json differs from what this writes. The schema checks the shape
only: whether a product exists, a unit converts or a digest is defined is for ``alerts rules check``.
"""

from __future__ import annotations

import json
from typing import Any

from alerts.rules.models import RuleFile

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _key_patterns(node: Any) -> Any:
    """Pydantic writes a mapping whose keys have a pattern as ``patternProperties`` (a key that does not match
    is then allowed, unchecked); a mapping's keys are ``propertyNames`` (pattern and length) and its values
    ``additionalProperties`` here, so a bad key is an error in the editor too."""
    if isinstance(node, list):
        return [_key_patterns(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _key_patterns(v) for k, v in node.items()}
    patterns = out.get("patternProperties")
    if isinstance(patterns, dict) and len(patterns) == 1 and "additionalProperties" not in out:
        ((pattern, values),) = patterns.items()
        del out["patternProperties"]
        out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
        out["additionalProperties"] = values
    return out


def _no_null(node: Any) -> Any:
    """A key the models take as null (``owner: null``: not given) is ``anyOf: [X, null]`` from pydantic, and an
    editor then says only "not valid under any of the given schemas" of a mistake inside X: here it is X, so
    the mistake is pointed at (leaving the key out is how a rule file says "not given")."""
    if isinstance(node, list):
        return [_no_null(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _no_null(v) for k, v in node.items()}
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        out = {**rest[0], **out} if len(rest) == 1 else {"anyOf": rest, **out}
        if out.get("default", 0) is None:
            del out["default"]
    return out


def rule_file_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _no_null(_key_patterns(RuleFile.model_json_schema()))
    schema["$schema"] = DIALECT
    return schema


def render() -> str:
    return json.dumps(rule_file_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
