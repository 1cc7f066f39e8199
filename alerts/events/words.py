"""How the reasons for refusing an event put a sender's values into words: a value clipped to a readable length,
what kind of JSON value it is, the closest name to a misspelt one, numbers and day counts."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from alerts.events.limits import MAX_PRODUCT


def clip(value: object, limit: int = 40) -> str:
    """The repr of a value, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 5] + "...'"


def kind_of(value: object) -> str:
    """What a decoded JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = repr(value)
        return f"the number {text if len(text) <= 40 else text[:35] + '...'}"
    if isinstance(value, str):
        return f"the text {clip(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (ignoring case), or ``""``."""
    folded = {c.casefold(): c for c in candidates}
    close = difflib.get_close_matches(word.casefold()[:MAX_PRODUCT], list(folded), n=1, cutoff=0.6)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def num(x: float) -> str:
    """A quote's number as a trader reads it: ``444,000``."""
    return f"{x:,.12g}"


def days(n: float) -> str:
    return f"{n:g} day" if n == 1 else f"{n:g} days"
