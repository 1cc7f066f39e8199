"""The ``console`` target: one line on the standard output of the process that delivers it.

The console also stands in for Slack and email when they are not configured. An alert to
``slack:#desk`` and ``console`` is then printed once, naming both targets: the delivery to the first
target printed on the console prints the line, the others (their own delivery jobs) print nothing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from alerts.durations import format_time
from alerts.model import Alert
from alerts.notify.base import Unpaced
from alerts.notify.summary import summary
from alerts.targets import Target, parse_target

_lock = threading.Lock()


def console_only(t: Target) -> str | None:
    """The console's own target: printed, no note."""
    return "" if t.kind == "console" else None


class ConsoleNotifier(Unpaced):
    """``stands_in``: for a target, None when it is not printed on the console, else a note to show with it
    ("" for none, "Slack not configured")."""

    def __init__(self, stands_in: Callable[[Target], str | None] = console_only, timezone: str = "UTC"):
        self.stands_in = stands_in
        self.timezone = timezone  # ALERTS_TIMEZONE: the time each line starts with

    def printed_with(self, alert: Alert, target: Target) -> list[tuple[Target, str]]:
        """The alert's targets printed in one line with ``target`` (same quiet hours, in the rule's order);
        empty when another delivery of the alert prints that line."""
        group: list[tuple[Target, str]] = []
        for text in alert.targets:
            try:
                t = parse_target(text)
            except ValueError:
                continue
            note = self.stands_in(t)
            if note is not None and t.quiet == target.quiet and t not in (g for g, _ in group):
                group.append((t, note))
        if all(t != target for t, _ in group):  # not one of the alert's own targets (a hand-made delivery)
            return [(target, self.stands_in(target) or "")]
        return group if group[0][0] == target else []

    def send(self, alert: Alert, target: Target) -> None:
        """Print the alert on standard output, once for all its targets printed there."""
        group = self.printed_with(alert, target)
        if not group:
            return
        names = ", ".join(f"{t} ({note})" if note else str(t) for t, note in group)
        stamp = format_time(time.time(), self.timezone)  # README "Times"
        line = f"{stamp} ALERT {alert.severity.upper()} {summary(alert)} -> {names}"
        with _lock:
            print(line, file=sys.stdout, flush=True)
