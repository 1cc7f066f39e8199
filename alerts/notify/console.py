"""The ``console`` target: one line on the standard output of the process that delivers it."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

from alerts.model import Alert
from alerts.notify.base import Unpaced
from alerts.notify.summary import summary
from alerts.targets import Target

_lock = threading.Lock()


class ConsoleNotifier(Unpaced):
    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def send(self, alert: Alert, target: Target) -> None:
        """Print the alert on standard output."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        line = f"{stamp} ALERT {alert.severity.upper()} {self.prefix}{summary(alert)}"
        with _lock:
            print(line, file=sys.stdout, flush=True)
