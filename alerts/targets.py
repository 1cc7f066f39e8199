"""Notification targets as written in a rule's ``notify:`` list.

``slack:#channel`` or ``slack:C0123ABCD`` (a channel id), ``console``, ``digest:NAME``,
``email:ADDRESS``, ``webhook:NAME``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SLACK_NAME = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_SLACK_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAME = re.compile(r"^[a-z0-9_-]+$")
KINDS = ("slack", "console", "digest", "email", "webhook")


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    value: str = ""

    def __str__(self) -> str:
        return self.kind if not self.value else f"{self.kind}:{self.value}"


def parse_target(text: str) -> Target:
    """Raises ValueError with a message naming what is wrong."""
    s = text.strip()
    if s == "console":
        return Target("console")
    kind, sep, value = s.partition(":")
    if not sep or kind not in KINDS:
        raise ValueError(f"unknown target {text!r}; use slack:#channel, console, digest:NAME, email:ADDRESS "
                         "or webhook:NAME")
    if kind == "slack" and not (_SLACK_NAME.match(value) or _SLACK_ID.match(value)):
        raise ValueError(f"{text!r}: a Slack channel is #lower-case-name or a channel id such as C0123ABCD")
    if kind == "email" and not _EMAIL.match(value):
        raise ValueError(f"{text!r}: not an email address")
    if kind in ("digest", "webhook") and not _NAME.match(value):
        raise ValueError(f"{text!r}: a {kind} name is lower-case letters, digits, - and _")
    if kind == "console":
        raise ValueError("console takes no argument")
    return Target(kind, value)
