"""Whatever a Slack request carries (over HTTP or Socket Mode), the handlers neither raise nor answer with markup
taken from it: for any JSON payload, and for any shape of a click on an alert's button, ``interaction`` returns
quietly, posts only JSON objects to the response_url, and silences nothing unless the user may; for any command
text ``command`` answers ephemerally with everything escaped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore
from tests.servers import write_rules
from tests.test_slack_http import ALLOWED, RULES
from workers.web.slack_actions import SlackActions

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                  max_size=4), max_leaves=20)
ACTION_IDS = st.sampled_from(["alerts_ack", "alerts_snooze_1h", "alerts_snooze_1d", "alerts_silence_resolved",
                              "other"])
USERS = st.sampled_from([ALLOWED, "U0OTHER", "", "<!channel>"]) | st.text(max_size=20)
VALUES = (st.builds(lambda a, r, p: json.dumps({"a": a, "r": r, "p": p}), JSON, st.sampled_from(["oxides-high",
                                                                                                  "licences"]) | JSON,
                    st.sampled_from(["Pr-Nd oxide", "Nd oxide", "unobtainium"]) | JSON)
          | JSON.map(json.dumps) | st.text(max_size=40))
CLICKS = st.fixed_dictionaries({
    "type": st.just("block_actions"),
    "user": st.fixed_dictionaries({"id": USERS, "username": st.text(max_size=20)}) | JSON,
    "actions": st.lists(st.fixed_dictionaries({"action_id": ACTION_IDS, "block_id": st.just("alerts_actions"),
                                               "value": VALUES}) | JSON, max_size=3) | JSON,
    "response_url": st.just("https://hooks.slack.com/actions/T0/1/x") | JSON,
    "message": st.fixed_dictionaries({"text": st.text(max_size=20), "blocks": st.lists(JSON, max_size=3) | JSON})
    | JSON,
})


#: Clicks as Slack sends them, on buttons of real and made-up alerts, by allowed and other users.
WELL_FORMED = st.fixed_dictionaries({
    "type": st.just("block_actions"),
    "user": st.fixed_dictionaries({"id": st.sampled_from([ALLOWED, "U0OTHER"]), "username": st.text(max_size=20)}),
    "actions": st.lists(st.fixed_dictionaries({
        "action_id": ACTION_IDS, "block_id": st.just("alerts_actions"),
        "value": st.builds(lambda a, r, p: json.dumps({"a": a, "r": r, "p": p}), st.text(max_size=20),
                           st.sampled_from(["oxides-high", "licences", "nope"]),
                           st.sampled_from(["Pr-Nd oxide", "Nd oxide", "unobtainium", None]))}),
        min_size=1, max_size=2),
    "response_url": st.just("https://hooks.slack.com/actions/T0/1/x"),
    "message": st.fixed_dictionaries({"text": st.text(max_size=20), "blocks": st.lists(JSON, max_size=3)}),
})


@pytest.fixture
def handlers(client: redis.Redis, settings: Settings, rules_dir: Path) -> tuple[SlackActions, list[Any]]:
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir)
    posted: list[Any] = []
    s = settings.model_copy(update={"slack_allowed_users": [ALLOWED]})
    return SlackActions(client, s, lambda: rules, lambda url, body: posted.append((url, body))), posted


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=WELL_FORMED | CLICKS | JSON)
def test_any_click_payload_is_handled_quietly(handlers: tuple[SlackActions, list[Any]], payload: Any) -> None:
    actions, posted = handlers
    posted.clear()
    before = len(SilenceStore(actions.client, Keys(actions.settings.key_prefix)).all())
    if isinstance(payload, dict):
        actions.interaction(payload)
    after = SilenceStore(actions.client, Keys(actions.settings.key_prefix)).all()
    for url, body in posted:
        assert isinstance(url, str) and isinstance(body, dict)
        assert "<!channel>" not in json.dumps(body.get("text", ""))
    user = payload.get("user") if isinstance(payload, dict) else None
    event("silenced" if len(after) > before else "posted" if posted else "nothing done")
    if len(after) > before:  # only an allowed user (or the rule's owner, not in these payloads) silences
        assert isinstance(user, dict) and user.get("id") == ALLOWED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=60),
                      st.tuples(st.sampled_from(["price", "explain", "silence", "silences", "help", "PRICE"]),
                                st.text(max_size=40)).map(" ".join)),
       user=USERS)
def test_any_command_is_answered_ephemerally_and_escaped(handlers: tuple[SlackActions, list[Any]], text: str,
                                                         user: str) -> None:
    actions, _ = handlers
    answer = actions.command({"text": text, "user_id": user, "user_name": text[:10]})
    assert answer["response_type"] == "ephemeral" and isinstance(answer["text"], str) and answer["text"]
    assert "<" not in answer["text"] and ">" not in answer["text"]  # escaped: &lt; &gt;
