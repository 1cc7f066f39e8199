"""Load a rules directory into a compiled, indexed ``RuleSet``, collecting every problem on the way.

Loading never stops at the first mistake: each file, product, digest and rule is checked on its
own, problems are collected as ``Problem(path, line, rule_id, message)``, and everything valid is
kept. ``alerts rules check`` prints the problems; the service runs the valid rules and reports the
rest.

Price rules are indexed per product and condition by threshold, sorted, so evaluating a quote
only looks at the thresholds between the previous and the new price (``alerts.engine``).
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from alerts.catalog import Catalog, Product, builtin_catalog
from alerts.durations import parse_duration
from alerts.errors import Problem
from alerts.matching import compile_any, compile_each
from alerts.rules import TOP_LEVEL_KEYS, Digest, NewsCondition, PriceCondition, ProductDef, Rule
from alerts.targets import Target, parse_target
from alerts.units import UnitError, format_price, parse_amount, parse_unit
from alerts.yamlsrc import YamlError, line_of, load


@dataclass(frozen=True, eq=False)
class PriceRule:
    id: str
    fp: str  # fingerprint of what decides firing; state is kept under it
    product: Product
    kind: str  # above | below | crosses_above | crosses_below
    threshold: float  # in the product's quote unit
    cooldown: float  # seconds, 0 for none
    severity: str
    targets: tuple[Target, ...]
    description: str
    path: str
    line: int

    @property
    def condition_text(self) -> str:
        return f"{self.kind.replace('_', ' ')} {format_price(self.threshold)} {self.product.unit}"


@dataclass(frozen=True, eq=False)
class NewsRule:
    id: str
    fp: str
    any_re: re.Pattern[str] | None
    all_res: tuple[re.Pattern[str], ...]
    none_re: re.Pattern[str] | None
    cooldown: float
    severity: str
    targets: tuple[Target, ...]
    description: str
    path: str
    line: int

    def matches(self, text: str) -> bool:
        if self.any_re is not None and self.any_re.search(text) is None:
            return False
        if any(p.search(text) is None for p in self.all_res):
            return False
        return self.none_re is None or self.none_re.search(text) is None


@dataclass
class ThresholdIndex:
    """Rules of one condition kind on one product, sorted by threshold."""

    thresholds: list[float] = field(default_factory=list)
    rules: list[PriceRule] = field(default_factory=list)

    def between(self, lo: float, hi: float, lo_inclusive: bool, hi_inclusive: bool) -> list[PriceRule]:
        """Rules with lo < X < hi, each end included when asked."""
        i = bisect.bisect_left(self.thresholds, lo) if lo_inclusive else bisect.bisect_right(self.thresholds, lo)
        j = bisect.bisect_right(self.thresholds, hi) if hi_inclusive else bisect.bisect_left(self.thresholds, hi)
        return self.rules[i:j]


@dataclass
class ProductIndex:
    by_kind: dict[str, ThresholdIndex] = field(default_factory=dict)
    by_fp: dict[str, PriceRule] = field(default_factory=dict)
    token: str = ""  # changes whenever the set of fingerprints changes

    def kind(self, kind: str) -> ThresholdIndex | None:
        return self.by_kind.get(kind)


@dataclass
class RuleSet:
    catalog: Catalog
    price: dict[str, ProductIndex] = field(default_factory=dict)
    news: tuple[NewsRule, ...] = ()
    by_id: dict[str, PriceRule | NewsRule] = field(default_factory=dict)
    digests: dict[str, Digest] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


_KNOWN_KEYS = sorted({name for m in (Rule, PriceCondition, NewsCondition, Digest, ProductDef)
                      for name in m.model_fields})


def _fp(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:12]


def _pydantic_problems(exc: ValidationError, path: str, lines: dict[Any, int], base: tuple[Any, ...],
                       rule_id: str | None) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("int", "float", "str")))
        where = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
            close = difflib.get_close_matches(str(loc[-1]), _KNOWN_KEYS, n=1) if loc else []
            if close:
                msg += f" (did you mean {close[0]!r}?)"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}" if loc else "missing required key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if where:
                msg = f"{where}: {msg}"
        out.append(Problem(path, line_of(lines, base + loc), rule_id, msg))
    # several union members give one error each for the same key; keep the first per line and text
    return list(dict.fromkeys(out))


def rule_files(rules_dir: Path) -> list[Path]:
    if rules_dir.is_file():
        return [rules_dir]
    files = [p for p in rules_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(rules_dir).parts))


@dataclass
class _Parsed:
    path: str
    data: dict[str, Any]
    lines: dict[Any, int]


def load_rules(rules_dir: Path | str, catalog: Catalog | None = None) -> RuleSet:
    """Load and compile every rule file under ``rules_dir``. Never raises for a trader's mistake."""
    root = Path(rules_dir)
    rs = RuleSet(catalog=(catalog or builtin_catalog()).copy())
    if not root.exists():
        rs.problems.append(Problem(str(root), 0, None, "rules directory does not exist"))
        return rs
    parsed = []
    for f in rule_files(root):
        rs.files.append(str(f))
        p = _parse_file(f, rs.problems)
        if p is not None:
            parsed.append(p)
    for p in parsed:
        _load_products(p, rs)
    for p in parsed:
        _load_digests(p, rs)
    first_seen: dict[str, tuple[str, int]] = {}
    compiled: list[PriceRule | NewsRule] = []
    for p in parsed:
        for i, item in enumerate(p.data.get("rules") or []):
            rule = _compile_rule(p, i, item, rs, first_seen)
            if rule is not None:
                compiled.append(rule)
    _index(rs, compiled)
    return rs


def _parse_file(f: Path, problems: list[Problem]) -> _Parsed | None:
    path = str(f)
    try:
        text = f.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, 0, None, f"cannot read file: {exc}"))
        return None
    try:
        data, lines = load(text)
    except YamlError as exc:
        problems.append(Problem(path, exc.line, None, str(exc)))
        return None
    if data is None:
        return _Parsed(path, {}, lines)
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, None, "a rule file is a mapping with keys rules:, digests:, products:"))
        return None
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(Problem(path, line_of(lines, (key,)), None,
                                    f"unknown top-level key {key!r}; expected one of {', '.join(TOP_LEVEL_KEYS)}"))
    for key in TOP_LEVEL_KEYS:
        if data.get(key) is not None and not isinstance(data[key], list):
            problems.append(Problem(path, line_of(lines, (key,)), None, f"{key}: must be a list"))
            data[key] = []
    return _Parsed(path, data, lines)


def _validate(model: type[BaseModel], item: Any, p: _Parsed, base: tuple[Any, ...], rid: str | None,
              rs: RuleSet) -> Any:
    if not isinstance(item, dict):
        rs.problems.append(Problem(p.path, line_of(p.lines, base), rid, "expected a mapping"))
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        rs.problems.extend(_pydantic_problems(exc, p.path, p.lines, base, rid))
        return None


def _load_products(p: _Parsed, rs: RuleSet) -> None:
    for i, item in enumerate(p.data.get("products") or []):
        d = _validate(ProductDef, item, p, ("products", i), None, rs)
        if d is None:
            continue
        line = line_of(p.lines, ("products", i))
        try:
            rs.catalog.add(Product(d.name, parse_unit(d.unit), tuple(d.aliases)))
        except ValueError as exc:
            rs.problems.append(Problem(p.path, line, None, f"products: {exc}"))


def _load_digests(p: _Parsed, rs: RuleSet) -> None:
    for i, item in enumerate(p.data.get("digests") or []):
        d = _validate(Digest, item, p, ("digests", i), None, rs)
        if d is None:
            continue
        if d.name in rs.digests:
            rs.problems.append(Problem(p.path, line_of(p.lines, ("digests", i)), None,
                                       f"digest {d.name!r} is defined twice"))
            continue
        rs.digests[d.name] = d


def _compile_rule(p: _Parsed, i: int, item: Any, rs: RuleSet,
                  first_seen: dict[str, tuple[str, int]]) -> PriceRule | NewsRule | None:
    base = ("rules", i)
    line = line_of(p.lines, base)
    rid = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    rule = _validate(Rule, item, p, base, rid, rs)
    if rid is not None:
        if rid in first_seen:
            other = first_seen[rid]
            rs.problems.append(Problem(p.path, line, rid, f"duplicate rule id, first defined at {other[0]}:{other[1]}"))
            return None
        first_seen[rid] = (p.path, line)
    if rule is None:
        return None
    ok = True

    def problem(sub: tuple[Any, ...], msg: str) -> None:
        nonlocal ok
        ok = False
        rs.problems.append(Problem(p.path, line_of(p.lines, base + sub), rule.id, msg))

    targets = []
    for j, t in enumerate(rule.notify):
        try:
            target = parse_target(t)
        except ValueError as exc:
            problem(("notify", j), f"notify: {exc}")
            continue
        if target.kind == "digest" and target.value not in rs.digests:
            problem(("notify", j), f"notify: digest {target.value!r} is not defined under digests:")
        targets.append(target)
    cooldown = 0.0
    if rule.cooldown is not None:
        try:
            cooldown = parse_duration(rule.cooldown)
        except ValueError as exc:
            problem(("cooldown",), f"cooldown: {exc}")
    common = dict(cooldown=cooldown, severity=rule.severity, targets=tuple(dict.fromkeys(targets)),
                  description=rule.description, path=p.path, line=line)
    if rule.price is not None:
        cond = rule.price
        product = rs.catalog.find(cond.product)
        if product is None:
            problem(("price", "product"), f"price.product: unknown product {cond.product!r}")
            return None
        try:
            number, unit = parse_amount(cond.threshold)
            threshold = number * (unit.factor_to(product.unit) if unit is not None else 1.0)
        except UnitError as exc:
            problem(("price", cond.kind), f"price.{cond.kind}: {exc} ({product.name} is quoted in {product.unit})")
            return None
        if threshold <= 0:
            problem(("price", cond.kind), f"price.{cond.kind}: a threshold must be positive")
        if not ok or not rule.enabled:
            return None
        fp = _fp(rule.id, product.key, cond.kind, threshold)
        return PriceRule(id=rule.id, fp=fp, product=product, kind=cond.kind, threshold=threshold, **common)
    assert rule.news is not None
    n = rule.news
    if not ok or not rule.enabled:
        return None
    return NewsRule(id=rule.id, fp=_fp(rule.id, tuple(n.any), tuple(n.all), tuple(n.none)),
                    any_re=compile_any(n.any), all_res=compile_each(n.all), none_re=compile_any(n.none), **common)


def _index(rs: RuleSet, compiled: Iterable[PriceRule | NewsRule]) -> None:
    news = []
    for r in compiled:
        rs.by_id[r.id] = r
        if isinstance(r, NewsRule):
            news.append(r)
            continue
        idx = rs.price.setdefault(r.product.key, ProductIndex())
        idx.by_fp[r.fp] = r
        idx.by_kind.setdefault(r.kind, ThresholdIndex()).rules.append(r)
    rs.news = tuple(news)
    for idx in rs.price.values():
        for ti in idx.by_kind.values():
            ti.rules.sort(key=lambda r: r.threshold)
            ti.thresholds = [r.threshold for r in ti.rules]
        idx.token = _fp(*sorted(idx.by_fp))
