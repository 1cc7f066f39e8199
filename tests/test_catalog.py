import pytest

from alerts.catalog import Product, builtin_catalog
from alerts.units import parse_unit


@pytest.mark.parametrize("name", ["Pr-Nd oxide", "PrNd oxide", "pr-nd oxide", "PR ND OXIDE", "pr_nd-oxide",
                                  "praseodymium-neodymium oxide", "氧化镨钕"])
def test_prnd_oxide_names(name: str) -> None:
    p = builtin_catalog().find(name)
    assert p is not None and p.name == "Pr-Nd oxide" and str(p.unit) == "CNY/t"


@pytest.mark.parametrize("name,canonical,unit", [
    ("Dy oxide", "dysprosium oxide", "CNY/kg"), ("氧化铽", "terbium oxide", "CNY/kg"),
    ("PrNd alloy", "Pr-Nd alloy", "CNY/t"), ("Dy-Fe", "dysprosium-iron alloy", "CNY/kg"),
    ("Gd-Fe", "gadolinium-iron alloy", "CNY/t"), ("NdFeB scrap", "NdFeB scrap", "CNY/kg"),
])
def test_other_products(name: str, canonical: str, unit: str) -> None:
    p = builtin_catalog().find(name)
    assert p is not None and (p.name, str(p.unit)) == (canonical, unit)


def test_unknown_product() -> None:
    assert builtin_catalog().find("unobtainium oxide") is None


def test_extend_and_conflicts() -> None:
    c = builtin_catalog()
    c.add(Product("yttrium oxide", parse_unit("CNY/t"), ("Y oxide",)))
    assert c.find("y-oxide").name == "yttrium oxide"  # type: ignore[union-attr]
    c.add(Product("Pr-Nd oxide", parse_unit("CNY/t"), ("PN oxide",)))  # adds an alias
    assert c.find("PN oxide").name == "Pr-Nd oxide"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="quoted in CNY/t"):
        c.add(Product("Pr-Nd oxide", parse_unit("CNY/kg")))
    with pytest.raises(ValueError, match="already belongs"):
        c.add(Product("something", parse_unit("CNY/t"), ("Dy oxide",)))


# Daily averages of early 2025 (../shared/DOMAIN.md): each typical range holds them with room to spare.
PRICES_2025 = {"Pr-Nd oxide": (415_000, 450_000), "Pr-Nd alloy": (544_000, 546_500),
               "dysprosium oxide": (1_665, 1_710), "terbium oxide": (5_940, 6_525)}


def test_every_builtin_product_has_a_wide_typical_range() -> None:
    products = list(builtin_catalog().products.values())
    assert len(products) == 15
    for p in products:
        assert p.typical is not None, p.name
        low, high = p.typical
        assert 0 < low and high >= 9 * low, p.name  # about 0.3x to 3x of a 2025 level
    for name, (lo, hi) in PRICES_2025.items():
        found = builtin_catalog().find(name)
        assert found is not None and found.typical is not None
        assert found.typical[0] <= lo / 2 and found.typical[1] >= hi * 2, name
        for slip in (lo / 1000, hi * 1000):  # per kg written for per tonne, or the reverse: outside
            assert not found.typical[0] <= slip <= found.typical[1], name


def test_extending_a_product_keeps_its_typical_range() -> None:
    c = builtin_catalog()
    before = c.find("Pr-Nd oxide")
    assert before is not None and before.typical == (135_000.0, 1_350_000.0)
    c.add(Product("Pr-Nd oxide", parse_unit("CNY/t"), ("PN oxide",)))
    after = c.find("PN oxide")
    assert after is not None and after.typical == before.typical
    c.add(Product("yttrium oxide", parse_unit("CNY/t")))
    assert c.find("yttrium oxide").typical is None  # type: ignore[union-attr]


def test_the_products_table_of_rules_readme_is_the_catalog() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "rules" / "README.md").read_text("utf-8")
    rows = re.findall(r"^\| ([^|]+?) \| (CNY/(?:t|kg)) \| ([\d,]+) to ([\d,]+) \|", text, re.MULTILINE)
    table = {name: (unit, float(lo.replace(",", "")), float(hi.replace(",", ""))) for name, unit, lo, hi in rows}
    assert table == {p.name: (str(p.unit), *p.typical) for p in builtin_catalog().products.values() if p.typical}
