"""Compile validated rules into indexed ``CompiledRule`` objects, collecting every problem with its line.

``compile_rule`` turns one entry of a file's ``rules:`` list into compiled rules (one per product),
or none when it has an error; a rule with an error is still checked as far as it can be
(``alerts.rules.salvage``), so every problem of a rule is reported at once. Validating a file's values
against the models is ``alerts.rules.validation``; the ``RuleSet``'s indexes are ``alerts.rules.index``.
Finding and parsing the files, products, digests and webhooks is ``alerts.rules.load``.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.catalog import Product
from alerts.durations import COOLDOWN_LIMIT, MAX_COOLDOWN, MAX_WINDOW, WINDOW_LIMIT
from alerts.durations import parse_duration as _parse_duration
from alerts.errors import Problem
from alerts.rules.compile_vendors import Choice, choice_parts, compile_divergence, source_choice
from alerts.rules.compiled import (
    AllOfRule,
    CompiledRule,
    FxThreshold,
    NewsRule,
    PriceRule,
    RuleSet,
    SpreadRule,
    StaleRule,
    fingerprint,
)
from alerts.rules.limits import shown_id
from alerts.rules.matching import RegexError, compile_any, compile_each, compile_regex
from alerts.rules.models import (
    NewsCondition,
    PriceCondition,
    Rule,
)
from alerts.rules.notice_compile import compile_vendor_notice
from alerts.rules.salvage import repair
from alerts.rules.templates import Message, TemplateError
from alerts.rules.validation import ParsedFile, error_text, label, validate
from alerts.rules.watchlists import expand
from alerts.rules.yaml_lines import KeyPath, SplitNumber, line_of
from alerts.targets import parse_target
from alerts.units import Unit, UnitError, parse_amount

_BUSINESS_DAYS = re.compile(r"^\s*(\d+)\s+business\s+days?\s*$", re.IGNORECASE)


#: Latest ``expires:`` date a rule may give.
MAX_EXPIRES = date(2100, 12, 31)
#: Most business days a ``stale.after:`` may give: about the longest window (``MAX_WINDOW``, 400 days).
MAX_BUSINESS_DAYS = 285


def parse_duration(value: str | int | float, maximum: float = MAX_WINDOW, limit: str = WINDOW_LIMIT) -> float:
    """``alerts.durations.parse_duration``, refusing what no rule can mean (ValueError naming ``limit``): a
    duration longer than ``maximum`` (a window: ``MAX_WINDOW``; a cooldown: ``MAX_COOLDOWN``) or too large
    for a number."""
    try:
        return _parse_duration(value, maximum, limit)
    except OverflowError:
        raise ValueError(f"{str(value)[:40]!r} is too long: {limit}") from None


def compile_rule(p: ParsedFile, i: int, item: Any, rs: RuleSet,
                 first_seen: dict[str, tuple[str, int]]) -> list[CompiledRule]:
    """Rule ``i`` of a file compiled, one per product; none when it has an error or is disabled.
    ``first_seen`` (rule id -> file and line) finds duplicate ids across files. A rule with an error
    is still checked as far as it can be, so all its problems are reported at once."""
    base = ("rules", i)
    line = line_of(p.lines, base)
    rid = shown_id(item)
    splits = [sp for sp in p.splits if sp.path[:2] == base]
    for sp in splits:
        rs.problems.append(Problem(p.path, sp.line, rid, sp.message(label(sp.path[2:]))))
    rule = validate(Rule, item, p, base, rid, rs.problems)
    duplicate = False
    if rid is not None:
        if rid in first_seen:
            other = first_seen[rid]
            rs.problems.append(Problem(p.path, line, rid, f"duplicate rule id, first defined at {other[0]}:{other[1]}"))
            duplicate = True
        else:
            first_seen[rid] = (p.path, line)
    if rule is None or splits:
        if isinstance(item, dict):
            _check_the_rest(p, base, item, rid, rs, splits)
        return []
    c = _RuleCompiler(p, base, rule, rs, rid)
    compiled = c.compile()
    return compiled if c.ok and rule.enabled and not duplicate else []


def _check_the_rest(p: ParsedFile, base: KeyPath, item: dict[Any, Any], rid: str | None, rs: RuleSet,
                    splits: list[SplitNumber]) -> None:
    """Report the problems of a rule that did not validate that its validation errors hid: the
    checks of a repaired copy (``salvage.repair``), at the lines of the original. Compiles nothing."""
    fixed = repair(Rule, item, p.lines, base, {sp.path[len(base):]: sp.text for sp in splits})
    if fixed is None:
        return
    seen = set(rs.problems)
    for line, err in [*fixed.errors, *fixed.hidden]:
        problem = Problem(p.path, line, rid, error_text(err, Rule)[1])
        if problem not in seen:
            seen.add(problem)
            rs.problems.append(problem)
    _RuleCompiler(ParsedFile(p.path, {}, fixed.lines), base, fixed.rule, rs, rid).compile()


class _RuleCompiler:
    """Turns one validated rule into compiled rules (one per product), reporting problems with lines.
    The rule may be a lenient one (``models.LENIENT``, from ``salvage.repair``): without a condition or
    threshold, or with several; what is there is checked."""

    def __init__(self, p: ParsedFile, base: tuple[Any, ...], rule: Rule, rs: RuleSet, rid: str | None):
        self.p, self.base, self.rule, self.rs, self.rid = p, base, rule, rs, rid
        self.ok = True
        self.reported: set[Problem] = set()

    def problem(self, sub: tuple[Any, ...], msg: str, severity: str = "error") -> None:
        """Report a problem at ``sub`` (a path in the rule); each once, however many products repeat it."""
        if severity == "error":
            self.ok = False
        problem = Problem(self.p.path, line_of(self.p.lines, self.base + sub), self.rid, msg, severity)
        if problem not in self.reported:
            self.reported.add(problem)
            self.rs.problems.append(problem)

    def compile(self) -> list[CompiledRule]:
        rule = self.rule
        common = self._common()
        if rule.within is not None and rule.all_of is None:  # a lenient rule (salvage): within is still checked
            try:
                parse_duration(rule.within)
            except ValueError as exc:
                self.problem(("within",), f"within: {exc}")
        if rule.divergence is not None:
            return list(compile_divergence(self, common))
        if rule.price is not None:
            return list(self._price(rule.price, common))
        if rule.news is not None:
            return [self._news(rule.news, common)]
        if rule.spread is not None:
            spread = self._spread(common)
            return [spread] if spread is not None else []
        if rule.stale is not None:
            stale = self._stale(common)
            return [stale] if stale is not None else []
        if rule.all_of is not None:
            return self._all_of(common)
        if rule.vendor_notice is not None:
            return [compile_vendor_notice(rule.id, rule.vendor_notice, self.rs.catalog, self.problem, common)]
        return []

    def _news(self, n: NewsCondition, common: dict[str, Any], at: tuple[Any, ...] = ("news",)) -> NewsRule:
        where = label(at)
        if n.all and n.none:
            clash = [w for w in n.none if any(compile_any([w]).search(a) for a in n.all)]  # type: ignore[union-attr]
            if clash:
                self.problem((*at, "none"), f"{where}.none: {clash[0]!r} is in every article all: asks for, so "
                             "this rule can never fire", "warning")
        regexes = []
        for j, pattern in enumerate(n.regexes):
            try:
                regexes.append(compile_regex(pattern))
            except RegexError as exc:
                self.problem((*at, "regex") if isinstance(n.regex, str) else (*at, "regex", j), f"{where}.regex: {exc}")
        names: list[str] = []
        listed = n.product_names
        one = isinstance(n.products, str)
        for _j, product in expand(listed, self.rs, lambda j, msg: self.problem(
                (*at, "products") if one else (*at, "products", j), f"{where}.products: {msg}")):
            names.extend(product.all_names)
        fp = fingerprint(self.rule.id, at, tuple(n.any), tuple(n.all), tuple(n.none), tuple(n.regexes),
                         tuple(listed), tuple(n.sources))
        return NewsRule(fp=fp, any_re=compile_any(n.any), all_res=compile_each(n.all), none_re=compile_any(n.none),
                        regexes=tuple(regexes), products_re=compile_any(sorted(set(names), key=len, reverse=True)),
                        sources=frozenset(x.casefold() for x in n.sources), **common)

    def _product(self, name: str, at: tuple[Any, ...]) -> Product | None:
        product = self.rs.catalog.find(name)
        if product is None:
            self.problem(at, f"{label(at)}: unknown product {name!r}")
        return product

    def _spread(self, common: dict[str, Any]) -> SpreadRule | None:
        rule, cond = self.rule, self.rule.spread
        assert cond is not None
        of, minus = self._product(cond.of, ("spread", "of")), self._product(cond.minus, ("spread", "minus"))
        if of is None or minus is None:
            if cond.kind:  # the number and its unit are still checked
                self._amount(getattr(cond, cond.kind), of, ("spread", cond.kind))
            return None
        if of.key == minus.key:
            self.problem(("spread", "minus"), "spread.minus: a spread needs two different products")
            return None
        try:
            factor = minus.unit.factor_to(of.unit)
        except UnitError as exc:
            self.problem(("spread", "minus"), f"spread.minus: {exc}")
            return None
        if not cond.kind:  # a lenient rule (salvage) without its threshold
            return None
        threshold = self._amount(getattr(cond, cond.kind), of, ("spread", cond.kind))
        rearm = self._amount(rule.rearm, of, ("rearm",)) if rule.rearm is not None else None
        if threshold is None:
            return None
        self._check_rearm(cond.kind, threshold, rearm)
        if cond.kind.startswith("crosses") and (rule.confirm > 1 or rule.resolve):
            self.problem(("confirm",) if rule.confirm > 1 else ("resolve",),
                         "confirm: and resolve: apply to above/below conditions, not to crosses_*")
        fp = fingerprint(rule.id, "spread", of.key, minus.key, cond.kind, threshold, rearm, rule.confirm, rule.resolve)
        return SpreadRule(fp=fp, of=of, minus=minus, state_key=fingerprint(rule.id, "spread", of.key, minus.key),
                          factor=factor, kind=cond.kind, threshold=threshold, rearm=rearm,
                          confirm=rule.confirm, resolve=rule.resolve, **common)

    def _stale(self, common: dict[str, Any]) -> StaleRule | None:
        cond = self.rule.stale
        assert cond is not None
        product = self._product(cond.product, ("stale", "product"))
        m = _BUSINESS_DAYS.match(str(cond.after))
        days, duration = None, None
        if m:
            days = int(m.group(1))
            if days > MAX_BUSINESS_DAYS:
                self.problem(("stale", "after"), f"stale.after: {str(cond.after)[:40]!r} is too long: at most "
                             f"{MAX_BUSINESS_DAYS} business days ({WINDOW_LIMIT})")
                return None
        else:
            try:
                duration = parse_duration(cond.after)
            except ValueError as exc:
                msg = str(exc) if "too long" in str(exc) else (
                    f"{str(cond.after)[:40]!r} is neither 'N business days' nor a duration such as 2d or 36h")
                self.problem(("stale", "after"), f"stale.after: {msg}")
                return None
        if (days is not None and days < 1) or (duration is not None and duration <= 0):
            self.problem(("stale", "after"), "stale.after: must be longer than nothing")
        if product is None:
            return None
        return StaleRule(fp=fingerprint(self.rule.id, "stale", product.key, days, duration), product=product,
                         business_days=days, duration=duration, **common)

    def _all_of(self, common: dict[str, Any]) -> list[CompiledRule]:
        rule = self.rule
        assert rule.all_of is not None
        within = 0.0
        try:
            within = parse_duration(rule.within) if rule.within is not None else 0.0
        except ValueError as exc:
            self.problem(("within",), f"within: {exc}")
        parts: list[PriceRule | NewsRule] = []
        part_common = {**common, "message": None, "cooldown": 0.0}
        for i, part in enumerate(rule.all_of):
            if part.news is not None:
                parts.append(self._news(part.news, part_common, ("all_of", i, "news")))
                continue
            if part.price is None:  # a lenient rule (salvage)
                continue
            if len(part.price.product_names) > 1:
                self.problem(("all_of", i, "price"), f"all_of.{i}.price: give one product: per all_of part")
                continue
            parts.extend(self._price(part.price, part_common, ("all_of", i, "price")))
        if not self.ok:
            return []
        fp = fingerprint(rule.id, "all_of", within, *(p.fp for p in parts))
        return [AllOfRule(fp=fp, parts=tuple(parts), within=within, **common)]

    def _common(self) -> dict[str, Any]:
        rule = self.rule
        targets = []
        for j, t in enumerate(rule.notify):
            try:
                target = parse_target(t)
            except ValueError as exc:
                self.problem(("notify", j), f"notify: {exc}")
                continue
            if target.kind == "digest" and target.value not in self.rs.digests:
                self.problem(("notify", j), f"notify: digest {target.value!r} is not defined under digests:")
            if target.kind == "webhook" and target.value not in self.rs.webhooks:
                self.problem(("notify", j), f"notify: webhook {target.value!r} is not defined under webhooks:")
            targets.append(target)
        cooldown = 0.0
        if rule.cooldown is not None:
            try:
                cooldown = parse_duration(rule.cooldown, MAX_COOLDOWN, COOLDOWN_LIMIT)
            except ValueError as exc:
                self.problem(("cooldown",), f"cooldown: {exc}")
        message = None
        if rule.message is not None:
            try:
                message = Message(rule.message, self.rs.timezone)
            except TemplateError as exc:
                self.problem(("message",), str(exc))
        expires = None
        if rule.expires is not None and rule.expires > MAX_EXPIRES:
            self.problem(("expires",), f"expires: {rule.expires.isoformat()} is too far ahead: at most "
                         f"{MAX_EXPIRES.isoformat()}")
        elif rule.expires is not None:
            d = rule.expires
            expires = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(self.rs.timezone)).timestamp() + 86400 - 1e-6
        return dict(id=rule.id, cooldown=cooldown, severity=rule.severity, targets=tuple(dict.fromkeys(targets)),
                    description=rule.description, path=self.p.path, line=line_of(self.p.lines, self.base),
                    expires=expires, owner=rule.owner, labels=tuple(sorted(rule.labels.items())), message=message)

    def _amount(self, value: Any, product: Product | None, where: tuple[Any, ...],
                percent: bool = False) -> float | None:
        """``value`` as a number in ``product``'s unit (when None, as written), or None with a problem."""
        try:
            if percent:
                if isinstance(value, str) and value.strip().endswith("%"):
                    value = value.strip()[:-1]
                number, unit = parse_amount(value)
                if unit is not None:
                    raise UnitError(f"a percentage takes no unit, got {value!r}")
            else:
                number, unit = parse_amount(value)
                if unit is not None and product is not None:
                    number *= unit.factor_to(product.unit)
        except OverflowError:
            number = math.inf
        except UnitError as exc:
            quoted = f" ({product.name} is quoted in {product.unit})" if product is not None else ""
            self.problem(where, f"{label(where)}: {exc}{quoted}")
            return None
        if not math.isfinite(number):
            self.problem(where, f"{label(where)}: {str(value)[:40]!r} is not a number a price can be")
            return None
        return number

    def _price(self, cond: PriceCondition, common: dict[str, Any],
               at: tuple[Any, ...] = ("price",)) -> list[PriceRule]:
        rule = self.rule
        key = "product" if cond.product is not None else "products"
        one = cond.product is not None or isinstance(cond.products, str)
        products = [product for _j, product in expand(cond.product_names, self.rs, lambda j, msg: self.problem(
            (*at, key) if one else (*at, key, j), f"{label(at)}.{key}: {msg}"))]
        choice = source_choice(self, cond, at) or (None, (), "")
        if not cond.kind:  # a lenient rule (salvage) without its condition
            return []
        measure, kind, window = "price", cond.kind, 0.0
        where: tuple[Any, ...] = (*at, cond.kind)
        raw = getattr(cond, cond.kind)
        if cond.kind in ("change_pct", "change"):
            change = getattr(cond, cond.kind)
            measure, kind = cond.kind, change.kind
            try:
                window = parse_duration(change.over)
            except ValueError as exc:
                self.problem((*at, measure, "over"), f"{label(at)}.{measure}.over: {exc}")
            else:
                if window <= 0:
                    self.problem((*at, measure, "over"), f"{label(at)}.{measure}.over: the window must be longer "
                                 "than 0")
            if not kind:  # a lenient rule (salvage) without its threshold
                return []
            where, raw = (*at, measure, kind), getattr(change, kind)
        percent = measure == "change_pct"
        if not products:  # unknown: the number and its unit are still checked
            self._amount(raw, None, where, percent)
            if rule.rearm is not None:
                self._amount(rule.rearm, None, ("rearm",), percent)
            return []
        out: list[PriceRule] = []
        for product in dict.fromkeys(products):
            fx = self._fx(raw, product, where, measure, kind, at, common, choice)
            if fx is not None:
                out.extend(fx)
                continue
            threshold = self._amount(raw, product, where, percent)
            if threshold is None:
                continue
            if measure == "price" and threshold <= 0:
                self.problem(where, f"{label(where)}: a threshold must be positive")
            if kind == "abs_above" and threshold < 0:
                self.problem(where, f"{label(where)}: abs_above takes a positive size of move")
            rearm = None
            if rule.rearm is not None:
                rearm = self._amount(rule.rearm, product, ("rearm",), percent)
                self._check_rearm(kind, threshold, rearm)
            if kind.startswith("crosses") and (rule.confirm > 1 or rule.resolve):
                self.problem(("confirm",) if rule.confirm > 1 else ("resolve",),
                             "confirm: and resolve: apply to above/below conditions, not to crosses_*")
            fp = fingerprint(rule.id, *at[:-1], product.key, measure, kind, threshold, window, rearm, rule.confirm,
                     rule.resolve, *choice_parts(choice))
            source, vendors, combine = choice
            out.append(PriceRule(fp=fp, product=product, measure=measure, kind=kind, threshold=threshold,
                                 window=window, rearm=rearm, confirm=rule.confirm, resolve=rule.resolve,
                                 source=source, vendors=vendors, combine=combine,
                                 state_key=fingerprint(rule.id, "vendors", product.key) if vendors else "",
                                 **common))
        return out

    def _fx(self, raw: Any, product: Product, where: tuple[Any, ...], measure: str, kind: str,
            at: tuple[Any, ...], common: dict[str, Any], choice: Choice) -> list[PriceRule] | None:
        """A price threshold in another currency than the product's: a rule compared at the exchange rate of
        each quote's time. None when the threshold is in the product's currency (or not an amount)."""
        try:
            number, unit = parse_amount(raw)
        except (UnitError, OverflowError):
            return None
        if unit is None or unit.currency == product.unit.currency:
            return None
        rule = self.rule
        if measure != "price":
            self.problem(where, f"{label(where)}: {raw!r} is in {unit.currency} but {product.name} is quoted in "
                         f"{product.unit}: a change in another currency is not supported; use change_pct (a "
                         f"percentage needs no exchange rate) or an amount in {product.unit.currency}")
            return []
        if at != ("price",):
            self.problem(where, f"{label(where)}: a threshold in another currency ({unit.currency}) is not supported "
                         f"inside all_of; write it in {product.unit}")
            return []
        if choice[1]:
            self.problem(where, f"{label(where)}: a threshold in another currency ({unit.currency}) is not supported "
                         f"with several vendors; write it in {product.unit}, or name one vendor with source:")
            return []
        if not math.isfinite(number) or number <= 0:
            self.problem(where, f"{label(where)}: a threshold must be a positive number")
            return []
        rearm = None
        if rule.rearm is not None:
            try:
                r_number, r_unit = parse_amount(rule.rearm)
                if r_unit is not None:
                    r_number *= r_unit.factor_to(unit)
            except UnitError as exc:
                self.problem(("rearm",), f"rearm: {exc} (the threshold is in {unit})")
                return []
            rearm = r_number
        self._check_rearm(kind, number, rearm)
        if kind.startswith("crosses") and (rule.confirm > 1 or rule.resolve):
            self.problem(("confirm",) if rule.confirm > 1 else ("resolve",),
                         "confirm: and resolve: apply to above/below conditions, not to crosses_*")
        fx = FxThreshold(unit, product.unit, product.unit.factor_to(Unit(product.unit.currency, unit.mass)))
        fp = fingerprint(rule.id, "fx", product.key, kind, number, str(unit), rearm, rule.confirm, rule.resolve,
                         *choice_parts(choice))
        return [PriceRule(fp=fp, product=product, kind=kind, threshold=number, rearm=rearm, confirm=rule.confirm,
                          resolve=rule.resolve, fx=fx, state_key=fingerprint(rule.id, "fx", product.key),
                          source=choice[0], **common)]

    def _check_rearm(self, kind: str, threshold: float, rearm: float | None) -> None:
        if rearm is None:
            return
        if kind.startswith("crosses"):
            self.problem(("rearm",), "rearm: applies to above/below conditions, not to crosses_*")
        elif kind == "above" and rearm > threshold:
            self.problem(("rearm",), "rearm: for above, the re-arm level must be at or below the threshold")
        elif kind == "below" and rearm < threshold:
            self.problem(("rearm",), "rearm: for below, the re-arm level must be at or above the threshold")
        elif kind == "abs_above" and not 0 <= rearm <= threshold:
            self.problem(("rearm",), "rearm: for abs_above, the re-arm size must be between 0 and the threshold")
