"""The words of a notification, shared by every channel, as plain text. Event text is untrusted: each
channel escapes it for its own markup (Slack's in ``alerts.notify.blocks``, HTML in email and digests)."""

from __future__ import annotations

from alerts.model import Alert


def summary(alert: Alert) -> str:
    """One line a trader can act on, plain text (not yet escaped for any markup): the rule id, the
    alert's text (its message template, or the default that explains what fired), the source."""
    status = "RESOLVED " if alert.status == "resolved" else ""
    line = f"[{alert.rule_id}] {status}{alert.text or alert.headline or ''}"
    if alert.kind == "news" and alert.url and alert.url not in line:
        line += f" {alert.url}"
    return line + f" (source: {alert.source})"
