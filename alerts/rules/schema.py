"""The JSON Schema of a rule file, generated from the rule models, so editors validate rules as
traders type them (YAML language server: ``# yaml-language-server: $schema=../schema.json``).

    python -m alerts.schema > rules/schema.json
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from alerts.rules.models import Digest, Owner, ProductDef, Rule


class RuleFile(BaseModel):
    """A rule file: rules, digests and products, all optional."""

    model_config = ConfigDict(extra="forbid", title="alerts rule file")
    rules: list[Rule] = []
    digests: list[Digest] = []
    products: list[ProductDef] = []
    owners: list[Owner] = []


def rule_file_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render() -> str:
    return json.dumps(rule_file_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
