"""Several vendors (rules/README.md, "Several vendors"): ``source:``, ``sources:`` (a preference with fallback when
the first is not fresh), ``consensus:`` (the median of the fresh ones) and ``divergence:`` (vendors apart on one
day), in backtests, live and in ``rules explain``. That live equals backtest whatever the vendors' arrival order is
tests/test_eventtime_property.py's guarantee."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from alerts.evaluate.backtest import run_backtest
from alerts.evaluate.vendors import fresh
from alerts.events import parse_event
from alerts.model import Alert
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules
from tests.test_engine import Feed, ruleset
from tests.test_explain import explain

TZ = "Asia/Shanghai"


def rules(tmp_path: Path, body: str) -> RuleSet:
    return ruleset(tmp_path, "rules:\n" + body)


def backtest(rs: RuleSet, *quotes: dict[str, Any]) -> list[Alert]:
    return run_backtest(rs, [parse_event(q, rs.catalog, TZ) for q in quotes], fx_max_age_days=7).alerts


def q(price: float, day: str, source: str, product: str = "Pr-Nd oxide", unit: str = "CNY/t") -> dict[str, Any]:
    return quote(price, day, product=product, unit=unit, source=source)


def test_source_reads_one_vendor_only_whatever_its_case(tmp_path: Path) -> None:
    rs = rules(tmp_path, """
  - id: smm-only
    price: {product: Pr-Nd oxide, source: SMM, above: 450000}
    notify: [console]
  - id: smm-only-move
    price: {product: Pr-Nd oxide, source: smm, change: {over: 1d, above: 5000}}
    notify: [console]
""")
    f = Feed(rs)
    assert f.quote(451_000, "2025-03-03", source="fastmarkets") == []
    assert f.quote(445_000, "2025-03-03", source="smm") == []
    assert f.quote(460_000, "2025-03-04", source="fastmarkets") == []
    assert [(a.rule_id, a.source) for a in f.quote(452_000, "2025-03-04", source="smm")] == \
        [("smm-only", "smm"), ("smm-only-move", "smm")]
    g = Feed(rs)
    assert [a.rule_id for a in g.quote(452_000, "2025-03-04", source="SMM")] == ["smm-only"]  # any case


def test_fresh_is_under_3_business_days_with_weekends_and_holidays_not_counted() -> None:
    assert fresh("2025-03-03", "2025-03-06", frozenset())  # Monday, on Thursday
    assert not fresh("2025-03-03", "2025-03-07", frozenset())  # ... on Friday
    assert fresh("2025-02-28", "2025-03-05", frozenset())  # Friday, on Wednesday: the weekend does not count
    from datetime import date
    assert fresh("2025-09-30", "2025-10-08", frozenset(date(2025, 10, d) for d in range(1, 8)))  # Golden Week


def test_a_preference_falls_back_and_comes_back(tmp_path: Path) -> None:
    rs = rules(tmp_path, """
  - id: pref
    price: {product: Pr-Nd oxide, sources: [smm, fastmarkets], above: 450000}
    notify: [console]
""")
    out = backtest(rs, q(447_000, "2025-03-03", "smm"), q(455_000, "2025-03-03", "fastmarkets"),
                   q(456_000, "2025-03-06", "fastmarkets"),  # smm's Monday is still fresh on Thursday
                   q(457_000, "2025-03-07", "fastmarkets"),  # ... not on Friday: fastmarkets' price fires
                   q(440_000, "2025-03-10", "smm"), q(458_000, "2025-03-10", "fastmarkets"))  # smm again: re-armed
    assert [(a.as_of, a.source, a.price) for a in out] == [("2025-03-07", "fastmarkets", 457_000)]
    assert "[from fastmarkets; smm stale (447,000 on 2025-03-03), fastmarkets 457,000]" in out[0].text


def test_consensus_is_the_median_of_the_fresh_quotes(tmp_path: Path) -> None:
    rs = rules(tmp_path, """
  - id: cons
    price: {product: Pr-Nd oxide, consensus: [smm, fastmarkets, argus], above: 450000}
    notify: [console]
""")
    out = backtest(rs, q(440_000, "2025-02-24", "argus"),  # stale by 03-03: left out
                   q(449_000, "2025-03-03", "smm"), q(452_000, "2025-03-03", "fastmarkets"))
    assert [(a.as_of, a.source, a.price) for a in out] == [("2025-03-03", "consensus", 450_500)]
    assert "smm 449,000, fastmarkets 452,000, argus stale (440,000 on 2025-02-24)" in out[0].text


def test_divergence_in_another_mass_unit_fires_once_per_day(tmp_path: Path) -> None:
    rs = rules(tmp_path, """
  - id: apart
    divergence: {product: Pr-Nd oxide, sources: [smm, fastmarkets], above: "20 CNY/kg"}
    notify: [console]
""")
    out = backtest(rs, q(430_000, "2025-03-03", "smm"), q(449_000, "2025-03-03", "fastmarkets"),  # 19,000: no
                   q(430_000, "2025-03-04", "smm"), q(451_000, "2025-03-04", "fastmarkets"),
                   q(452_000, "2025-03-04T16:00:00+08:00", "fastmarkets"),  # the same day again: told already
                   q(455_000, "2025-03-05", "fastmarkets"), q(430_000, "2025-03-06", "smm"))  # not the same day
    assert [(a.kind, a.as_of, a.price, a.previous) for a in out] == [("divergence", "2025-03-04", 451_000, 430_000)]
    assert out[0].text == ("Pr-Nd oxide on 2025-03-04: fastmarkets 451,000, smm 430,000 CNY/t differ by 4.9% "
                           "(21,000 CNY/t), more than 20,000 CNY/t")


def test_mistakes_are_told_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n" + """
  - id: one-vendor
    price: {product: Pr-Nd oxide, sources: [smm, SMM], above: 450000}
    notify: [console]
  - id: two-choices
    price: {product: Pr-Nd oxide, source: smm, consensus: [smm, argus], above: 450000}
    notify: [console]
  - id: in-all-of
    all_of:
      - price: {product: Pr-Nd oxide, sources: [smm, argus], above: 450000}
      - news: {any: [quota]}
    within: 1d
    notify: [console]
  - id: bare
    divergence: {product: Pr-Nd oxide, sources: [smm, argus], above: 2}
    notify: [console]
  - id: usd
    divergence: {product: Pr-Nd oxide, sources: [smm, argus], above: "5 USD/kg"}
    notify: [console]
""")
    rs = load_rules(tmp_path, timezone=TZ)
    got = [f"{p.line}: {p.rule_id}: {p.message}" for p in rs.errors]
    assert got == [
        "4: one-vendor: price.sources: name at least two different vendors (for one, write source: NAME)",
        "7: two-choices: price: give at most one of source, sources, consensus (got source, consensus)",
        "11: in-all-of: all_of.0.price.sources: several vendors are not supported inside all_of; name one with "
        "source:",
        "16: bare: divergence.above: write a percentage (\"2%\") or an amount with its unit (\"20,000 CNY/t\"), not "
        "a bare number",
        "19: usd: divergence.above: '5 USD/kg' is in USD but Pr-Nd oxide is quoted in CNY/t: write it in CNY or as "
        "a percentage",
    ], got


LIVE = """
rules:
  - id: pref
    price: {product: Pr-Nd oxide, sources: [smm, fastmarkets], above: "450,000 CNY/t"}
    notify: [console]
  - id: cons-move
    price: {product: Pr-Nd oxide, consensus: [smm, fastmarkets], change_pct: {over: 30d, above: 5}}
    notify: [console]
  - id: apart
    divergence: {product: Pr-Nd oxide, sources: [smm, fastmarkets], above: 2%}
    notify: [console]
"""


def test_live_alerts_and_what_explain_says_each_choice_saw(client: redis.Redis, settings: Settings,
                                                           rules_dir: Path) -> None:
    write_rules(rules_dir, LIVE)
    p = Pipeline(client, settings)
    assert "no quote of its vendors yet" in explain(settings, "pref")
    # fastmarkets first, smm later: the stage waits for smm's day before it compares
    assert p.run(q(470_000, "2025-03-03", "fastmarkets")) == []
    assert "waiting for smm to report 2025-03-03" in explain(settings, "apart")
    fired = p.run(q(448_000, "2025-03-03", "smm"))
    assert sorted(a.rule_id for a in fired) == ["apart"]  # smm is fresh and below: pref does not fire on 470k
    out = explain(settings, "pref")
    assert "on the first fresh quote of smm, fastmarkets" in out
    assert "on 2025-03-03: smm 448,000 on 2025-03-03; fastmarkets 470,000 on 2025-03-03" in out
    assert "used smm: 448,000 CNY/t" in out and "armed" in out
    out = explain(settings, "cons-move")
    assert "used smm, fastmarkets: 459,000 CNY/t; no value near 30d before: nothing compared" in out
    out = explain(settings, "apart")
    assert "on 2025-03-03: quotes of that day: smm 448,000, fastmarkets 470,000; 4.9% apart" in out
    assert "last told for 2025-03-03" in out
    assert p.run(q(452_000, "2025-03-10", "fastmarkets")) == []  # smm's 03-03 is stale on 03-10... after the grace
    assert [(a.rule_id, a.source) for a in p.flush()] == [("pref", "fastmarkets")]
    assert "used fastmarkets: 452,000 CNY/t" in explain(settings, "pref")
