"""``Notifiers``: the notifier (``alerts.notify.base.Notifier``) for each kind of target."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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

log = logging.getLogger(__name__)


class Notifiers:
    """The notifier for each target kind, for one delivery process: Slack, email, webhooks, digests and
    the console (which also stands in for Slack and email when they are not configured)."""

    def __init__(self, settings: Settings, store: DeliveryStore, webhooks: Callable[[], Mapping[str, WebhookConfig]]):
        self.settings = settings
        self.store = store
        self.webhooks = webhooks

    def for_target(self, t: Target) -> Notifier:
        if self.on_console(t) is not None:
            return ConsoleNotifier(self.on_console, self.settings.timezone)
        factory = FACTORIES.get(t.kind)
        if factory is None:
            raise PermanentDeliveryError(str(t), "no notifier for this target")
        return factory.make(self, t)

    def on_console(self, t: Target) -> str | None:
        """How a target printed on the console is shown there ("" for ``console``, a note for Slack or email
        standing in there because they are not configured); None for a target that is not printed."""
        factory = FACTORIES.get(t.kind)
        return factory.stand_in(self.settings) if factory is not None else None

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


@dataclass(frozen=True)
class Factory:
    """How a delivery process makes the notifier of one kind of target (``alerts.targets.CHANNELS``), and
    whether the console stands in for it: ``stand_in`` gives the note shown there when it does (``""`` for
    the console itself), None when the channel is configured."""

    make: Callable[[Notifiers, Target], Notifier]
    stand_in: Callable[[Settings], str | None] = lambda _s: None


def _webhook(n: Notifiers, t: Target) -> Notifier:
    config = n.webhooks().get(t.value)
    if config is None:
        raise PermanentDeliveryError(str(t), "no such webhook in the rule files (removed since the alert?)")
    return WebhookNotifier(config)


#: The notifier of each channel kind; a test checks there is one for every kind in ``alerts.targets.CHANNELS``.
FACTORIES: dict[str, Factory] = {
    "slack": Factory(lambda n, _t: SlackNotifier.for_settings(n.settings, n.store),
                     lambda s: "Slack not configured" if s.slack_bot_token is None else None),
    "console": Factory(lambda n, _t: ConsoleNotifier(n.on_console, n.settings.timezone), lambda _s: ""),
    "digest": Factory(lambda n, _t: DigestNotifier(n.store)),
    "email": Factory(lambda n, _t: EmailNotifier(n.settings),
                     lambda s: "email not configured" if s.smtp_host is None else None),
    "webhook": Factory(_webhook),
}
