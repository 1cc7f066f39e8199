"""rules/schema.json is generated from the rule models and must not go stale."""

from pathlib import Path

from alerts.rules.schema import render

REPO = Path(__file__).resolve().parents[1]


def test_schema_is_up_to_date() -> None:
    committed = (REPO / "rules" / "schema.json").read_text("utf-8")
    assert committed == render(), "rules/schema.json is stale: run `python -m alerts.schema > rules/schema.json`"


def test_schema_knows_the_rule_keys() -> None:
    import json

    schema = json.loads(render())
    rule = schema["$defs"]["Rule"]
    assert rule["additionalProperties"] is False
    assert {"id", "price", "news", "notify", "cooldown", "rearm", "confirm", "resolve", "message"} <= set(
        rule["properties"])
