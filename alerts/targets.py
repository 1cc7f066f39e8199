"""Notification targets as written in a rule's ``notify:`` list.

``slack:#channel`` or ``slack:C0123ABCD`` (a channel id), ``console``, ``digest:NAME``,
``email:ADDRESS``, ``webhook:NAME``. Any of them may end in ``?quiet=22:00-07:00``: quiet hours (in
ALERTS_TIMEZONE), during which non-critical alerts are held and delivered when the period ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

_SLACK_NAME = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_SLACK_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAME = re.compile(r"^[a-z0-9_-]+$")
KINDS = ("slack", "console", "digest", "email", "webhook")


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    value: str = ""
    quiet: tuple[time, time] | None = None  # local start and end of quiet hours

    def __str__(self) -> str:
        text = self.kind if not self.value else f"{self.kind}:{self.value}"
        if self.quiet:
            text += f"?quiet={self.quiet[0]:%H:%M}-{self.quiet[1]:%H:%M}"
        return text

    def quiet_until(self, now: datetime) -> datetime | None:
        """When the quiet period ``now`` (an aware local time) falls in ends, or None outside one."""
        if self.quiet is None:
            return None
        start, end = self.quiet
        t = now.time()
        inside = start <= t < end if start < end else (t >= start or t < end)
        if not inside:
            return None
        until = now.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        return until if until > now else until + timedelta(days=1)


_QUIET = re.compile(r"^quiet=(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _quiet(text: str, option: str) -> tuple[time, time]:
    m = _QUIET.match(option)
    if not m:
        raise ValueError(f"{text!r}: the only option is quiet=HH:MM-HH:MM, such as ?quiet=22:00-07:00")
    try:
        start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    except ValueError:
        raise ValueError(f"{text!r}: quiet hours need times of day such as 22:00-07:00") from None
    if start == end:
        raise ValueError(f"{text!r}: quiet hours start and end at the same time")
    return start, end


def parse_target(text: str) -> Target:
    """Raises ValueError with a message naming what is wrong."""
    s, _, option = text.strip().partition("?")
    quiet = _quiet(text, option) if option else None
    if s == "console":
        return Target("console", quiet=quiet)
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
    return Target(kind, value, quiet)
