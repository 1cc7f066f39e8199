"""A direct message to a Slack user (``slack:@U0123ABCD``, issue 18's receivers): posted to the user id, which Slack
answers with the direct-message channel's id; delivered once, and remembered so a redelivery posts nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.delivery import DeliveryStore
from alerts.store.keys import Keys
from alerts.targets import parse_target
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, write_rules

RULES = """
rules:
  - id: li-prnd
    price:
      product: Pr-Nd oxide
      above: 450,000 CNY/t
    notify: ["slack:@U0LI12345", "slack:#desk"]
"""


def test_a_direct_message_goes_to_the_user_and_is_sent_once(client: redis.Redis, settings: Settings,
                                                              slack: SlackServer, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    p = Pipeline(client, settings.model_copy(update={"slack_bot_token": SecretStr(slack.token),
                                                     "slack_api_url": slack.url}))
    p.run(quote(444_000, "2025-03-10"), quote(452_000, "2025-03-11"))
    assert sorted(m["channel"] for m in slack.messages) == ["#desk", "U0LI12345"]
    dm = next(m for m in slack.messages if m["channel"] == "U0LI12345")
    assert "452,000 CNY/t" in dm["text"]
    store = DeliveryStore(client, Keys())
    assert store.slack_channel_id("@U0LI12345") == SlackServer.channel_id("U0LI12345")  # the DM channel, D...
    p.publish(quote(453_000, "2025-03-11", id="dup-of-nothing"))  # a correction: a follow-up in the DM's thread
    p.evaluate()
    p.dispatch()
    p.deliver()
    replies = [m for m in slack.messages if m["channel"] == SlackServer.channel_id("U0LI12345")]
    assert len(replies) == 1 and replies[0].get("thread_ts") == dm["ts"]


@pytest.mark.parametrize("text", ["slack:@u0li12345", "slack:@C0123ABCD", "slack:@U12", "slack:@"])
def test_a_direct_message_needs_a_user_id(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a direct message @ and a user id such as @U0123ABCD"):
        parse_target(text)
    write_rules(tmp_path, f"rules:\n  - id: r\n    news: {{any: [x]}}\n    notify: ['{text}']\n")
    [problem] = load_rules(tmp_path).problems
    assert "a direct message @ and a user id" in problem.message and problem.line == 4
