"""``message:`` templates: Jinja2 in a sandbox, checked when the rules are loaded.

A template sees the alert's fields (``FIELDS``) and three filters: ``thousands`` (451000 ->
"451,000"), ``pct`` (5.234 -> "+5.2%") and ``day`` (an epoch time -> its date in the rules' time
zone). A template that does not compile, or names a field that does not exist, is a rule error.
Event text in a field (a headline) is data, never template code: it is not evaluated.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alerts.errors import RuleError
from alerts.units import format_price

#: Names a template may use.
FIELDS = frozenset({
    "rule", "description", "severity", "owner", "labels", "status", "condition",
    "product", "unit", "price", "previous", "previous_as_of", "threshold", "change", "change_pct", "window",
    "as_of", "source", "headline", "url",
})
#: Longest message a template may produce (characters); longer ones are cut.
MAX_LENGTH = 2000
#: Largest exponent, and largest repeat count of a string or list, a template may compute.
MAX_POWER = 64
MAX_REPEAT = 10_000


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


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox, with the arithmetic that can exhaust a worker bounded: ``**`` and ``*`` are
    checked before they run (which also stops Jinja folding them at compile time, during rules check)."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise SecurityError(f"exponent {right} is too large for a message")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int) and n > MAX_REPEAT:
                    raise SecurityError("repeating text that many times is not a message")
        return super().call_binop(context, operator, left, right)


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
def environment(tz: str) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    for name in ("range", "lipsum", "cycler", "joiner", "namespace", "dict"):  # loops and generators: not needed
        env.globals.pop(name, None)
    zone = ZoneInfo(tz)
    env.filters["thousands"] = _thousands
    env.filters["pct"] = _pct
    env.filters["day"] = lambda value: _day(value, zone)
    return env


def _names(env: ImmutableSandboxedEnvironment, source: str, what: str) -> set[str]:
    """The names a template reads. Raises TemplateError when it does not compile (an unknown filter,
    nesting too deep for the parser)."""
    try:
        return set(meta.find_undeclared_variables(env.parse(source)))
    except TemplateSyntaxError as exc:  # TemplateAssertionError (an unknown filter or test) included
        raise TemplateError(f"{what}: template does not compile: {exc.message} (template line {exc.lineno})") \
            from None
    except RecursionError:
        raise TemplateError(f"{what}: template does not compile: it nests too deep") from None


class Message:
    """A compiled template."""

    def __init__(self, source: str, tz: str):
        env = environment(tz)
        names = _names(env, source, "message")
        unknown_globals = sorted(names & {"range", "lipsum", "cycler", "joiner"})
        if unknown_globals:
            raise TemplateError(f"message: {unknown_globals[0]}() is not available in messages")
        unknown = sorted(names - FIELDS)
        if unknown:
            raise TemplateError(f"message: unknown field {', '.join(map(repr, unknown))}; "
                                f"fields are {', '.join(sorted(FIELDS))}")
        self.source = source
        try:
            self.template = env.from_string(source)
        except (TemplateSyntaxError, SecurityError, ValueError, OverflowError, RecursionError) as exc:
            raise TemplateError(f"message: template does not compile: {exc}") from None
        try:  # a trial run on typical values catches what the sandbox refuses before an alert needs it
            self.template.render({**dict.fromkeys(FIELDS), **_SAMPLE})
        except SecurityError as exc:
            raise TemplateError(f"message: {exc}") from None
        except Exception:  # noqa: S110 - other failures depend on the values; the alert then keeps its default text
            pass

    def render(self, fields: dict[str, Any]) -> str:
        values = dict.fromkeys(FIELDS)
        values.update(fields)
        text = self.template.render(values).strip()
        return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH - 1] + "…"


#: Names a digest's ``subject:`` template may use.
SUBJECT_FIELDS = frozenset({"count", "name", "date"})


def check_subject(template: str) -> None:
    """A subject template compiles and names only count, name and date. Raises TemplateError."""
    unknown = sorted(_names(environment("UTC"), template, "subject") - SUBJECT_FIELDS)
    if unknown:
        raise TemplateError(f"subject: unknown field {unknown[0]!r}; fields are count, name, date")
