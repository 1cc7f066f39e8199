"""Notifiers: one module per channel behind the ``Notifier`` protocol.

``notifier_for(target, settings)`` picks the channel. Each notifier raises
``RetryableDeliveryError`` or ``PermanentDeliveryError`` (``alerts.errors``) when it cannot deliver.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from alerts.errors import PermanentDeliveryError
from alerts.model import Alert
from alerts.rules.compiled import WebhookConfig
from alerts.settings import Settings
from alerts.targets import Target, parse_target

log = logging.getLogger("alerts.notify")


class Notifier(Protocol):
    def send(self, alert: Alert, target: Target) -> str | None:
        """Deliver; returns where it went when the channel says (a Slack channel id), else None."""


def notifier_for(target: str | Target, settings: Settings,
                 webhooks: Mapping[str, WebhookConfig] | None = None) -> Notifier:
    from alerts.notify.console import ConsoleNotifier
    from alerts.notify.slack import SlackNotifier
    from alerts.notify.webhook import WebhookNotifier

    t = parse_target(target) if isinstance(target, str) else target
    if t.kind == "webhook":
        config = (webhooks or {}).get(t.value)
        if config is None:
            raise PermanentDeliveryError(str(t), "no such webhook in the rule files (removed since the alert?)")
        return WebhookNotifier(config)
    if t.kind == "console":
        return ConsoleNotifier()
    if t.kind == "slack":
        if settings.slack_bot_token is None:
            return ConsoleNotifier(prefix=f"(Slack not configured) {t} ")
        return SlackNotifier.for_settings(settings)
    if t.kind == "email":
        from alerts.notify.email import EmailNotifier

        if settings.smtp_host is None:
            return ConsoleNotifier(prefix=f"(email not configured) {t} ")
        return EmailNotifier(settings)
    raise PermanentDeliveryError(str(t), "no notifier for this target")
