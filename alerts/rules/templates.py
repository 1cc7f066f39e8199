"""``message:`` templates: Jinja2 in a sandbox, checked when the rules are loaded.

A template sees the alert's fields (``FIELDS``) and three filters: ``thousands`` (451000 ->
"451,000"), ``pct`` (5.234 -> "+5.2%") and ``day`` (an epoch time -> its date in the rules' time
zone). A template that does not compile, or names a field that does not exist, is a rule error.
Event text in a field (a headline) is data, never template code: it is not evaluated.

What a template may compute is bounded in size, steps and time (``alerts.rules.template_limits``): a template
that passes a limit on the sample values is a rule error naming the limit; one that passes it on an alert's
values gives that alert its default text, and says so once in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError

from alerts.errors import RuleError
from alerts.rules import template_limits as limits
from alerts.rules.template_limits import LimitExceeded, Sandbox
from alerts.units import format_price

log = logging.getLogger(__name__)

#: Names a template may use.
FIELDS = frozenset({
    "rule", "description", "severity", "owner", "labels", "status", "condition",
    "product", "unit", "price", "previous", "previous_as_of", "threshold", "change", "change_pct", "window",
    "as_of", "source", "headline", "url",
})
#: Longest message a template may produce (characters); longer ones are cut.
MAX_LENGTH = 2000


class TemplateError(RuleError, ValueError):
    pass


_SAMPLE: dict[str, Any] = {
    "rule": "r", "severity": "warning", "status": "firing", "condition": "above", "product": "Pr-Nd oxide",
    "unit": "CNY/t", "price": 452000.0, "previous": 447000.0, "previous_as_of": "2025-02-24",
    "threshold": 450000.0, "change": 5000.0, "change_pct": 1.1, "window": "30d", "as_of": "2025-02-25",
    "source": "smm", "headline": "h", "url": "https://example.com", "labels": {}, "owner": "o", "description": "d",
}


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}%"


def _thousands(value: float | None) -> str:
    return "n/a" if value is None else format_price(float(value))


def _day(value: Any, zone: ZoneInfo) -> str:
    """An epoch time, a datetime or an ISO date/datetime string -> its date in the rules' time zone."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), zone).date().isoformat()
    text = str(value)
    if len(text) == 10:
        return text
    moment = datetime.fromisoformat(text)
    return (moment.astimezone(zone) if moment.tzinfo else moment).date().isoformat()


@lru_cache(maxsize=8)
def environment(tz: str) -> Sandbox:
    env = Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    for name in ("range", "lipsum", "cycler", "joiner", "namespace", "dict"):  # loops and generators: not needed
        env.globals.pop(name, None)
    zone = ZoneInfo(tz)
    env.filters["thousands"] = _thousands
    env.filters["pct"] = _pct
    env.filters["day"] = lambda value: _day(value, zone)
    env.bound_filters()
    return env


def _parse(env: Sandbox, source: str, what: str) -> tuple[nodes.Template, set[str]]:
    """The template's syntax tree and the names it reads. Raises TemplateError when it does not compile (an
    unknown filter, nesting too deep for the parser) or writes an integer over the limit."""
    try:
        ast = env.parse(source)
        names = set(meta.find_undeclared_variables(ast))
        limits.check_literals(ast)
    except TemplateSyntaxError as exc:  # TemplateAssertionError (an unknown filter or test) included
        raise TemplateError(f"{what}: template does not compile: {exc.message} (template line {exc.lineno})") \
            from None
    except RecursionError:
        raise TemplateError(f"{what}: template does not compile: it nests too deep") from None
    except LimitExceeded as exc:
        raise TemplateError(f"{what}: {exc}") from None
    return ast, names


def _compile(env: Sandbox, ast: nodes.Template, what: str) -> Template:
    try:
        return env.from_string(ast)
    except (SyntaxError, RecursionError, MemoryError):  # Python's own limits on nesting (blocks, parentheses)
        raise TemplateError(f"{what}: template does not compile: it nests too deep") from None
    except (TemplateSyntaxError, SecurityError, ValueError, OverflowError) as exc:
        raise TemplateError(f"{what}: template does not compile: {exc}") from None


def _trial(template: Template, values: dict[str, Any], what: str) -> None:
    """A trial run on typical values: what the sandbox refuses, or a limit passed, is an error now rather
    than when an alert needs the template. Other failures depend on the values and are left to the render."""
    try:
        limits.render(template, values)
    except (SecurityError, LimitExceeded) as exc:
        raise TemplateError(f"{what}: {exc}") from None
    except RecursionError:  # a macro calling itself for ever
        raise TemplateError(f"{what}: template recurses too deep") from None
    except Exception:  # noqa: S110 - the alert then keeps its default text, with the reason
        pass


class Message:
    """A compiled template."""

    def __init__(self, source: str, tz: str):
        env = environment(tz)
        ast, names = _parse(env, source, "message")
        unknown_globals = sorted(names & {"range", "lipsum", "cycler", "joiner"})
        if unknown_globals:
            raise TemplateError(f"message: {unknown_globals[0]}() is not available in messages")
        unknown = sorted(names - FIELDS)
        if unknown:
            raise TemplateError(f"message: unknown field {', '.join(map(repr, unknown))}; "
                                f"fields are {', '.join(sorted(FIELDS))}")
        self.source = source
        self.template = _compile(env, ast, "message")
        _trial(self.template, {**dict.fromkeys(FIELDS), **_SAMPLE}, "message")
        self.reported = False

    def render(self, fields: dict[str, Any], default: Callable[[], str] | str = "") -> str:
        """The message for these fields, at most MAX_LENGTH characters. A render that passes a limit gives
        ``default`` (the rule's default text) and is logged, once for this rule; other failures raise."""
        values = dict.fromkeys(FIELDS)
        values.update(fields)
        try:
            text = limits.render(self.template, values).strip()
        except LimitExceeded as exc:
            if not self.reported:
                self.reported = True
                log.warning("rule %s: its message template exceeds the %s; its alerts show their default text",
                            values.get("rule"), exc.limit)
            return default() if callable(default) else default
        return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH - 1] + "…"


#: Names a digest's ``subject:`` template may use.
SUBJECT_FIELDS = frozenset({"count", "name", "date"})
_SUBJECT_SAMPLE = {"count": 12, "name": "desk-daily", "date": "2025-02-25"}


def check_subject(template: str) -> None:
    """A subject template compiles, names only count, name and date and keeps to the limits on sample
    values. Raises TemplateError."""
    env = environment("UTC")
    ast, names = _parse(env, template, "subject")
    unknown = sorted(names - SUBJECT_FIELDS)
    if unknown:
        raise TemplateError(f"subject: unknown field {unknown[0]!r}; fields are count, name, date")
    _trial(_compile(env, ast, "subject"), _SUBJECT_SAMPLE, "subject")


_reported_subjects: set[str] = set()


def render_subject(template: str, default: str, fields: dict[str, Any], tz: str) -> str:
    """A digest's subject: ``template`` rendered with the limits, or ``default`` (a template too) when it
    fails or passes a limit on these values, which is logged once per template."""
    env = environment(tz)
    try:
        return limits.render(_compile(env, _parse(env, template, "subject")[0], "subject"), fields)
    except Exception as exc:  # any failure: the digest still goes out
        if template == default:
            raise
        if template not in _reported_subjects and len(_reported_subjects) < 1000:
            _reported_subjects.add(template)
            log.warning("digest %s: its subject template failed (%s); the digest has the default subject",
                        fields.get("name"), exc)
    return limits.render(env.from_string(default), fields)
