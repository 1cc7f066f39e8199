"""Notifiers: one module per channel behind the ``Notifier`` protocol, digests and their charts.
May import alerts.store, alerts.rules and the core; never workers or rq.

``Notifiers(settings, client, webhooks).for_target(target)`` (``alerts.notify.notifiers``) picks the
channel. Each notifier raises ``RetryableDeliveryError`` or ``PermanentDeliveryError``
(``alerts.errors``) when it cannot deliver.
"""
