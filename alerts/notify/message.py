"""The words of a notification, shared by every channel. Event text is untrusted: each channel
escapes it for its own markup (``slack_escape``)."""

from __future__ import annotations

from alerts.model import Alert
from alerts.units import format_price

_CONDITION_WORDS = {
    "above": "above",
    "below": "below",
    "crosses_above": "crossed above",
    "crosses_below": "crossed below",
}


def slack_escape(text: str) -> str:
    """Slack's three control characters. Keeps ``<!channel>``, ``<@U123>`` and ``<url|label>`` inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(alert: Alert) -> str:
    """One line a trader can act on, plain text (not yet escaped for any markup)."""
    if alert.kind == "price":
        assert alert.price is not None and alert.threshold is not None
        line = (f"[{alert.rule_id}] {alert.product} {format_price(alert.price)} {alert.unit} on {alert.as_of}, "
                f"{_CONDITION_WORDS.get(alert.condition, alert.condition)} "
                f"{format_price(alert.threshold)} {alert.unit}")
        if alert.previous is not None:
            line += f"; previous {format_price(alert.previous)}"
        return line + f" (source: {alert.source})"
    line = f"[{alert.rule_id}] {alert.headline}"
    if alert.url:
        line += f" {alert.url}"
    return line + f" (source: {alert.source})"
