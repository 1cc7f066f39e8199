"""The product catalog: catalog names, quote units and the aliases traders and sources write.

Names match ignoring case, white space, hyphens and underscores, so "PrNd oxide", "pr-nd oxide"
and "PR ND OXIDE" are one product. The built-in list is ``data/products.json``; rule files extend it
with a ``products:`` list.

Each built-in product belongs to catalog groups (``groups``: ``light``, ``heavy``, ``oxides``, ``metals``), which
rules name as watchlists (``products: "@heavy"``, ``alerts.rules.watchlists``); rule files' products may join
groups too.

Each built-in product has a ``typical`` price range, in its quote unit: about 0.3 to 3 times its
2025 level, wide on purpose. ``alerts rules check`` warns about a threshold outside it when there is
no stored history of the product to compare with: it is most likely a unit slip (450 written for
450,000 CNY/t). Products added by rule files have none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources

from alerts.units import Unit, parse_unit

_FOLD = re.compile(r"[\s\-_]+")


def product_key(name: str) -> str:
    """The matching key of a product name or alias."""
    return _FOLD.sub("", name).casefold()


@dataclass(frozen=True)
class Product:
    name: str
    unit: Unit
    aliases: tuple[str, ...] = ()
    typical: tuple[float, float] | None = None  # (low, high) in ``unit``: see the module's docstring
    groups: tuple[str, ...] = ()  # catalog groups: watchlists rules may name (``@heavy``)

    @cached_property
    def key(self) -> str:
        return product_key(self.name)

    @cached_property
    def unit_text(self) -> str:
        return str(self.unit)

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass
class Catalog:
    products: dict[str, Product] = field(default_factory=dict)  # canonical key -> product
    _lookup: dict[str, str] = field(default_factory=dict)  # any folded name -> canonical key

    def add(self, product: Product) -> None:
        """Add or extend a product. Raises ValueError when a name already belongs to another product, or its unit
        is a multiple (万元/吨: a product is quoted in CNY/t, and 45万元/吨 is read as 450,000 CNY/t)."""
        if product.unit.scale != 1:
            raise ValueError(f"product {product.name!r}: quote it in {product.unit.base}, not in a multiple of "
                             f"{product.unit.currency} ({product.unit}); prices in 万元/吨 are converted to it")
        existing = self.products.get(product.key)
        if existing is not None:
            if existing.unit != product.unit:
                raise ValueError(
                    f"product {product.name!r} is quoted in {existing.unit}, cannot redefine it as {product.unit}"
                )
            aliases = tuple(dict.fromkeys(existing.aliases + product.aliases))
            product = Product(existing.name, existing.unit, aliases, product.typical or existing.typical,
                              tuple(dict.fromkeys(existing.groups + product.groups)))
        for name in product.all_names:
            k = product_key(name)
            owner = self._lookup.get(k)
            if owner is not None and owner != product.key:
                raise ValueError(f"name {name!r} already belongs to {self.products[owner].name!r}")
        self.products[product.key] = product
        for name in product.all_names:
            self._lookup[product_key(name)] = product.key
            self._lookup[name] = product.key

    def find(self, name: str) -> Product | None:
        k = self._lookup.get(name)  # names as written are indexed too: the hot path skips folding
        if k is None:
            k = self._lookup.get(product_key(name))
        return self.products[k] if k is not None else None

    def groups(self) -> dict[str, tuple[Product, ...]]:
        """Each catalog group and its products, in catalog order."""
        out: dict[str, list[Product]] = {}
        for product in self.products.values():
            for g in product.groups:
                out.setdefault(g, []).append(product)
        return {g: tuple(ps) for g, ps in out.items()}

    def copy(self) -> Catalog:
        return Catalog(dict(self.products), dict(self._lookup))

    def __iter__(self) -> Iterable[Product]:  # type: ignore[override]
        return iter(self.products.values())


def builtin_catalog() -> Catalog:
    raw = json.loads(resources.files("alerts").joinpath("data/products.json").read_text("utf-8"))
    catalog = Catalog()
    for item in raw:
        typical = item.get("typical")
        catalog.add(Product(item["name"], parse_unit(item["unit"]), tuple(item.get("aliases", ())),
                            (float(typical[0]), float(typical[1])) if typical else None,
                            tuple(item.get("groups", ()))))
    return catalog
