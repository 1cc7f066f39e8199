"""Rule unit tests in YAML, in the spirit of Prometheus' ``promtool test rules``.

A test file (``*.test.yaml``) lists input events and the alerts expected from them::

    rule_files: [prices.yaml]        # relative to this file; default: every rule file in its folder
    tests:
      - name: Pr-Nd oxide breaks 450k once
        start: 2025-02-24            # base of relative times such as +1d
        events:
          - {type: price, product: Pr-Nd oxide, price: 447000, unit: CNY/t, as_of: +0d}
          - {type: price, product: Pr-Nd oxide, price: 452000, unit: CNY/t, as_of: +1d}
          - {type: price, product: Pr-Nd oxide, price: 453000, unit: CNY/t, as_of: +2d}
        expect:
          - {rule: prnd-oxide-450k, product: Pr-Nd oxide, date: 2025-02-25, text: ["452,000 CNY/t"]}

Every alert fired must be expected and every expected alert must fire: the output shows the
difference. Events go through ``alerts.evaluate.session.Session``, the loop the live evaluator runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts.catalog import product_key
from alerts.durations import parse_duration
from alerts.errors import EventError, Problem
from alerts.evaluate.backtest import alert_day
from alerts.evaluate.session import Session
from alerts.events import Event, FxEvent, RateBook, parse_event
from alerts.model import Alert
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.rules.yaml_lines import YamlError, line_of, load

_Day = date  # the field below is called "date"
_RELATIVE = re.compile(r"^[+-]\s*\d")
TIME_FIELDS = ("as_of", "published_at")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Expected(_Strict):
    rule: str
    product: str | None = None
    date: str | _Day | None = Field(default=None, description="the quote date (or publication date), or +Nd")
    status: Literal["firing", "resolved"] = "firing"
    text: list[str] = Field(default=[], description="fragments the alert's text must contain")


class Case(_Strict):
    name: str
    start: date | None = None
    events: list[dict[str, Any]] = Field(min_length=1)
    expect: list[Expected] = []


class TestFile(_Strict):
    rule_files: list[str] = []
    tests: list[Case] = Field(min_length=1)


@dataclass
class CaseResult:
    name: str
    line: int
    fired: list[Alert] = field(default_factory=list)
    missing: list[Expected] = field(default_factory=list)
    unexpected: list[Alert] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.errors)


@dataclass
class FileResult:
    path: str
    cases: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok for c in self.cases)


def _resolve_time(value: Any, start: date | None, tz: str) -> Any:
    """``+1d`` / ``-2h`` relative to the case's start; anything else as written."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str) or not _RELATIVE.match(value):
        return value
    if start is None:
        raise ValueError(f"{value!r} is relative: give the test a start: date")
    sign = -1 if value.strip().startswith("-") else 1
    seconds = sign * parse_duration(value.strip()[1:])
    if seconds % 86400 == 0:
        return (start + timedelta(days=seconds // 86400)).isoformat()
    base = datetime(start.year, start.month, start.day, tzinfo=ZoneInfo(tz))
    return (base + timedelta(seconds=seconds)).isoformat()


def _matches(exp: Expected, a: Alert, start: date | None, tz: str) -> bool:
    if exp.rule != a.rule_id or exp.status != a.status:
        return False
    if exp.product is not None and product_key(exp.product) != product_key(a.product or ""):
        # an alias of the same product is the same product
        return False
    if exp.date is not None and _resolve_time(exp.date, start, tz) != alert_day(a, tz):
        return False
    return all(fragment in a.text for fragment in exp.text)


def run_case(rules: RuleSet, case: Case, line: int, *, fx_max_age_days: float) -> CaseResult:
    """``fx_max_age_days``: ALERTS_FX_MAX_AGE_DAYS, for quotes and thresholds in another currency."""
    result = CaseResult(case.name, line)
    events: list[Event] = []
    rates = RateBook()  # fx events convert the quotes in another currency after them, as in a file backtest
    for i, raw in enumerate(case.events):
        obj = dict(raw)
        try:
            for key in TIME_FIELDS:
                if key in obj:
                    obj[key] = _resolve_time(obj[key], case.start, rules.timezone)
            ev = parse_event(obj, rules.catalog, rules.timezone, now=0.0, rates=rates,
                             fx_max_age_days=fx_max_age_days)
            if isinstance(ev, FxEvent):
                rates.add(ev)
            events.append(ev)
        except (EventError, ValueError, OverflowError) as exc:
            result.errors.append(f"event {i + 1}: {exc}")
    if result.errors:
        return result
    for j, exp in enumerate(case.expect):
        try:
            if exp.date is not None:
                _resolve_time(exp.date, case.start, rules.timezone)
        except (ValueError, OverflowError) as exc:
            result.errors.append(f"expect {j + 1}: date: {exc}")
    if result.errors:
        return result
    result.fired = Session(rules, fx_max_age=fx_max_age_days * 86400).run(events)
    unmatched = list(result.fired)
    for exp in case.expect:
        exp = _expand_product(exp, rules)
        hit = next((a for a in unmatched if _matches(exp, a, case.start, rules.timezone)), None)
        if hit is None:
            result.missing.append(exp)
        else:
            unmatched.remove(hit)
    result.unexpected = unmatched
    return result


def _expand_product(exp: Expected, rules: RuleSet) -> Expected:
    if exp.product is None:
        return exp
    p = rules.catalog.find(exp.product)
    return exp.model_copy(update={"product": p.name}) if p is not None else exp


def run_file(path: Path, timezone: str, *, fx_max_age_days: float) -> FileResult:
    result = FileResult(str(path))
    try:
        data, lines = load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(Problem(str(path), 0, None, f"cannot read: {exc}"))
        return result
    except YamlError as exc:
        result.problems.append(Problem(str(path), exc.line, None, str(exc)))
        return result
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            result.problems.append(Problem(str(path), line_of(lines, loc), None,
                                           f"{'.'.join(map(str, loc))}: {err['msg']}"))
        return result
    rule_paths = [path.parent / f for f in spec.rule_files] or [path.parent]
    rules = _load(rule_paths, timezone, result)
    if rules is None:
        return result
    for i, case in enumerate(spec.tests):
        result.cases.append(run_case(rules, case, line_of(lines, ("tests", i)), fx_max_age_days=fx_max_age_days))
    return result


def _load(paths: list[Path], timezone: str, result: FileResult) -> RuleSet | None:
    rules = load_rules(paths, timezone=timezone)
    result.problems.extend(rules.errors)
    return None if result.problems else rules


def describe(a: Alert | Expected, tz: str, start: date | None = None) -> str:
    if isinstance(a, Alert):
        status = "" if a.status == "firing" else f" {a.status}"
        return f"{a.rule_id}{status}  {a.product or a.headline}  {alert_day(a, tz)}  \"{a.text}\""
    bits = [a.rule + ("" if a.status == "firing" else f" {a.status}"), a.product or "*", str(a.date or "*")]
    if a.text:
        bits.append(" ".join(f"\"{t}\"" for t in a.text))
    return "  ".join(bits)


def report(results: list[FileResult], tz: str) -> tuple[str, bool]:
    out: list[str] = []
    total = failed = 0
    for fr in results:
        out.append(fr.path)
        for p in fr.problems:
            out.append(f"  {p}")
        for c in fr.cases:
            total += 1
            if c.ok:
                out.append(f"  ok    {c.name} ({len(c.fired)} alerts)")
                continue
            failed += 1
            out.append(f"  FAIL  {c.name}  ({fr.path}:{c.line})")
            out.extend(f"        {e}" for e in c.errors)
            if c.missing:
                out.append("        expected, did not fire:")
                out.extend(f"          - {describe(e, tz)}" for e in c.missing)
            if c.unexpected:
                out.append("        fired, not expected:")
                out.extend(f"          + {describe(a, tz)}" for a in c.unexpected)
    ok = failed == 0 and all(not fr.problems for fr in results)
    problems = sum(len(fr.problems) for fr in results)
    skipped = sum(1 for fr in results if fr.problems)
    out.append(f"{total} tests, {failed} failed" + (
        f", {problems} problems: the tests of {skipped} file{'s' if skipped > 1 else ''} did not run (their rules "
        "or tests were refused, above); nothing is known of what those rules would fire" if problems else ""))
    return "\n".join(out), ok
