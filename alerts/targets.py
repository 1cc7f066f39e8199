"""Notification targets as written in a rule's ``notify:`` list.

``slack:#channel`` or ``slack:C0123ABCD`` (a channel id), ``console``, ``digest:NAME``,
``email:ADDRESS``, ``webhook:NAME``. Any of them may end in ``?quiet=22:00-07:00``: quiet hours (in
ALERTS_TIMEZONE), during which non-critical alerts are held and delivered when the period ends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

_SLACK_NAME = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")
_SLACK_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
#: A direct message to a Slack user, by user id: ``slack:@U0123ABCD``.
_SLACK_USER = re.compile(r"^@[UW][A-Z0-9]{6,}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_NAME = re.compile(r"^[a-z0-9_-]+$")
#: The label of whatever is not a known channel, in metrics and as a queue.
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Channel:
    """A kind of target: how its value is checked, which rq delivery queue carries it (a queue of its own, so a
    hung channel holds up no other, or the shared ``other`` one) and its ``channel`` label in the metrics (its
    kind). Its notifier is registered under the same kind in ``alerts.notify.notifiers.FACTORIES``; a test
    checks that every channel has one. A new channel is one entry here and one notifier there."""

    kind: str
    syntax: str  # how it is written, for messages: ``slack:#channel``
    check: Callable[[str], str | None]  # the value's problem (a message), or None when it is good
    takes_value: bool = True
    queue: str = OTHER

    def problem(self, text: str, value: str) -> str | None:
        if not self.takes_value:
            return f"{self.kind} takes no argument" if value else None
        why = self.check(value)
        return f"{text!r}: {why}" if why else None


def _slack(value: str) -> str | None:
    if _SLACK_NAME.match(value) or _SLACK_ID.match(value) or _SLACK_USER.match(value):
        return None
    return ("a Slack channel is #lower-case-name or a channel id such as C0123ABCD, a direct message @ and a user "
            "id such as @U0123ABCD")


def _email(value: str) -> str | None:
    return None if _EMAIL.match(value) else "not an email address"


def _named(kind: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if _NAME.match(value) else f"a {kind} name is lower-case letters, digits, - and _"
    return check


#: Every kind of target, in the order messages list them.
CHANNELS: dict[str, Channel] = {c.kind: c for c in (
    Channel("slack", "slack:#channel", _slack, queue="slack"),
    Channel("console", "console", lambda _v: None, takes_value=False),
    Channel("digest", "digest:NAME", _named("digest")),
    Channel("email", "email:ADDRESS", _email, queue="email"),
    Channel("webhook", "webhook:NAME", _named("webhook"), queue="webhook"),
)}
KINDS = tuple(CHANNELS)
#: The delivery queues, one per kind of channel that has its own, then the shared one.
QUEUE_KINDS = (*dict.fromkeys(c.queue for c in CHANNELS.values() if c.queue != OTHER), OTHER)


def channel_of(target: str) -> str:
    """The ``channel`` label of a target (its kind, or ``other``) for the metrics."""
    kind = target.partition(":")[0]
    return kind if kind in CHANNELS else OTHER


def queue_of(target: str) -> str:
    """The delivery queue kind of a target (``QUEUE_KINDS``)."""
    channel = CHANNELS.get(target.partition(":")[0])
    return channel.queue if channel is not None else OTHER


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
    kind, sep, value = s.partition(":")
    channel = CHANNELS.get(kind)
    if channel is None or (channel.takes_value and not sep):
        *first, last = (c.syntax for c in CHANNELS.values())
        written = f"{', '.join(first)} or {last}"
        raise ValueError(f"unknown target {text!r}; use {written}")
    problem = channel.problem(text, value)
    if problem:
        raise ValueError(problem)
    return Target(kind, value, quiet)
