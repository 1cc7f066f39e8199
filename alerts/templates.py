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
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alerts.units import format_price

#: Names a template may use.
FIELDS = frozenset({
    "rule", "description", "severity", "owner", "labels", "status", "condition",
    "product", "unit", "price", "previous", "previous_as_of", "threshold", "change", "change_pct", "window",
    "as_of", "source", "headline", "url", "other", "spread",
})


class TemplateError(ValueError):
    pass


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}%"


def _thousands(value: float | None) -> str:
    return "n/a" if value is None else format_price(float(value))


@lru_cache(maxsize=8)
def environment(tz: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    zone = ZoneInfo(tz)
    env.filters["thousands"] = _thousands
    env.filters["pct"] = _pct
    env.filters["day"] = lambda ts: datetime.fromtimestamp(float(ts), zone).date().isoformat()
    return env


class Message:
    """A compiled template."""

    def __init__(self, source: str, tz: str):
        env = environment(tz)
        try:
            ast = env.parse(source)
        except TemplateSyntaxError as exc:
            raise TemplateError(f"message: template does not compile: {exc.message} (template line {exc.lineno})") \
                from None
        unknown = sorted(meta.find_undeclared_variables(ast) - FIELDS)
        if unknown:
            raise TemplateError(f"message: unknown field {', '.join(map(repr, unknown))}; "
                                f"fields are {', '.join(sorted(FIELDS))}")
        self.source = source
        self.template = env.from_string(source)

    def render(self, fields: dict[str, Any]) -> str:
        values = dict.fromkeys(FIELDS)
        values.update(fields)
        return self.template.render(values).strip()
