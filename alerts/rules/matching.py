"""News phrase matching, predictable by design.

A phrase matches case-insensitively at word boundaries; any run of white space in the text matches
a space in the phrase; a trailing ``*`` on a word matches any ending (``export licen*`` matches
"export licence", "export licenses", "export licensing"). Nothing else is special: dots, brackets
and other characters match themselves. Chinese and Japanese text has no spaces between words, so
no boundary is required next to a CJK character (``氧化镝`` matches inside ``氧化镝价格``).

``regex:`` patterns are RE2 (Google's linear-time engine): no pattern can backtrack
catastrophically and hang a worker, and constructs that would need backtracking (back-references,
look-around) are refused when the rules are checked. They also match case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import re2  # type: ignore[import-untyped]

from alerts.errors import RuleError


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF or 0x20000 <= o <= 0x2FA1F


def phrase_pattern(phrase: str) -> str:
    """The regular expression source for one phrase."""
    words = phrase.split()
    parts = []
    for w in words:
        if w.endswith("*"):
            parts.append(re.escape(w.rstrip("*")) + r"\w*")
        else:
            parts.append(re.escape(w))
    body = r"\s+".join(parts)
    core = phrase.strip().rstrip("*")
    start = "" if _is_cjk(core[0]) or not (core[0].isalnum() or core[0] == "_") else r"(?<!\w)"
    open_end = phrase.strip().endswith("*") or _is_cjk(core[-1]) or not (core[-1].isalnum() or core[-1] == "_")
    end = "" if open_end else r"(?!\w)"
    return start + body + end


def compile_any(phrases: Sequence[str]) -> re.Pattern[str] | None:
    """One pattern that matches when any phrase appears; None for no phrases."""
    if not phrases:
        return None
    return re.compile("|".join(f"(?:{phrase_pattern(p)})" for p in phrases), re.IGNORECASE)


def compile_each(phrases: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(phrase_pattern(p), re.IGNORECASE) for p in phrases)


class RegexError(RuleError, ValueError):
    """A news rule's regex that RE2 refuses or that exceeds the limits."""


def _re2_options() -> Any:
    opts = re2.Options()
    opts.log_errors = False  # errors come back as exceptions, worded for the trader
    opts.case_sensitive = False
    return opts


def compile_regex(pattern: str) -> Any:
    """An RE2 pattern, case-insensitive. Raises RegexError naming what RE2 refused."""
    try:
        return re2.compile(pattern, _re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise RegexError(f"regex {pattern!r} is not accepted: {detail} (RE2 syntax: no back-references "
                         "or look-around)") from None
