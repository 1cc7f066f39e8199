"""Slack Block Kit for an alert: a header with the product or headline, the message, fields for
price, change, quote date, source and rule, a link to the source, an emoji by severity, and buttons
(Acknowledge, Snooze 1h, Snooze 1d, Silence until resolved: ``workers.web.slack_actions`` handles the clicks).
Every piece of event text is escaped, so a headline cannot mention @channel, a user or a group, or forge a link.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from alerts.model import ALERT_KINDS, Alert
from alerts.notify.summary import summary
from alerts.units import format_price

_NO_ANGLES = str.maketrans({"<": "\u2039", ">": "\u203a"})  # single angle quotation marks
SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}
#: Slack's limits (characters): header text, section text, field text, a button's value.
HEADER_MAX, SECTION_MAX, FIELD_MAX, VALUE_MAX = 150, 3000, 2000, 2000
#: The block holding the buttons, and each button's action id -> its label.
ACTIONS_BLOCK = "alerts_actions"
ACKNOWLEDGE, SNOOZE_1H, SNOOZE_1D, SILENCE_RESOLVED = ("alerts_ack", "alerts_snooze_1h", "alerts_snooze_1d",
                                                       "alerts_silence_resolved")
BUTTONS = {ACKNOWLEDGE: "Acknowledge", SNOOZE_1H: "Snooze 1h", SNOOZE_1D: "Snooze 1d",
           SILENCE_RESOLVED: "Silence until resolved"}


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
    traits = ALERT_KINDS.get(alert.kind)
    title = alert.product if traits is not None and traits.about_a_product and alert.product else (
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
    out.append(actions(alert))
    return out


def button_value(alert: Alert) -> str:
    """What a button carries back: the alert id, rule id and product, as compact JSON within Slack's limit
    (a product name too long is left out: the alert id still finds the alert)."""
    value = {"a": alert.id, "r": alert.rule_id, "p": alert.product}
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) > VALUE_MAX:
        text = json.dumps({"a": alert.id[:200], "r": alert.rule_id[:200], "p": None}, separators=(",", ":"))
    return text


def actions(alert: Alert) -> dict[str, Any]:
    """The buttons: Acknowledge, Snooze 1h, Snooze 1d, and Silence until resolved on a firing price or spread
    alert (a rule that re-arms)."""
    wanted = [ACKNOWLEDGE, SNOOZE_1H, SNOOZE_1D]
    traits = ALERT_KINDS.get(alert.kind)
    if traits is not None and traits.rearms and alert.status == "firing":
        wanted.append(SILENCE_RESOLVED)
    value = button_value(alert)
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": [
        {"type": "button", "action_id": a, "text": {"type": "plain_text", "text": BUTTONS[a]}, "value": value,
         **({"style": "primary"} if a == ACKNOWLEDGE else {})} for a in wanted]}


def fallback_text(alert: Alert) -> str:
    """The ``text`` every client shows (notifications, old clients): the rule id and the message."""
    return slack_escape(summary(alert))
