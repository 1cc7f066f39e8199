"""Watchlists (issue 18): named product lists and catalog groups that rules name as "@NAME"."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.catalog import builtin_catalog
from alerts.evaluate.backtest import run_backtest
from alerts.events import parse_event
from alerts.rules.compiled import NewsRule, PriceRule
from alerts.rules.load import load_rules
from alerts.rules.models import WATCHLIST_MAX
from tests.servers import write_rules

CATALOG = builtin_catalog()
BOOK = """
watchlists:
  - name: book
    products: [Tb oxide, Dy oxide]
rules:
  - id: book-above
    price:
      products: "@book"
      change_pct: {over: 1d, above: 3}
    notify: [console]
"""


def problems(path: Path) -> list[str]:
    return [str(p) for p in load_rules(path).problems]


def test_a_rule_over_a_watchlist_is_one_rule_per_product_each_with_its_own_state(tmp_path: Path) -> None:
    f = write_rules(tmp_path, BOOK)
    rs = load_rules(f)
    assert rs.problems == []
    assert [r.product.name for r in rs.by_id["book-above"] if isinstance(r, PriceRule)] == \
        ["terbium oxide", "dysprosium oxide"]
    events = [parse_event({"type": "price", "product": p, "price": v, "unit": "CNY/kg", "as_of": d}, CATALOG,
                          rs.timezone)
              for p, v, d in [("Tb oxide", 6500, "2025-03-10"), ("Dy oxide", 1700, "2025-03-10"),
                              ("Tb oxide", 6800, "2025-03-11"), ("Dy oxide", 1710, "2025-03-11"),
                              ("Dy oxide", 1800, "2025-03-12")]]
    fired = run_backtest(rs, events, fx_max_age_days=7).alerts
    assert [(a.product, a.as_of) for a in fired] == [("terbium oxide", "2025-03-11"),
                                                      ("dysprosium oxide", "2025-03-12")]


def test_a_product_added_to_the_watchlist_later_is_covered(tmp_path: Path) -> None:
    f = write_rules(tmp_path, BOOK)
    assert len(load_rules(f).by_id["book-above"]) == 2
    f.write_text(BOOK.replace("[Tb oxide, Dy oxide]", "[Tb oxide, Dy oxide, Ho oxide]"))
    assert [r.product.name for r in load_rules(f).by_id["book-above"] if isinstance(r, PriceRule)][-1] == \
        "holmium oxide"


def test_catalog_groups_and_nested_watchlists(tmp_path: Path) -> None:
    f = write_rules(tmp_path, """
products:
  - {name: yttrium oxide, unit: CNY/t, groups: [heavy, yttrium]}
watchlists:
  - name: desk
    products: ["@heavy", Pr-Nd oxide, Tb oxide]
rules:
  - id: desk-high
    price: {products: "@desk", above: 1}
    notify: [console]
  - id: y-news
    news: {any: [quota*], products: "@yttrium"}
    notify: [console]
""")
    rs = load_rules(f)
    assert rs.problems == []
    names = [r.product.name for r in rs.by_id["desk-high"] if isinstance(r, PriceRule)]
    assert names[:len(CATALOG.groups()["heavy"])] == [p.name for p in CATALOG.groups()["heavy"]]
    assert names[-2:] == ["yttrium oxide", "Pr-Nd oxide"]  # each product once: Tb oxide is in @heavy already
    assert len(names) == len(set(names))
    news = rs.by_id["y-news"][0]
    assert isinstance(news, NewsRule) and news.matches("Yttrium oxide quota raised", "smm")


def test_every_mistake_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    f = write_rules(tmp_path, """watchlists:
  - name: a
    products: ["@b", Tb oxide]
  - name: b
    products: ["@a", unobtainium]
  - name: heavy
    products: [Tb oxide]
rules:
  - id: typo
    price:
      products: ["@hevy", Pr-Nd oxide]
      above: 450000
    notify: [console]
""")
    other = write_rules(tmp_path, "watchlists:\n  - name: a\n    products: [Dy oxide]\n", "z-other.yaml")
    assert problems(tmp_path) == [
        f"{f}:5: -: watchlists: b: @a names a watchlist that names b again: a cycle (a -> b -> a)",
        f"{f}:5: -: watchlists: b: unknown product 'unobtainium'",
        f"{f}:6: -: watchlists: 'heavy' is a catalog group (its products: "
        + ", ".join(p.name for p in CATALOG.groups()["heavy"]) + "): name yours otherwise",
        f"{f}:11: typo: price.products: unknown watchlist '@hevy' (did you mean '@heavy'?)",
        f"{other}:2: -: watchlists: 'a' is defined twice (also in {f})",
    ]


def test_a_watchlist_holds_at_most_its_limit(tmp_path: Path) -> None:
    items = ", ".join(["Tb oxide"] * WATCHLIST_MAX)
    write_rules(tmp_path, f"watchlists:\n  - name: big\n    products: [{items}]\n")
    assert problems(tmp_path) == []
    write_rules(tmp_path, f"watchlists:\n  - name: big\n    products: [{items}, Dy oxide]\n")
    assert problems(tmp_path) == [f"{tmp_path / 'rules.yaml'}:3: -: products: at most {WATCHLIST_MAX:,} items (got "
                                  f"{WATCHLIST_MAX + 1:,})"]


NAMES = ["a", "b", "c", "d", "e"]
ENTRIES = st.sampled_from(["@" + n for n in NAMES] + ["@heavy", "@nope", "Tb oxide", "Dy oxide", "nothing"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=st.dictionaries(st.sampled_from(NAMES), st.lists(ENTRIES, min_size=1, max_size=6), max_size=5))
def test_any_watchlists_load_without_raising_and_resolve_to_known_products(tmp_path: Path,
                                                                           graph: dict[str, list[str]]) -> None:
    """Whatever watchlists a trader writes (cycles, unknown names, nesting), loading never raises, every watchlist
    holds only catalog products, and each of its named products and watchlists' products is in it."""
    lines = ["watchlists:"] + [f"  - name: {n}\n    products: [{', '.join(repr(e) for e in es)}]"
                               for n, es in graph.items()]
    lines += ["rules:", "  - id: r", "    price: {products: ['@a', Pr-Nd oxide], above: 1}", "    notify: [console]"]
    (tmp_path / "rules.yaml").write_text("\n".join(lines) + "\n")
    rs = load_rules(tmp_path)
    for name, entries in graph.items():
        held = set(rs.watchlists[name])
        assert held <= set(rs.catalog.products.values())
        for e in entries:
            if not e.startswith("@"):
                product = rs.catalog.find(e)
                assert product is None or product in held
    rule = rs.by_id.get("r")
    if "a" not in graph:
        assert rule is None and any("unknown watchlist '@a'" in p.message for p in rs.problems)
    elif not rs.watchlists["a"]:  # a watchlist that holds no product: the rule would not cover what it says
        assert rule is None and any("watchlist '@a' holds no product" in p.message for p in rs.problems)
    else:
        assert rule is not None
        assert {r.product for r in rule if isinstance(r, PriceRule)} == set(rs.watchlists["a"]) | \
            {rs.catalog.find("Pr-Nd oxide")}
