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
