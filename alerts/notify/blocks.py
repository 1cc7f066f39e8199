"""Slack Block Kit for an alert: a header with the product or headline, the message, fields for
price, change, quote date, source and rule, a link to the source, an emoji by severity. Every piece
of event text is escaped, so a headline cannot mention @channel, a user or a group, or forge a link.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from alerts.model import Alert
from alerts.notify.summary import summary
from alerts.units import format_price

_NO_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})  # single angle quotation marks
SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
#: Slack's limits (characters): header text, section text, field text.
HEADER_MAX, SECTION_MAX, FIELD_MAX = 150, 3000, 2000


def slack_escape(text: str) -> str:
    """Slack's three control characters. Keeps ``<!channel>``, ``<@U123>`` and ``<url|label>`` inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_url(url: str | None) -> str | None:
    """An http(s) link fit for ``<url|label>``, or None: no other scheme, no characters that end the link."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in "<>|\n\r\t "):
        return None
    return url.strip().replace("&", "&amp;")


def blocks(alert: Alert) -> list[dict[str, Any]]:
    emoji = SEVERITY_EMOJI.get(alert.severity, "")
    title = alert.product if alert.kind in ("price", "spread", "stale") and alert.product else (
        alert.headline or alert.rule_id)
    if alert.status == "resolved":
        title = f"Resolved: {title}"
    out: list[dict[str, Any]] = [
        # plain_text is not parsed for mentions or links; the angle brackets go anyway, so no markup
        # from a headline survives anywhere in the message (&lt; would show literally in plain text)
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": _cut(
            f"{emoji} {title}".strip().translate(_NO_ANGLES), HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn", "verbatim": True,
                                     "text": _cut(slack_escape(alert.text or title), SECTION_MAX)}},
    ]
    fields = []
    if alert.price is not None and alert.unit:
        fields.append(("Price", f"{format_price(alert.price)} {alert.unit}"))
    if alert.change_pct is not None:
        fields.append(("Change", f"{alert.change_pct:+.1f}% over {alert.window}"))
    if alert.as_of:
        fields.append(("Quote date", alert.as_of))
    fields.append(("Source", alert.source))
    fields.append(("Rule", f"{alert.rule_id} ({alert.severity})"))
    out.append({"type": "section", "fields": [
        {"type": "mrkdwn", "verbatim": True, "text": _cut(f"*{name}*\n{slack_escape(value)}", FIELD_MAX)}
        for name, value in fields]})
    link = safe_url(alert.url)
    if link:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Read the source>"}]})
    return out


def fallback_text(alert: Alert) -> str:
    """The ``text`` every client shows (notifications, old clients): the rule id and the message."""
    return slack_escape(summary(alert))
