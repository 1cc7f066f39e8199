"""The ``Notifier`` protocol: what a delivery (``workers.deliver``) asks of a channel, whatever it is.

- ``send(alert, target)``: deliver it, or raise ``RetryableDeliveryError`` / ``PermanentDeliveryError``;
- ``already_sent(alert, target, since)``: after an attempt that died between sending and recording,
  whether the message is there (Slack looks in the channel's history; channels that cannot be
  asked say False, and the message may go twice);
- ``pacing(target)``: the token bucket that paces sends to the target's channel, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from alerts.model import Alert
from alerts.targets import Target


@dataclass(frozen=True)
class Pacing:
    """A token bucket (``alerts.store.pacing``): ``rate`` messages per second on average, ``burst`` at once."""

    channel: str  # one bucket per channel, whatever the target's options
    rate: float
    burst: int


class Notifier(Protocol):
    def send(self, alert: Alert, target: Target) -> None:
        """Deliver the alert to the target. Raises Retryable/PermanentDeliveryError."""

    def already_sent(self, alert: Alert, target: Target, since: float) -> bool:
        """Whether the target already holds this alert, sent since ``since`` (epoch seconds)."""

    def pacing(self, target: Target) -> Pacing | None:
        """How sends to this target are paced; None: not paced."""


class Unpaced:
    """Defaults for channels that cannot be asked what they hold and need no pacing."""

    def already_sent(self, alert: Alert, target: Target, since: float) -> bool:
        return False

    def pacing(self, target: Target) -> Pacing | None:
        return None
