"""Watchlists: named product lists in the rule files (``watchlists:``, one per trader or book) and the catalog's
groups (``light``, ``heavy``, ``oxides``, ``metals``: ``alerts.catalog``), which rules name as ``"@NAME"`` wherever
they take products (``products: "@heavy"``): one rule written once covers every product in the list, products
added later included (the rules are compiled again when a file changes), each product with its own state.

A watchlist may name other watchlists (``@light``); a cycle, an unknown product or watchlist, a name given twice or
a name that is a catalog group is reported with its file and line, and the rest of the list still loads.
``expand`` is what the rule compiler asks for the products a rule names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from alerts.catalog import Product
from alerts.errors import Problem
from alerts.rules.compiled import RuleSet
from alerts.rules.models import Watchlist
from alerts.rules.validation import ParsedFile, validate
from alerts.rules.yaml_lines import line_of

#: How a rule names a watchlist: ``@`` and the name.
MARK = "@"


def _close(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '@{close[0]}'?)" if close else f" (known: {', '.join('@' + k for k in sorted(known))})" \
        if known else " (no watchlists: define one under watchlists:, or use a catalog group)"


def load_watchlists(parsed: Sequence[ParsedFile], rs: RuleSet) -> None:
    """Read every file's ``watchlists:`` into ``rs.watchlists``, with the catalog's groups, resolving nested
    ``@NAME`` entries; problems go to ``rs.problems``."""
    groups = rs.catalog.groups()
    raw: dict[str, tuple[Watchlist, ParsedFile, int]] = {}
    for p in parsed:
        for i, item in enumerate(p.data.get("watchlists") or []):
            w = validate(Watchlist, item, p, ("watchlists", i), None, rs.problems)
            if w is None:
                continue
            line = line_of(p.lines, ("watchlists", i))
            if w.name in groups:
                rs.problems.append(Problem(p.path, line, None, f"watchlists: {w.name!r} is a catalog group (its "
                                           f"products: {', '.join(x.name for x in groups[w.name])}): name yours "
                                           "otherwise"))
            elif w.name in raw:
                first = raw[w.name][1].path
                rs.problems.append(Problem(p.path, line, None, f"watchlists: {w.name!r} is defined twice (also in "
                                           f"{first})"))
            else:
                raw[w.name] = (w, p, i)
    resolved: dict[str, tuple[Product, ...]] = dict(groups)

    def resolve(name: str, visiting: tuple[str, ...]) -> tuple[Product, ...]:
        if name in resolved:
            return resolved[name]
        w, p, i = raw[name]
        out: list[Product] = []
        for j, entry in enumerate(w.products):
            at = line_of(p.lines, ("watchlists", i, "products", j))
            if entry.startswith(MARK):
                inner = entry[len(MARK):]
                if inner in visiting or inner == name:
                    cycle = " -> ".join((*visiting, name, inner))
                    rs.problems.append(Problem(p.path, at, None, f"watchlists: {name}: {entry} names a watchlist "
                                               f"that names {name} again: a cycle ({cycle})"))
                elif inner in raw or inner in groups:
                    out.extend(resolve(inner, (*visiting, name)))
                else:
                    rs.problems.append(Problem(p.path, at, None, f"watchlists: {name}: unknown watchlist {entry!r}"
                                               + _close(inner, [*raw, *groups])))
                continue
            product = rs.catalog.find(entry)
            if product is None:
                rs.problems.append(Problem(p.path, at, None, f"watchlists: {name}: unknown product {entry!r}"))
            else:
                out.append(product)
        resolved[name] = tuple(dict.fromkeys(out))
        return resolved[name]

    for name in raw:
        resolve(name, ())
    rs.watchlists = resolved


def expand(names: Sequence[str], rs: RuleSet, problem: Callable[[int, str], Any]) -> list[tuple[int, Product]]:
    """The products ``names`` (a rule's product names, ``@NAME`` entries among them) stand for, each with the index
    of the entry that named it; ``problem(index, message)`` for a name that is neither a product nor a watchlist."""
    out: list[tuple[int, Product]] = []
    for j, name in enumerate(names):
        if name.startswith(MARK):
            products = rs.watchlists.get(name[len(MARK):])
            if products is None:
                problem(j, f"unknown watchlist {name!r}" + _close(name[len(MARK):], list(rs.watchlists)))
            elif not products:
                problem(j, f"watchlist {name!r} holds no product")
            out.extend((j, p) for p in products or ())
            continue
        product = rs.catalog.find(name)
        if product is None:
            problem(j, f"unknown product {name!r}")
        else:
            out.append((j, product))
    return out
