"""The rule-kind registry: each kind of alert has its traits in ``alerts.model.ALERT_KINDS``, each compiled rule
kind names its alert kind, says what state it reads and is explained by ``alerts.rules.explain.EXPLAINERS``: a new
kind that forgets one of them fails here, not in a trader's hands."""

from __future__ import annotations

from typing import get_args

from alerts.model import ALERT_KINDS, AlertKind
from alerts.rules.compiled import CompiledRule, NewsRule, PriceRule, SpreadRule
from alerts.rules.explain import EXPLAINERS
from alerts.rules.load import load_rules
from tests.rule_docs import REPO


def test_every_alert_kind_has_its_traits() -> None:
    assert set(get_args(AlertKind)) == set(ALERT_KINDS)


def test_every_rule_kind_is_registered() -> None:
    kinds = get_args(CompiledRule)
    assert set(EXPLAINERS) == set(kinds)
    for cls in kinds:
        assert cls.kind_name in ALERT_KINDS, cls


def test_what_each_kind_says_of_itself() -> None:
    rules = load_rules(REPO / "rules" / "examples", timezone="Asia/Shanghai")
    assert not rules.errors, rules.errors
    seen: set[type] = set()
    for compiled in rules.by_id.values():
        for rule in compiled:
            seen.add(type(rule))
            assert rule.rearms == isinstance(rule, PriceRule | SpreadRule)
            if isinstance(rule, NewsRule):
                assert rule.alert_product is None and not rule.state_products and not rule.shared_keys
            if isinstance(rule, SpreadRule):
                assert rule.alert_product == rule.of
                assert rule.state_products == (rule.of, rule.minus)
                assert rule.shared_keys == (rule.state_key,)
            if isinstance(rule, PriceRule):
                assert rule.price_parts == (rule,)
                assert rule.shared_keys == ((rule.state_key,) if rule.fx is not None or rule.vendors else ())
    assert seen == set(get_args(CompiledRule)), "the examples should hold every kind of rule"
