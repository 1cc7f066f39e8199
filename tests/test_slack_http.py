"""Acting on alerts from Slack over real HTTP: signed requests to POST /slack/interactions and /slack/commands on
the service's HTTP app (uvicorn), the real pipeline delivering to a Slack stand-in, and the message updated in
place through the stand-in's response_url. Forged, stale and replayed requests change nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import redis
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, wait_for, write_rules
from workers.cli import main as cli
from workers.web.http import HttpServer, make_app

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ALLOWED, OWNER, OTHER = "U0ALLOWED", "U0OWNER", "U0OTHER"
RULES = """
owners:
  - {name: li.wei, slack: U0OWNER}
rules:
  - id: oxides-high
    owner: li.wei
    price: {products: [Pr-Nd oxide, Nd oxide], above: 450000 CNY/t}
    notify: [slack:#oxides]
  - id: licences
    news: {any: [export licen*]}
    notify: [slack:#news]
"""


@pytest.fixture
def env(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Pipeline]]:
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "slack_signing_secret": SecretStr(SECRET), "slack_allowed_users": [ALLOWED],
                                    "delivery_retry_intervals_seconds": [0, 0]})
    for k, v in env_for(s).items():
        monkeypatch.setenv(k, v)
    p = Pipeline(client, s)
    http = HttpServer(make_app(client, s, builtin_catalog, lambda: p.rules), s).start()
    url = f"http://127.0.0.1:{http.port}"
    wait_for(lambda: _answers(url), 10, "the HTTP app to start")
    yield url, p
    http.stop()


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def sign(body: str, ts: int, secret: str = SECRET) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()


def send(url: str, path: str, body: str, ts: int | None = None, signature: str | None = None) -> httpx.Response:
    ts = int(time.time()) if ts is None else ts
    headers = {"X-Slack-Request-Timestamp": str(ts),
               "X-Slack-Signature": sign(body, ts) if signature is None else signature,
               "Content-Type": "application/x-www-form-urlencoded"}
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=10)


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    b = message["blocks"]
    return json.loads(b) if isinstance(b, str) else list(b)


def click(slack: SlackServer, message: dict[str, Any], action_id: str, user: str, name: str = "ann") -> str:
    """The form body of a click on one of the message's buttons, as Slack sends it."""
    return urlencode({"payload": json.dumps(click_payload(slack, message, action_id, user, name))})


def click_payload(slack: SlackServer, message: dict[str, Any], action_id: str, user: str,
                  name: str = "ann") -> dict[str, Any]:
    """The ``block_actions`` payload of a click on one of the message's buttons (both transports carry it)."""
    buttons = next(b for b in blocks_of(message) if b["type"] == "actions")["elements"]
    button = next(e for e in buttons if e["action_id"] == action_id)
    payload = {"type": "block_actions", "user": {"id": user, "username": name},
               "actions": [{"action_id": action_id, "block_id": "alerts_actions", "value": button["value"],
                            "type": "button"}],
               "response_url": slack.response_url(f"{action_id}-{user}"), "channel": {"id": "C1"},
               "message": {"ts": message["ts"], "text": message["text"], "blocks": blocks_of(message)}}
    return payload


def on(slack: SlackServer, product: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages if m["channel"] == "#oxides" and product in m["text"]]


def silences(p: Pipeline) -> list[Any]:
    return SilenceStore(p.client, Keys(p.settings.key_prefix)).all()


def history(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, list[dict[str, Any]]]:
    capsys.readouterr()
    assert cli.main(["history", *args]) == 0
    text = capsys.readouterr().out
    assert cli.main(["history", "--format", "json", *args]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_a_snooze_click_stops_that_rule_and_product_and_the_message_says_who(
        env: tuple[str, Pipeline], slack: SlackServer, capsys: pytest.CaptureFixture[str]) -> None:
    url, p = env
    p.run(quote(451_000, "2025-03-10"), quote(451_000, "2025-03-10", product="Nd oxide"))
    (msg,) = on(slack, "Pr-Nd oxide")
    started = time.monotonic()
    r = send(url, "/slack/interactions", click(slack, msg, "alerts_snooze_1h", ALLOWED))
    assert r.status_code == 200 and r.content == b"" and time.monotonic() - started < 3
    wait_for(lambda: slack.responses, 10, "the message to be updated")
    ((name, body),) = slack.responses
    assert name == f"alerts_snooze_1h-{ALLOWED}" and body["replace_original"] is True
    done = next(b for b in body["blocks"] if b.get("block_id") == "alerts_done")["elements"][0]["text"]
    assert done.startswith(f"*Snoozed 1h* (oxides-high on Pr-Nd oxide) by <@{ALLOWED}> at ")
    assert body["blocks"][0] == blocks_of(msg)[0] and body["blocks"][-1]["type"] == "actions"  # in place
    (s,) = silences(p)
    assert s.matchers.rule == ("oxides-high",) and s.matchers.product == ("Pr-Nd oxide",)
    assert s.comment == "snoozed from Slack" and s.author == f"ann ({ALLOWED})" and 3590 < s.end - s.created <= 3600
    p.run(quote(449_000, "2025-03-11"), quote(449_000, "2025-03-11", product="Nd oxide"),
          quote(452_000, "2025-03-12"), quote(452_000, "2025-03-12", product="Nd oxide"))
    assert len(on(slack, "Pr-Nd oxide")) == 1  # the next alert of that rule and product is not delivered
    assert len(on(slack, "neodymium oxide")) == 2  # another product of the same rule still is
    text, rows = history(capsys, "--rule", "oxides-high", "--product", "Pr-Nd oxide")
    first = rows[-1]
    assert first["actions"][0]["action"] == "snoozed 1h" and first["actions"][0]["by"] == f"ann ({ALLOWED})"
    assert f"snoozed 1h by ann ({ALLOWED}) at 20" in text


def test_a_user_not_allowed_is_told_and_nothing_changes(env: tuple[str, Pipeline], slack: SlackServer) -> None:
    url, p = env
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    for action in ("alerts_snooze_1h", "alerts_snooze_1d", "alerts_silence_resolved"):
        assert send(url, "/slack/interactions", click(slack, msg, action, OTHER)).status_code == 200
    wait_for(lambda: len(slack.responses) == 3, 10, "three answers")
    for _, body in slack.responses:
        assert body["response_type"] == "ephemeral" and body["replace_original"] is False
        assert body["text"].startswith("Not allowed")
    assert silences(p) == []
    p.run(quote(449_000, "2025-03-11"), quote(452_000, "2025-03-12"))
    assert len(on(slack, "Pr-Nd oxide")) == 2


def test_the_rule_owner_may_silence_until_resolved(env: tuple[str, Pipeline], slack: SlackServer) -> None:
    url, p = env
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    assert send(url, "/slack/interactions", click(slack, msg, "alerts_silence_resolved", OWNER, "li")).status_code \
        == 200
    wait_for(lambda: slack.responses, 10, "the message to be updated")
    body = slack.responses[0][1]
    assert "*Silenced until resolved* (oxides-high on Pr-Nd oxide) by <@U0OWNER>" in json.dumps(body["blocks"])
    (s,) = silences(p)
    assert s.until_resolved and s.matchers.product == ("Pr-Nd oxide",)


def test_anyone_may_acknowledge_and_history_shows_it(env: tuple[str, Pipeline], slack: SlackServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    url, p = env
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    assert send(url, "/slack/interactions", click(slack, msg, "alerts_ack", OTHER, "bob")).status_code == 200
    wait_for(lambda: slack.responses, 10, "the message to be updated")
    text = json.dumps(slack.responses[0][1]["blocks"])
    assert f"*Acknowledged* by <@{OTHER}> at " in text
    out, rows = history(capsys, "--rule", "oxides-high")
    assert rows[0]["actions"][0]["action"] == "acknowledged" and f"acknowledged by bob ({OTHER}) at 20" in out
    assert silences(p) == []


def test_forged_stale_and_replayed_requests_are_refused(env: tuple[str, Pipeline], slack: SlackServer) -> None:
    url, p = env
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    body = click(slack, msg, "alerts_snooze_1d", ALLOWED)
    now = int(time.time())
    assert send(url, "/slack/interactions", body, signature=sign(body, now, "wrong-secret")).status_code == 401
    assert send(url, "/slack/interactions", body, signature="v0=" + "0" * 64).status_code == 401
    assert send(url, "/slack/interactions", body, signature="").status_code == 401
    assert send(url, "/slack/interactions", body + "&x=1", signature=sign(body, now)).status_code == 401  # altered
    # older than 5 minutes, or as far in the future (the clock read at the send: the requests above take time)
    assert send(url, "/slack/interactions", body, ts=int(time.time()) - 301).status_code == 401
    assert send(url, "/slack/interactions", body, ts=int(time.time()) + 305).status_code == 401
    r = httpx.post(f"{url}/slack/interactions", content=body, headers={"X-Slack-Signature": sign(body, now)})
    assert r.status_code == 401  # no timestamp
    cmd = urlencode({"command": "/alerts", "text": "silence oxides-high 2h x", "user_id": ALLOWED})
    assert send(url, "/slack/commands", cmd, signature=sign(cmd, now, "wrong")).status_code == 401
    time.sleep(0.5)
    assert silences(p) == [] and slack.responses == []
    # a good request once, then the very same bytes again: refused
    assert send(url, "/slack/interactions", body, ts=now).status_code == 200
    assert send(url, "/slack/interactions", body, ts=now).status_code == 401
    wait_for(lambda: slack.responses, 10, "the first click's answer")
    time.sleep(0.3)
    assert len(silences(p)) == 1 and len(slack.responses) == 1


def command(url: str, text: str, user: str = OTHER) -> dict[str, Any]:
    body = urlencode({"command": "/alerts", "text": text, "user_id": user, "user_name": "ann",
                      "response_url": "http://127.0.0.1:9/unused", "trigger_id": secrets.token_hex(8)})
    r = send(url, "/slack/commands", body)
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    assert got["response_type"] == "ephemeral"
    return got


def test_the_slash_command(env: tuple[str, Pipeline], slack: SlackServer) -> None:
    url, p = env
    p.run(quote(440_000, "2025-03-07"), quote(451_000, "2025-03-10"))
    assert "/alerts price PRODUCT" in command(url, "help")["text"]
    assert "/alerts silence RULE DURATION COMMENT" in command(url, "")["text"]
    price = command(url, "price PrNd oxide")["text"]
    assert "Pr-Nd oxide" in price and "451,000 as of 2025-03-10" in price
    assert "+11,000 (+2.5%) since 2025-03-07" in price
    assert "no quote yet" in command(url, "price Nd oxide")["text"]
    assert "unknown product" in command(url, "price unobtainium")["text"]
    assert command(url, "explain oxides-high")["text"].startswith("oxides-high (")
    assert "no enabled rule" in command(url, "explain nope")["text"]
    assert command(url, "silences")["text"] == "no active silences"
    refused = command(url, "silence oxides-high 2h Baotou restocking", OTHER)["text"]
    assert refused.startswith("Not allowed") and silences(p) == []
    made = command(url, "silence oxides-high 2h Baotou restocking", ALLOWED)["text"]
    assert made.startswith("silence ") and "rule=oxides-high" in made and "Baotou restocking" in made
    assert command(url, "silence oxides-high 2h by the owner", OWNER)["text"].startswith("silence ")
    listed = command(url, "silences")["text"]
    assert listed.count("rule=oxides-high") == 2 and "Baotou restocking" in listed
    assert "a comment is required" in command(url, "silence oxides-high 2h", ALLOWED)["text"]
    assert "Cannot silence" in command(url, "silence oxides-high soon x", ALLOWED)["text"]
    p.run(quote(449_000, "2025-03-11"), quote(452_000, "2025-03-12"))
    assert len(on(slack, "Pr-Nd oxide")) == 1  # silenced from Slack


def test_text_from_slack_is_escaped_in_every_answer(env: tuple[str, Pipeline]) -> None:
    url, _ = env
    hostile = "<!channel> <@U123> & <https://evil.test|click>"
    answers = [command(url, f"price {hostile}"), command(url, f"explain {hostile}"), command(url, hostile),
               command(url, f"silence {hostile} 2h x", ALLOWED), command(url, f"silence oxides-high 2h {hostile}")]
    command(url, f"silence oxides-high 2h {hostile}", ALLOWED)
    answers.append(command(url, "silences"))
    for a in answers:
        for raw in ("<!channel>", "<@U123>", "<https://evil.test"):
            assert raw not in a["text"], a
    assert "&lt;!channel&gt;" in answers[-1]["text"]


def test_without_the_signing_secret_the_endpoints_say_so(client: redis.Redis, settings: Settings,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="workers.web.http"):
        app = make_app(client, settings, builtin_catalog)
    assert [r.message for r in caplog.records if "ALERTS_SLACK_SIGNING_SECRET" in r.message]
    http = HttpServer(app, settings).start()
    try:
        url = f"http://127.0.0.1:{http.port}"
        wait_for(lambda: _answers(url), 10, "the HTTP app to start")
        for path in ("/slack/interactions", "/slack/commands"):
            r = send(url, path, "payload=%7B%7D")
            assert r.status_code == 503 and "ALERTS_SLACK_SIGNING_SECRET is not set" in r.json()["error"]
    finally:
        http.stop()


def test_owners_in_rule_files_are_checked_with_their_lines(tmp_path: Path) -> None:
    from alerts.rules.load import load_rules

    write_rules(tmp_path, "owners:\n  - {name: li.wei, slack: U0OWNER}\n  - {name: li.wei, slack: U0OTHER}\n"
                "  - {name: bo, slack: not-an-id}\n  - {name: x, slak: U1}\nrules: []\n")
    rs = load_rules(tmp_path)
    got = [(p.line, p.message) for p in rs.problems]
    assert got[0] == (3, "owners: 'li.wei' is given two Slack ids (U0OWNER, U0OTHER)")
    assert got[1][0] == 4 and "slack" in got[1][1]
    assert {m for line, m in got if line == 5} >= {"missing required key 'slack'"}
    assert rs.owners == {"li.wei": "U0OWNER"}


def slow_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command takes 0.5 s (one reading a lot) and a transport waits 0.1 s for its answer."""
    from workers.web.slack_actions import SlackActions

    quick = SlackActions.command

    def slow(self: SlackActions, form: Any) -> dict[str, Any]:
        time.sleep(0.5)
        return quick(self, form)

    monkeypatch.setattr("workers.web.slack_actions.COMMAND_WAIT_SECONDS", 0.1)
    monkeypatch.setattr(SlackActions, "command", slow)


def test_a_slow_command_is_acknowledged_and_answered_through_its_response_url(
        env: tuple[str, Pipeline], slack: SlackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = env
    slow_commands(monkeypatch)
    body = urlencode({"command": "/alerts", "text": "help", "user_id": OTHER,
                      "response_url": slack.response_url("cmd"), "trigger_id": "t1"})
    r = send(url, "/slack/commands", body)
    assert r.status_code == 200 and r.content == b""
    wait_for(lambda: slack.responses, 10, "the answer at the response_url")
    ((name, answer),) = slack.responses
    assert name == "cmd" and answer["response_type"] == "ephemeral" and "/alerts price PRODUCT" in answer["text"]


def test_answers_go_to_slack_only(settings: Settings) -> None:
    from workers.web.slack_actions import response_url_ok

    assert response_url_ok("https://hooks.slack.com/actions/T1/1/abc", settings)
    for bad in ("http://hooks.slack.com/actions/x", "https://evil.test/x", "https://slack.com.evil.test/x",
                "file:///etc/passwd"):
        assert not response_url_ok(bad, settings), bad


def test_the_stand_in_answers_chat_update(slack: SlackServer) -> None:
    from slack_sdk import WebClient

    web = WebClient(token=slack.token, base_url=slack.url)
    posted = web.chat_postMessage(channel="#desk", text="before")
    got = web.chat_update(channel=str(posted["channel"]), ts=str(posted["ts"]), text="after", blocks=[])
    assert got["ok"] and slack.message(str(posted["ts"]))["text"] == "after" and len(slack.updates) == 1
