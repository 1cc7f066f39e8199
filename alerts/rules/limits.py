"""The words of the rule models' validation errors that pydantic's own would bury: limits, union members,
mapping keys.

The models bound everything a trader writes (``alerts.rules.models``, ``max_length`` on every string,
list and mapping). Pydantic says ``String should have at most 500 characters``, repeats an error once per
member of a union (``regex: 'x...'`` is not a list either) and puts union member tags (``constrained-str``)
and ``[key]`` in its locations. Here a limit reads ``description: at most 500 characters (got 5,000,000)``,
a union gives the error of the member the value was meant for, and a mapping key is named, shortened.
``alerts.rules.compile`` words every validation error through ``describe``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic_core import ErrorDetails

from alerts.rules.models import HEADER_NAME_PATTERN, HEADER_VALUE_PATTERN, ID_MAX, LABEL_KEY_PATTERN

#: Longest text of what was written that a message repeats (a key, a value): a message stays a line.
SHOWN_MAX = 60
#: Union member tags pydantic puts in error locations: ``str``, ``constrained-str``, ``list[str]``.
_TAG = re.compile(r"^(?:int|float|str|bool|date|constrained-str|(?:list|dict)\[.*\]|function-\w+\[.*\])$")
#: Errors that say only "not of this type": noise beside another union member's error for the same value.
_TYPE_ERRORS = frozenset({"int_type", "int_parsing", "float_type", "float_parsing", "string_type", "list_type",
                          "dict_type", "bool_type", "date_type", "model_type", "none_required"})
#: What the patterns of mapping keys and values mean, for their errors.
_PATTERNS = {
    LABEL_KEY_PATTERN: "letters, digits, _, . and -, starting with a letter or _",
    HEADER_NAME_PATTERN: "a header name: letters, digits and !#$%&'*+.^_`|~-",
    HEADER_VALUE_PATTERN: "no line breaks or control characters",
}


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``repr(value)``, of a long text only its start: ``'xxxx...' (5,000,000 characters)``."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    return repr(value)


def shown_id(item: Any) -> str | None:
    """The ``id`` of a rule as written, for its problems; a too long one cut (with ``...``: no real id)."""
    rid = item.get("id") if isinstance(item, dict) else None
    if not isinstance(rid, str):
        return None
    return rid if len(rid) <= ID_MAX else rid[:ID_MAX] + "..."


def strip_tags(loc: Iterable[Any]) -> tuple[Any, ...]:
    """An error location without pydantic's union member tags."""
    return tuple(p for p in loc if not (isinstance(p, str) and _TAG.match(p)))


def without_union_noise(errors: Sequence[ErrorDetails]) -> list[ErrorDetails]:
    """``errors`` less those that only say a value is not of one union member's type when another
    member's error is about that value (or what is in it): ``regex: 'x' * 5000`` is too long, and that
    it is not a list as well is noise."""
    locs = [strip_tags(e["loc"]) for e in errors]
    meant = [loc for e, loc in zip(errors, locs, strict=True) if e["type"] not in _TYPE_ERRORS]
    return [e for e, loc in zip(errors, locs, strict=True)
            if e["type"] not in _TYPE_ERRORS or not any(m[:len(loc)] == loc for m in meant)]


def _limit(err: ErrorDetails) -> str | None:
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    value = err.get("input")
    if err["type"] == "string_too_long" and isinstance(value, str):
        return f"at most {ctx.get('max_length', 0):,} characters (got {len(value):,})"
    if err["type"] == "too_long" and isinstance(value, list | dict | tuple):
        what = "entries" if isinstance(value, dict) else "items"
        return f"at most {ctx.get('max_length', 0):,} {what} (got {len(value):,})"
    if err["type"] == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
        return _PATTERNS[ctx["pattern"]]  # the value not repeated: a header's may be a token
    return None


def _part(p: Any) -> str:
    return p[:SHOWN_MAX] + "..." if isinstance(p, str) and len(p) > SHOWN_MAX else str(p)


def describe(loc: Sequence[Any], err: ErrorDetails) -> str:
    """The message of a validation error at ``loc`` (without tags), other than an unknown or missing key:
    ``where: what``."""
    text = _limit(err) or str(err["msg"]).removeprefix("Value error, ")
    if len(loc) >= 2 and loc[-1] == "[key]":  # a mapping's key: ("labels", KEY, "[key]")
        loc, text = loc[:-2], f"key {shown(loc[-2])}: {text}"
    where = ".".join(map(_part, loc))
    return f"{where}: {text}" if where else text
