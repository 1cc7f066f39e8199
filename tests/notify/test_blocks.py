"""Slack Block Kit: what a trader sees, and hostile event text made harmless."""

from __future__ import annotations

import json

from msgspec.structs import replace

from alerts.model import Alert
from alerts.notify.blocks import blocks, button_value, fallback_text, safe_url


def news_alert(headline: str, url: str | None = None, severity: str = "critical") -> Alert:
    return Alert(id="a1", rule_id="licences", kind="news", condition="news", severity=severity,
                 targets=("slack:#re-news",), description="", event_id="e1", source="smm", at=0.0,
                 text=headline, headline=headline, url=url)


def test_price_alert_blocks() -> None:
    a = Alert(id="a2", rule_id="prnd-450k", kind="price", condition="above", severity="warning",
              targets=("slack:#desk",), description="", event_id="e2", source="smm", at=0.0,
              text="Pr-Nd oxide 452,000 CNY/t on 2025-02-25, above 450,000 CNY/t", product="Pr-Nd oxide",
              unit="CNY/t", price=452_000, as_of="2025-02-25", change_pct=6.99, window="30d")
    b = blocks(a)
    assert b[0] == {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": ":warning: Pr-Nd oxide"}}
    fields = [f["text"] for f in b[2]["fields"]]
    assert fields == ["*Price*\n452,000 CNY/t", "*Change*\n+7.0% over 30d", "*Quote date*\n2025-02-25",
                      "*Source*\nsmm", "*Rule*\nprnd-450k (warning)"]
    text = fallback_text(a)
    for part in ("prnd-450k", "Pr-Nd oxide", "452,000 CNY/t", "2025-02-25"):
        assert part in text


def test_hostile_headline_cannot_mention_or_forge_links() -> None:
    hostile = "<!channel> <@U123> <!subteam^S1> & <https://evil.test|Click here> export licences"
    a = news_alert(hostile, url="https://news.test/a?b=1&c=2")
    dumped = json.dumps(blocks(a))
    for raw in ("<!channel>", "<@U123>", "<!subteam", "<https://evil.test"):
        assert raw not in dumped and raw not in fallback_text(a)
    assert "&lt;!channel&gt; &lt;@U123&gt;" in blocks(a)[1]["text"]["text"]
    assert blocks(a)[0]["text"]["type"] == "plain_text"  # the header is never parsed for mentions
    assert blocks(a)[-2]["elements"][0]["text"] == "<https://news.test/a?b=1&amp;c=2|Read the source>"
    assert blocks(a)[0]["text"]["text"].startswith(":rotating_light: ")


def test_only_plain_web_links_are_linked() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("https://x.test/a|b") is None
    assert safe_url("https://x.test/a>b") is None
    assert safe_url("ftp://x.test/") is None
    assert safe_url("https://x.test/ok") == "https://x.test/ok"
    assert blocks(news_alert("h", url="javascript:alert(1)"))[-2]["type"] != "context"


def test_every_alert_has_buttons_and_price_rules_can_be_silenced_until_resolved() -> None:
    a = Alert(id="a3", rule_id="prnd-450k", kind="price", condition="above", severity="warning",
              targets=("slack:#desk",), description="", event_id="e3", source="smm", at=0.0, text="t",
              product="Pr-Nd oxide", unit="CNY/t", price=452_000)
    last = blocks(a)[-1]
    assert last["type"] == "actions" and last["block_id"] == "alerts_actions"
    assert [e["text"]["text"] for e in last["elements"]] == ["Acknowledge", "Snooze 1h", "Snooze 1d",
                                                             "Silence until resolved"]
    for e in last["elements"]:
        assert json.loads(e["value"]) == {"a": "a3", "r": "prnd-450k", "p": "Pr-Nd oxide"}
    news = blocks(news_alert("export licences"))[-1]
    assert [e["action_id"] for e in news["elements"]] == ["alerts_ack", "alerts_snooze_1h", "alerts_snooze_1d"]
    huge = replace(a, product="x" * 3000)
    assert len(button_value(huge)) <= 2000 and json.loads(button_value(huge))["a"] == "a3"
