"""Rules with state of their own: changes over a window, several products, rearm, confirm, resolve,
expiry, messages."""

from __future__ import annotations

from pathlib import Path

from alerts.model import Alert
from tests.test_engine import Feed, ruleset


def rule(body: str) -> str:
    return "rules:\n  - id: r\n    notify: [console]\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())


def dates(alerts: list[Alert]) -> list[str]:
    return [a.as_of or "" for a in alerts]


def feed(f: Feed, *quotes: tuple[float, str], product: str = "Tb oxide", unit: str = "CNY/kg") -> list[Alert]:
    return [a for price, day in quotes for a in f.quote(price, day, product=product, unit=unit)]


def test_change_pct_against_the_quote_at_or_before_the_window(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}")))
    out = feed(f, (5_940, "2025-01-27"), (6_100, "2025-02-10"), (6_200, "2025-02-25"), (6_475, "2025-02-28"),
               (6_525, "2025-03-11"))
    # 02-25: 30 days back is 01-26, no quote at or before it yet; 02-28: vs 01-27 (5,940) +9.0%
    assert dates(out) == ["2025-02-28"]
    a = out[0]
    assert a.previous == 5_940 and a.previous_as_of == "2025-01-27" and round(a.change_pct or 0, 2) == 9.01
    assert a.text == ("terbium oxide 6,475 CNY/kg on 2025-02-28, +9.0% over 30d (change over 30d above 5%); "
                      "was 5,940 on 2025-01-27")


def test_change_pct_below_and_abs_above_and_rearm(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: Tb oxide, change_pct: {over: 1d, below: -2}}")))
    assert dates(feed(f, (100, "2025-03-03"), (97, "2025-03-04"), (95, "2025-03-05"), (96, "2025-03-06"),
                      (93, "2025-03-07"))) == ["2025-03-04", "2025-03-07"]
    g = Feed(ruleset(tmp_path, rule("price: {product: Tb oxide, change_pct: {over: 1d, abs_above: 2}}")))
    assert dates(feed(g, (100, "2025-03-03"), (103, "2025-03-04"), (100, "2025-03-05"), (100, "2025-03-06"),
                      (97, "2025-03-07"))) == ["2025-03-04", "2025-03-07"]


def test_change_in_price_units(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule('price: {product: Pr-Nd oxide, change: {over: 7d, above: "20,000 CNY/t"}}')))
    out = [a for p, d in [(415_000, "2025-02-17"), (430_000, "2025-02-21"), (436_000, "2025-02-24"),
                          (450_000, "2025-02-25")] for a in f.quote(p, d)]
    assert dates(out) == ["2025-02-24"]  # vs 02-17: +21,000
    assert out[0].change == 21_000


def test_several_products_keep_their_own_state(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule('price: {products: [Pr-Nd oxide, Nd oxide], above: "450,000 CNY/t"}')))
    assert [a.product for a in f.quote(451_000, "2025-02-25")] == ["Pr-Nd oxide"]
    assert [a.product for a in f.quote(452_000, "2025-02-25", product="neodymium oxide")] == ["neodymium oxide"]
    assert f.quote(453_000, "2025-02-26") == []


def test_rearm_gives_hysteresis(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule('price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}\nrearm: 445,000 CNY/t')))
    assert f.fired((451_000, "2025-02-24"), (449_000, "2025-02-25"), (452_000, "2025-02-26"),
                   (445_000, "2025-02-27"), (450_500, "2025-02-28")) == ["2025-02-24", "2025-02-28"]


def test_confirm_needs_consecutive_quotes(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: Pr-Nd oxide, above: 450000}\nconfirm: 2")))
    assert f.fired((451_000, "2025-02-24"), (449_000, "2025-02-25"), (452_000, "2025-02-26"),
                   (453_000, "2025-02-27"), (454_000, "2025-02-28")) == ["2025-02-27"]


def test_resolve_carries_the_value_that_ended_it(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: Pr-Nd oxide, above: 450000}\nresolve: true")))
    out = [a for p, d in [(452_000, "2025-02-25"), (451_000, "2025-02-26"), (447_000, "2025-02-27"),
                          (446_000, "2025-02-28")] for a in f.quote(p, d)]
    assert [(a.status, a.as_of, a.price) for a in out] == [("firing", "2025-02-25", 452_000),
                                                          ("resolved", "2025-02-27", 447_000)]
    assert out[1].text == "Pr-Nd oxide 447,000 CNY/t on 2025-02-27: no longer above 450,000 CNY/t"
    assert out[0].id != out[1].id


def test_expired_rule_fires_nothing_after_its_day(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: Pr-Nd oxide, above: 450000}\nexpires: 2025-02-25")))
    assert f.fired((451_000, "2025-02-26")) == []
    g = Feed(ruleset(tmp_path, rule("price: {product: Pr-Nd oxide, above: 450000}\nexpires: 2025-02-25")))
    assert g.fired((451_000, "2025-02-25")) == ["2025-02-25"]


def test_message_template_owner_and_labels(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule(
        'price: {product: Pr-Nd oxide, above: 450000}\nowner: li.wei\nlabels: {desk: light}\n'
        'message: "{{ product }} at {{ price|thousands }} {{ unit }} ({{ labels.desk }}, {{ owner }}); was '
        '{{ previous|thousands }} on {{ previous_as_of }}"')))
    f.quote(447_000, "2025-02-24")
    (a,) = f.quote(452_000, "2025-02-25")
    assert a.text == "Pr-Nd oxide at 452,000 CNY/t (light, li.wei); was 447,000 on 2025-02-24"
    assert a.labels == {"desk": "light"} and a.owner == "li.wei"


def test_hostile_headline_is_not_evaluated_by_a_template(tmp_path: Path) -> None:
    from alerts.evaluate.engine import evaluate_news
    from tests.test_engine import news

    rs = ruleset(tmp_path, "rules:\n  - id: n\n    news: {any: [licen*]}\n    notify: [console]\n"
                           "    message: 'NEWS: {{ headline }}'\n")
    (a,) = evaluate_news(rs, news(rs, "licence {{ 7*7 }} {{ ''.__class__ }}"), frozenset()).alerts
    assert a.text == "NEWS: licence {{ 7*7 }} {{ ''.__class__ }}"


def test_a_same_time_correction_replaces_the_bad_print_as_reference(tmp_path: Path) -> None:
    f = Feed(ruleset(tmp_path, rule("price: {product: Pr-Nd oxide, change_pct: {over: 7d, above: 5}}")))
    f.quote(500_000, "2025-02-01", id="bad-print")
    f.quote(400_000, "2025-02-01", id="correction")
    (a,) = f.quote(440_000, "2025-02-10")
    assert a.previous == 400_000 and round(a.change_pct or 0) == 10
