"""Every rule semantic of the pipeline issue, on the pure evaluation function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.evaluate.engine import DUPLICATE, LATE, NEW, evaluate_news, evaluate_price
from alerts.events import NewsEvent, PriceEvent, parse_event
from alerts.model import Alert, ProductState
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules

TZ = "Asia/Shanghai"


def ruleset(tmp_path: Path, body: str) -> RuleSet:
    (tmp_path / "r.yaml").write_text(body)
    rs = load_rules(tmp_path)
    assert not rs.errors, rs.errors
    return rs


class Feed:
    """Feeds quotes through evaluate_price, carrying state like the evaluator does."""

    def __init__(self, rs: RuleSet):
        self.rs = rs
        self.state: dict[str, ProductState] = {}
        self.statuses: list[str] = []

    def quote(self, price: float, day: str, product: str = "Pr-Nd oxide", unit: str = "CNY/t",
              source: str = "smm", **extra: object) -> list[Alert]:
        ev = parse_event({"type": "price", "product": product, "price": price, "unit": unit, "as_of": day,
                          "source": source, **extra}, self.rs.catalog, TZ)
        assert isinstance(ev, PriceEvent)
        out = evaluate_price(self.rs, ev, self.state.get(ev.product_key))
        self.state[ev.product_key] = out.state
        self.statuses.append(out.status)
        return out.alerts

    def fired(self, *quotes: tuple[float, str]) -> list[str]:
        """Feed quotes; return the dates on which something fired."""
        return [day for price, day in quotes for _ in self.quote(price, day)]


ABOVE = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [console]
"""


def test_above_fires_once_then_rearms_at_or_below(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert f.fired((440_000, "2025-02-20"), (451_000, "2025-02-21"), (455_000, "2025-02-24"),
                   (450_000, "2025-02-25"), (450_001, "2025-02-26")) == ["2025-02-21", "2025-02-26"]


def test_above_starts_armed_so_first_quote_above_fires(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    alerts = f.quote(452_000, "2025-02-25")
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.rule_id, a.product, a.price, a.unit, a.as_of, a.previous, a.threshold) == (
        "prnd-450k", "Pr-Nd oxide", 452_000, "CNY/t", "2025-02-25", None, 450_000)


def test_threshold_exactly_equal_does_not_fire(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert f.fired((450_000, "2025-02-25")) == []


def test_below_mirrors_above(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE.replace("above", "below").replace("450,000", "445,000")))
    assert f.fired((444_000, "2025-03-03"), (443_000, "2025-03-04"), (445_000, "2025-03-05"),
                   (444_999, "2025-03-06")) == ["2025-03-03", "2025-03-06"]


def test_crosses_above_needs_a_previous_quote(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE.replace("above", "crosses_above")))
    assert f.fired((452_000, "2025-02-25"), (453_000, "2025-02-26"), (449_000, "2025-02-27"),
                   (450_000, "2025-02-28"), (450_500, "2025-03-03")) == ["2025-03-03"]


def test_crosses_below(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE.replace("above", "crosses_below")))
    assert f.fired((449_000, "2025-02-25"), (451_000, "2025-02-26"), (450_000, "2025-02-27"),
                   (449_999, "2025-02-28")) == ["2025-02-28"]  # at the threshold is not below it


def test_threshold_in_other_mass_unit_is_converted(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE.replace('"450,000 CNY/t"', '"450 CNY/kg"')))
    assert f.fired((449_999, "2025-02-24"), (450_001, "2025-02-25")) == ["2025-02-25"]
    g = Feed(ruleset(tmp_path, """
rules:
  - id: dy
    price: {product: Dy oxide, above: "1,700,000 yuan/mt"}
    notify: [console]
"""))
    assert len(g.quote(1_695, "2025-03-10", product="Dy oxide", unit="CNY/kg")) == 0
    assert len(g.quote(1_705, "2025-03-11", product="Dy oxide", unit="CNY/kg")) == 1
    assert g.quote(1_720, "2025-03-12", product="Dy oxide", unit="CNY/kg") == [] and g.statuses[-1] == NEW


def test_quotes_in_another_mass_unit_and_aliases(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert len(f.quote(451, "2025-02-25", product="prnd oxide", unit="yuan/kg")) == 1


def test_late_quote_is_stored_not_used(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert f.fired((445_000, "2025-02-27")) == []
    assert f.fired((452_000, "2025-02-25")) == []  # older than the newest: late
    assert f.statuses[-1] == LATE
    # the current price is still 445,000, so the next quote above fires as a fresh crossing
    assert f.fired((451_000, "2025-02-28")) == ["2025-02-28"]
    assert f.state["prndoxide"].quotes["smm"].price == 451_000


def test_duplicate_event_never_alerts_twice(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert len(f.quote(452_000, "2025-02-25", id="q1")) == 1
    assert f.quote(452_000, "2025-02-25", id="q1") == []
    assert f.statuses[-1] == DUPLICATE
    # without an id, the same content is the same event
    assert len(f.quote(449_000, "2025-02-26")) == 0
    assert len(f.quote(453_000, "2025-02-27")) == 1
    assert f.quote(453_000, "2025-02-27") == [] and f.statuses[-1] == DUPLICATE


def test_state_is_per_source(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert len(f.quote(452_000, "2025-02-25", source="smm")) == 1
    assert len(f.quote(452_500, "2025-02-25", source="fastmarkets")) == 1
    assert f.quote(453_000, "2025-02-26", source="smm") == []


def test_cooldown_holds_back_and_keeps_the_rule_armed(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE + "    cooldown: 3d\n"))
    assert f.fired((451_000, "2025-02-24"), (449_000, "2025-02-25"), (451_000, "2025-02-26")) == ["2025-02-24"]
    # still above once the cooldown is over: the held-back alert fires now
    assert f.fired((452_000, "2025-02-27")) == ["2025-02-27"]
    assert f.fired((453_000, "2025-02-28")) == []


def test_cooldown_hold_is_dropped_when_the_condition_stops(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE + "    cooldown: 3d\n"))
    assert f.fired((451_000, "2025-02-24"), (449_000, "2025-02-25"), (451_000, "2025-02-26"),
                   (449_000, "2025-02-27"), (449_500, "2025-03-03")) == ["2025-02-24"]


def test_new_rule_starts_armed_even_when_price_is_already_above(tmp_path: Path) -> None:
    empty = ruleset(tmp_path, ABOVE.replace("Pr-Nd oxide", "Dy oxide").replace("450,000 CNY/t", "2000"))
    f = Feed(empty)
    f.quote(452_000, "2025-02-25")
    (tmp_path / "r.yaml").write_text(ABOVE)
    f.rs = load_rules(tmp_path)
    assert f.fired((453_000, "2025-02-26")) == ["2025-02-26"]
    assert f.fired((454_000, "2025-02-27")) == []


def test_changed_threshold_starts_armed(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    assert f.fired((452_000, "2025-02-25")) == ["2025-02-25"]
    (tmp_path / "r.yaml").write_text(ABOVE.replace("450,000", "451,000"))
    f.rs = load_rules(tmp_path)
    assert f.fired((452_500, "2025-02-26")) == ["2025-02-26"]


def test_index_only_fires_thresholds_between_previous_and_new_price(tmp_path: Path) -> None:
    body = "rules:\n" + "".join(
        f"  - id: r{i}\n    price: {{product: Pr-Nd oxide, {kind}: {440_000 + i * 1000}}}\n    notify: [console]\n"
        for i in range(20) for kind in ["above"]
    )
    f = Feed(ruleset(tmp_path, body))
    assert len(f.quote(445_500, "2025-02-20")) == 6  # 440k..445k
    assert {a.rule_id for a in f.quote(448_200, "2025-02-21")} == {"r6", "r7", "r8"}
    assert f.quote(447_000, "2025-02-24") == []  # falling re-arms r7, r8
    assert {a.rule_id for a in f.quote(460_000, "2025-02-25")} == {f"r{i}" for i in range(7, 20)}


def test_disabled_rule_never_fires(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE + "    enabled: false\n"))
    assert f.fired((452_000, "2025-02-25")) == []


def test_alert_ids_are_deterministic(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, ABOVE)
    a1 = Feed(rs).quote(452_000, "2025-02-25", id="x")
    a2 = Feed(rs).quote(452_000, "2025-02-25", id="x")
    assert [a.id for a in a1] == [a.id for a in a2]
    assert Alert.from_dict(json.loads(json.dumps(a1[0].to_dict()))) == a1[0]


NEWS = """
rules:
  - id: licences
    news:
      any: [export licen*, export control]
      all: [rare earth]
      none: [webinar]
    notify: [console]
"""


def news(rs: RuleSet, headline: str, body: str = "", **extra: object) -> NewsEvent:
    ev = parse_event({"type": "news", "headline": headline, "body": body,
                      "published_at": "2025-05-29T10:00:00+08:00", **extra}, rs.catalog, TZ)
    assert isinstance(ev, NewsEvent)
    return ev


@pytest.mark.parametrize("headline,body,fires", [
    ("Large magnet makers obtain export licences", "for rare earth magnets", True),
    ("EXPORT   LICENSE granted", "RARE\nEARTH exports", True),
    ("export licensing of rare earths", "", False),  # 'rare earths' is not the word 'rare earth'
    ("new export controls on rare earth", "", False),  # 'export control' needs a word boundary
    ("export control on rare earth", "", True),
    ("export licences for rare earth", "join our webinar", False),
    ("Bexport licence for rare earth", "", False),
    ("rare earth prices", "", False),
])
def test_news_phrases(tmp_path: Path, headline: str, body: str, fires: bool) -> None:
    rs = ruleset(tmp_path, NEWS)
    out = evaluate_news(rs, news(rs, headline, body), frozenset())
    assert bool(out.alerts) is fires


def test_news_alert_carries_headline(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, NEWS)
    out = evaluate_news(rs, news(rs, "Export licence for rare earth magnets", url="https://x.test/1"), frozenset())
    (a,) = out.alerts
    assert (a.rule_id, a.headline, a.url) == ("licences", "Export licence for rare earth magnets", "https://x.test/1")
    assert out.fired_rules == {"licences"}


def test_same_article_alerts_a_rule_once(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, NEWS)
    ev = news(rs, "Export licence for rare earth", id="a1")
    first = evaluate_news(rs, ev, frozenset())
    assert len(first.alerts) == 1
    assert evaluate_news(rs, ev, first.fired_rules).alerts == []


def test_chinese_phrases_match_inside_chinese_text(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, "rules:\n  - id: cn\n    news: {any: [出口许可]}\n    notify: [console]\n")
    assert len(evaluate_news(rs, news(rs, "稀土出口许可证发放"), frozenset()).alerts) == 1


def test_corrections_on_the_same_day_and_their_replays(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, ABOVE))
    (first,) = f.quote(460_000, "2025-02-25", id="a")
    (followup,) = f.quote(440_000, "2025-02-25", id="b")  # a correction for the same day: a follow-up, re-armed
    assert (followup.kind, followup.corrects, followup.still_holds) == ("correction", first.id, False)
    assert f.quote(460_000, "2025-02-25", id="a") == []  # replaying the first one is a duplicate
    assert f.statuses[-1] == DUPLICATE
    assert len(f.quote(455_000, "2025-02-25", id="c")) == 1  # a new correction above fires again


def test_news_regex_products_and_sources(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, """
rules:
  - id: quota
    news: {regex: 'quotas?\\s+(cut|raised|set)', sources: [SMM, reuters]}
    notify: [console]
  - id: tb-news
    news: {products: [terbium oxide, Dy oxide]}
    notify: [console]
""")

    def fired(headline: str, source: str = "smm") -> set[str]:
        return {a.rule_id for a in evaluate_news(rs, news(rs, headline, source=source), frozenset()).alerts}

    assert fired("Mining QUOTA raised for 2025") == {"quota"}
    assert fired("Mining quota raised for 2025", source="blog") == set()
    assert fired("氧化铽 prices firm as buyers return") == {"tb-news"}
    assert fired("Tb oxide and Dy oxide steady") == {"tb-news"}
    assert fired("terbium oxides") == set()  # whole names, like phrases


def test_catastrophic_regex_is_rejected_or_linear(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - id: bad\n    news: {regex: '(a)\\1'}\n    notify: [console]\n")
    (p,) = load_rules(tmp_path).problems
    assert str(p).startswith(f"{tmp_path / 'r.yaml'}:3: bad: news.regex: regex '(a)\\\\1' is not accepted")
    rs = ruleset(tmp_path, "rules:\n  - id: evil\n    news: {regex: '(a+)+$'}\n    notify: [console]\n")
    # RE2 is linear: no catastrophic backtracking (how long this takes is measured by the bench, not here)
    (rule,) = rs.news
    assert [type(r).__module__ for r in rule.regexes] == ["re2"]
    assert evaluate_news(rs, news(rs, "Long body", body="a" * 100_000 + "!"), frozenset()).alerts == []
    matching = news(rs, "Long body", body="a" * 100_000)  # the text searched ends with the body
    assert [a.rule_id for a in evaluate_news(rs, matching, frozenset()).alerts] == ["evil"]
