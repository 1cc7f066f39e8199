"""``Notifiers``: the notifier (``alerts.notify.base.Notifier``) for each kind of target."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from alerts.errors import DeliveryError, PermanentDeliveryError
from alerts.notify.base import Notifier
from alerts.notify.console import ConsoleNotifier
from alerts.notify.digest import DigestNotifier
from alerts.notify.email import EmailNotifier
from alerts.notify.slack import SlackNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.rules.compiled import WebhookConfig
from alerts.settings import Settings
from alerts.store.delivery import DeliveryStore
from alerts.targets import Target

log = logging.getLogger("alerts.notify")


class Notifiers:
    """The notifier for each target kind, for one delivery process: Slack, email, webhooks, digests and
    the console (which also stands in for Slack and email when they are not configured)."""

    def __init__(self, settings: Settings, store: DeliveryStore, webhooks: Callable[[], Mapping[str, WebhookConfig]]):
        self.settings = settings
        self.store = store
        self.webhooks = webhooks

    def for_target(self, t: Target) -> Notifier:
        s = self.settings
        if self.on_console(t) is not None:
            return ConsoleNotifier(self.on_console)
        if t.kind == "slack":
            return SlackNotifier.for_settings(s, self.store)
        if t.kind == "email":
            return EmailNotifier(s)
        if t.kind == "webhook":
            config = self.webhooks().get(t.value)
            if config is None:
                raise PermanentDeliveryError(str(t), "no such webhook in the rule files (removed since the alert?)")
            return WebhookNotifier(config)
        if t.kind == "digest":
            return DigestNotifier(self.store)
        raise PermanentDeliveryError(str(t), "no notifier for this target")

    def on_console(self, t: Target) -> str | None:
        """How a target printed on the console is shown there ("" for ``console``, a note for Slack or email
        standing in there because they are not configured); None for a target that is not printed."""
        if t.kind == "console":
            return ""
        if t.kind == "slack" and self.settings.slack_bot_token is None:
            return "Slack not configured"
        if t.kind == "email" and self.settings.smtp_host is None:
            return "email not configured"
        return None

    def tell_ops(self, text: str) -> None:
        """A plain notice to ALERTS_OPS_SLACK_CHANNEL, when it is set and Slack is configured; a failure to
        tell is logged, never raised."""
        s = self.settings
        if not s.ops_slack_channel or s.slack_bot_token is None:
            return
        try:
            SlackNotifier.for_settings(s, self.store).post_text(s.ops_slack_channel, text)
        except DeliveryError as exc:
            log.error("could not tell %s: %s", s.ops_slack_channel, exc.reason)
