"""Acting on alerts from Slack over Socket Mode: slack_sdk's socket-mode client (the ``slack`` role) connected to a
local websocket server that speaks Slack's envelopes (hello, envelope_id, acknowledgement), the Slack stand-in
answering ``apps.connections.open`` and the ``response_url``, and the real pipeline delivering alerts. The same
handlers as over HTTP: a snooze stops the next alert of that rule and product; the connection comes back by
itself after Slack's ``disconnect`` and after a dropped socket; an envelope Slack sends again is done once."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr, ValidationError

from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, wait_for, write_rules
from tests.socket_server import SocketModeServer
from tests.test_slack_http import ALLOWED, OTHER, RULES, blocks_of, click_payload, on, slow_commands
from workers.cli.status import collect
from workers.web.slack_socket import REPEAT_SECONDS, Redacting, SocketMode

#: Pings every half second in these tests (5 s in service): a dead socket is noticed within seconds.
PING = 0.5


@pytest.fixture
def socket_server(slack: SlackServer) -> Iterator[SocketModeServer]:
    server = SocketModeServer().start()
    slack.socket_url = server.url
    yield server
    server.stop()


@pytest.fixture
def s(settings: Settings, slack: SlackServer, rules_dir: Path) -> Settings:
    write_rules(rules_dir, RULES)
    return settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                       "slack_app_token": SecretStr(slack.app_token),
                                       "slack_allowed_users": [ALLOWED], "delivery_retry_intervals_seconds": [0, 0]})


class Running:
    """The ``slack`` role in a thread of the test."""

    def __init__(self, mode: SocketMode):
        self.mode = mode
        self.stop = threading.Event()
        self.thread = threading.Thread(target=mode.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> SocketMode:
        self.thread.start()
        return self.mode

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def connected(mode: SocketMode) -> bool:
    return mode.sm is not None and mode.sm.is_connected()


@pytest.fixture
def live(client: redis.Redis, s: Settings, socket_server: SocketModeServer,
         caplog: pytest.LogCaptureFixture) -> Iterator[tuple[SocketMode, Pipeline]]:
    caplog.set_level(logging.INFO)
    p = Pipeline(client, s)
    with Running(SocketMode(client, s, lambda: p.rules, ping_seconds=PING)) as mode:
        wait_for(lambda: connected(mode) and socket_server.connections, 10, "the Socket Mode connection")
        yield mode, p
    text = caplog.text
    assert s.slack_app_token is not None and s.slack_app_token.get_secret_value() not in text
    assert "stand-in-ticket" not in text and "Traceback" not in text


def silences(p: Pipeline) -> list[Any]:
    return SilenceStore(p.client, Keys(p.settings.key_prefix)).all()


def test_a_snooze_click_over_socket_mode_stops_the_next_alert_and_the_message_says_who(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer) -> None:
    mode, p = live
    assert socket_server.paths[0].startswith("/link/?ticket=")  # the address apps.connections.open gave
    p.run(quote(451_000, "2025-03-10"), quote(451_000, "2025-03-10", product="Nd oxide"))
    (msg,) = on(slack, "Pr-Nd oxide")
    eid = socket_server.send("interactive", click_payload(slack, msg, "alerts_snooze_1h", ALLOWED))
    took, ack = socket_server.ack(eid)
    assert ack == {"envelope_id": eid} and took < 3  # acknowledged at once, without a payload
    wait_for(lambda: slack.responses, 10, "the message to be updated")
    ((name, body),) = slack.responses
    assert name == f"alerts_snooze_1h-{ALLOWED}" and body["replace_original"] is True
    done = next(b for b in body["blocks"] if b.get("block_id") == "alerts_done")["elements"][0]["text"]
    assert done.startswith(f"*Snoozed 1h* (oxides-high on Pr-Nd oxide) by <@{ALLOWED}> at ")
    assert body["blocks"][0] == blocks_of(msg)[0]
    (silence,) = silences(p)
    assert silence.matchers.rule == ("oxides-high",) and silence.matchers.product == ("Pr-Nd oxide",)
    p.run(quote(449_000, "2025-03-11"), quote(449_000, "2025-03-11", product="Nd oxide"),
          quote(452_000, "2025-03-12"), quote(452_000, "2025-03-12", product="Nd oxide"))
    assert len(on(slack, "Pr-Nd oxide")) == 1  # snoozed
    assert len(on(slack, "neodymium oxide")) == 2  # the same rule on another product is not
    assert mode.doing().startswith("Socket Mode connected; 1 requests handled")


def test_a_user_not_allowed_is_told_over_socket_mode_and_nothing_changes(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer) -> None:
    _, p = live
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    eid = socket_server.send("interactive", click_payload(slack, msg, "alerts_silence_resolved", OTHER))
    assert socket_server.ack(eid)[1] == {"envelope_id": eid}
    wait_for(lambda: slack.responses, 10, "the answer")
    body = slack.responses[0][1]
    assert body["response_type"] == "ephemeral" and body["text"].startswith("Not allowed")
    assert silences(p) == []


def command(server: SocketModeServer, text: str, user: str = OTHER, response_url: str = "http://127.0.0.1:9/x",
            envelope_id: str | None = None) -> tuple[str, dict[str, Any]]:
    eid = server.send("slash_commands", {"command": "/alerts", "text": text, "user_id": user, "user_name": "ann",
                                         "team_id": "T0", "channel_id": "C1", "response_url": response_url,
                                         "trigger_id": "t"}, envelope_id=envelope_id, accepts_response_payload=True)
    took, ack = server.ack(eid)
    assert took < 3
    return eid, ack


def test_the_slash_command_is_answered_in_its_acknowledgement(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer) -> None:
    _, p = live
    p.run(quote(440_000, "2025-03-07"), quote(451_000, "2025-03-10"))
    eid, ack = command(socket_server, "price PrNd oxide")
    assert ack["envelope_id"] == eid and ack["payload"]["response_type"] == "ephemeral"
    assert "451,000 as of 2025-03-10" in ack["payload"]["text"] and "+11,000 (+2.5%)" in ack["payload"]["text"]
    assert "/alerts silence RULE DURATION COMMENT" in command(socket_server, "help")[1]["payload"]["text"]
    assert command(socket_server, "silence oxides-high 2h x", OTHER)[1]["payload"]["text"].startswith("Not allowed")
    made = command(socket_server, "silence oxides-high 2h <!channel> restocking", ALLOWED)[1]["payload"]["text"]
    assert made.startswith("silence ") and "&lt;!channel&gt; restocking" in made and "<!channel>" not in made
    assert len(silences(p)) == 1


def test_an_envelope_slack_sends_again_is_acknowledged_and_done_once(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer) -> None:
    _, p = live
    p.run(quote(451_000, "2025-03-10"))
    (msg,) = on(slack, "Pr-Nd oxide")
    payload = click_payload(slack, msg, "alerts_snooze_1d", ALLOWED)
    eid = socket_server.send("interactive", payload)
    socket_server.ack(eid)
    wait_for(lambda: slack.responses, 10, "the first answer")
    socket_server.acks.pop(eid)
    socket_server.send("interactive", payload, envelope_id=eid, retry_attempt=1)
    assert socket_server.ack(eid)[1] == {"envelope_id": eid}
    _, again = command(socket_server, "silence oxides-high 2h x", ALLOWED, envelope_id="cmd-1")
    socket_server.acks.pop("cmd-1")
    _, retried = command(socket_server, "silence oxides-high 2h x", ALLOWED, envelope_id="cmd-1")
    assert "payload" in again and "payload" not in retried
    time.sleep(0.3)
    assert len(slack.responses) == 1 and len(silences(p)) == 2  # the snooze once, the command once


def test_events_the_app_may_receive_are_acknowledged_and_left_alone(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer) -> None:
    _, p = live
    eid = socket_server.send("events_api", {"event": {"type": "app_mention", "text": "hi"}})
    assert socket_server.ack(eid)[1] == {"envelope_id": eid}
    eid = socket_server.send("interactive", {"type": "block_actions", "actions": [{"block_id": "alerts_actions",
                                                                                    "action_id": "alerts_ack",
                                                                                    "value": "not json"}]})
    assert socket_server.ack(eid)[1] == {"envelope_id": eid}
    time.sleep(0.2)
    assert slack.responses == [] and silences(p) == []


def test_the_connection_comes_back_after_slacks_disconnect_and_after_a_dropped_socket(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer) -> None:
    mode, _ = live
    assert slack.connections_opened == 1
    socket_server.refresh()  # Slack's "disconnect": a new address, a new connection
    wait_for(lambda: slack.connections_opened == 2 and socket_server.opened == 2 and connected(mode), 15,
             "a new connection after the disconnect message")
    # the client reads the new connection once the old one is closed (slack_sdk's builtin client: up to 3 s)
    wait_for(lambda: len(socket_server.connections) == 1, 10, "the old connection closed")
    assert "help" in command(socket_server, "help")[1]["payload"]["text"]
    socket_server.drop()  # the network fails: no closing handshake
    wait_for(lambda: socket_server.opened == 3 and connected(mode), 20, "a new connection after a dropped socket")
    wait_for(lambda: len(socket_server.connections) == 1, 10, "the old connection closed")
    assert "help" in command(socket_server, "help")[1]["payload"]["text"]


def test_a_slow_command_is_acknowledged_and_answered_through_its_response_url(
        live: tuple[SocketMode, Pipeline], socket_server: SocketModeServer, slack: SlackServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    slow_commands(monkeypatch)
    eid, ack = command(socket_server, "help", response_url=slack.response_url("cmd"))
    assert ack == {"envelope_id": eid}
    wait_for(lambda: slack.responses, 10, "the answer at the response_url")
    ((name, answer),) = slack.responses
    assert name == "cmd" and answer["response_type"] == "ephemeral" and "/alerts price PRODUCT" in answer["text"]


def test_a_refused_app_token_is_said_once_and_the_connection_opens_once_it_is_right(
        client: redis.Redis, s: Settings, slack: SlackServer, socket_server: SocketModeServer,
        caplog: pytest.LogCaptureFixture) -> None:
    right = slack.app_token
    slack.app_token = "xapp-1-A0TEST-1-another-token"
    p = Pipeline(client, s)
    with caplog.at_level(logging.INFO), Running(SocketMode(client, s, lambda: p.rules, ping_seconds=PING)) as mode:
        wait_for(lambda: mode.problem is not None, 10, "the refusal")
        assert mode.doing() == "Socket Mode connecting (Slack refused ALERTS_SLACK_APP_TOKEN (invalid_auth))"
        time.sleep(3.5)  # tries at 1 s, 2 s: the same problem, not said again
        said = [r for r in caplog.records if "cannot open the Slack Socket Mode connection" in r.getMessage()]
        assert len(said) == 1 and said[0].levelname == "ERROR"
        slack.app_token = right
        wait_for(lambda: connected(mode) and mode.problem is None, 15, "the connection once the token is right")
        assert mode.doing().startswith("Socket Mode connected")
    assert right not in caplog.text and "Traceback" not in caplog.text


def test_the_app_token_setting_is_checked_without_showing_it() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(_env_file=None, slack_app_token=SecretStr("xoxb-123-secret-value"))  # type: ignore[call-arg]
    assert "xapp-" in str(err.value) and "secret-value" not in str(err.value)
    good = Settings(_env_file=None, slack_app_token=SecretStr("xapp-1-A1-2-abc"))  # type: ignore[call-arg]
    assert "xapp-1-A1-2-abc" not in repr(good)


def slack_findings(client: redis.Redis, s: Settings) -> list[str]:
    return [f"{c.level}: {c.message}" for c in collect(client, s).checks if c.area == "slack"]


def test_the_slack_role_in_a_worker_process(client: redis.Redis, s: Settings, slack: SlackServer,
                                            socket_server: SocketModeServer, tmp_path: Path) -> None:
    env = env_for(s, ALERTS_SLACK_APP_TOKEN=slack.app_token, ALERTS_SLACK_API_URL=slack.url,
                  ALERTS_SLACK_ALLOWED_USERS=ALLOWED)
    with (tmp_path / "worker.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "slack"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: socket_server.connections, 30, "the worker's Socket Mode connection")
            eid, ack = command(socket_server, "silences")
            assert ack == {"envelope_id": eid, "payload": {"response_type": "ephemeral", "replace_original": False,
                                                           "text": "no active silences"}}
            wait_for(lambda: not slack_findings(client, s) and collect(client, s).data["processes"][0]["doing"].get(
                "slack", "").startswith("Socket Mode connected; 1 "), 15, "alerts status to see the connected role")
            assert collect(client, s).data["processes"][0]["roles"] == ("slack",)
        finally:
            proc.terminate()
            proc.wait(15)
    text = (tmp_path / "worker.log").read_text()
    assert proc.returncode == 0, text
    assert "roles: slack" in text and "Slack Socket Mode connection open" in text
    assert slack.app_token not in text and "stand-in-ticket" not in text and "Traceback" not in text
    assert slack_findings(client, s) == [
        "warn: ALERTS_SLACK_APP_TOKEN is set but no live process runs the slack role: buttons and /alerts get no "
        "answer over Socket Mode (alerts worker --role slack)"]


def test_the_slack_role_without_the_app_token_is_one_clear_line(s: Settings) -> None:
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--role", "slack"], env=env_for(s),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "alerts: the slack role (Socket Mode) needs ALERTS_SLACK_APP_TOKEN, the Slack app-level token (xapp-...) "
        "with the connections:write scope"]


def test_slacks_lines_are_redacted_one_line_and_not_repeated() -> None:
    now = [0.0]
    f = Redacting(clock=lambda: now[0])

    def line(level: int, msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord | None:
        record = logging.LogRecord("workers.web.slack_socket.sdk", level, __file__, 1, msg, args,
                                   (type(exc), exc, None) if exc else None)
        return record if f.filter(record) else None

    got = line(logging.ERROR, "Failed to retrieve WSS URL: %s", "token xapp-1-A1-2-abcdef, url wss://x/?ticket=t-1&a=1",
               exc=OSError("boom"))
    assert got is not None and got.exc_info is None and got.args is None
    assert got.msg == "Failed to retrieve WSS URL: token ***, url wss://x/?ticket=***&a=1 (OSError: boom)"
    assert line(logging.ERROR, "Failed to retrieve WSS URL: %s", "token xapp-1-A1-2-abcdef, url wss://x/?ticket=t-2&a=1",
                exc=OSError("boom")) is None  # the same line again, within ten minutes
    assert line(logging.ERROR, "another problem") is not None
    assert line(logging.INFO, "Reconnecting...") is not None and line(logging.INFO, "Reconnecting...") is not None
    now[0] = REPEAT_SECONDS + 1
    assert line(logging.ERROR, "another problem") is not None  # said again after the window
