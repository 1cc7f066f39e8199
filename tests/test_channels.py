"""The channel registry: every kind of target is one entry (``alerts.targets.CHANNELS``) with its notifier
(``alerts.notify.notifiers.FACTORIES``), its delivery queue and its metric label; a retryable failure carries
its category, and the metrics' ``reason`` label is that category, not a guess from the message's words."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr
from rq.timeouts import JobTimeoutException

from alerts.errors import (
    RETRY_CATEGORIES,
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    transport_category,
)
from alerts.model import Alert
from alerts.notify.notifiers import FACTORIES
from alerts.notify.webhook import WebhookNotifier
from alerts.rules.compiled import WebhookConfig
from alerts.settings import Settings
from alerts.targets import CHANNELS, OTHER, QUEUE_KINDS, channel_of, parse_target, queue_of
from tests.servers import free_port
from workers.deliver import reason_of
from workers.roles.dispatch import queue_names


def test_every_channel_has_a_notifier_and_a_queue() -> None:
    assert set(FACTORIES) == set(CHANNELS)
    assert QUEUE_KINDS[-1] == OTHER
    assert all(c.queue in QUEUE_KINDS for c in CHANNELS.values())
    assert set(QUEUE_KINDS) == {c.queue for c in CHANNELS.values()} | {OTHER}


@pytest.mark.parametrize("text", ["slack:#desk", "slack:C0123ABCD", "console", "digest:desk-daily",
                                  "email:desk@example.com", "webhook:risk", "slack:#desk?quiet=22:00-07:00"])
def test_each_channel_as_written(text: str) -> None:
    target = parse_target(text)
    assert target.kind in CHANNELS
    assert str(target) == text
    assert channel_of(text) == target.kind
    assert queue_of(text) == CHANNELS[target.kind].queue


@pytest.mark.parametrize(("text", "message"), [
    ("slack", "unknown target 'slack'; use slack:#channel, console, digest:NAME, email:ADDRESS or webhook:NAME"),
    ("pager:x", "unknown target 'pager:x'"),
    ("console:x", "console takes no argument"),
    ("slack:#Desk", "'slack:#Desk': a Slack channel is #lower-case-name"),
    ("email:desk", "'email:desk': not an email address"),
    ("webhook:Risk", "'webhook:Risk': a webhook name is lower-case letters"),
])
def test_a_wrong_target_is_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("?", r"\?")):
        parse_target(text)


def test_unknown_kinds_are_other() -> None:
    assert channel_of("pager:x") == OTHER
    assert queue_of("pager:x") == OTHER
    assert queue_of("console") == OTHER
    assert queue_of("digest:d") == OTHER


def test_queues_follow_the_registry() -> None:
    names = queue_names(Settings(queue_name="desk-q"))
    assert names == [f"desk-q:{kind}" for kind in QUEUE_KINDS] + ["desk-q"]


def test_reason_is_the_category() -> None:
    assert reason_of(PermanentDeliveryError("t", "refused: 503 in its text")) == "refused"
    for category in RETRY_CATEGORIES:
        # the words of the reason do not matter, only the category given by the notifier
        assert reason_of(RetryableDeliveryError("t", "rate limited, 503, timed out", category=category)) == category
    assert reason_of(RetryableDeliveryError("t", "x", retry_after=3.0)) == "http_429"
    assert reason_of(DeliveryError("t", "x")) == "other"
    assert reason_of(JobTimeoutException("late")) == "timeout"
    assert reason_of(ConnectionRefusedError()) == "network"
    assert reason_of(None) == "other"
    with pytest.raises(ValueError, match="unknown retry category"):
        RetryableDeliveryError("t", "x", category="flaky")


def test_transport_category() -> None:
    import httpx

    assert transport_category(TimeoutError()) == "timeout"
    assert transport_category(httpx.ReadTimeout("slow")) == "timeout"
    assert transport_category(httpx.ConnectError("refused")) == "network"
    assert transport_category(ConnectionResetError()) == "network"


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(int(self.path.strip("/")))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _send(url: str) -> None:
    alert = Alert(id="a1", rule_id="r", kind="price", condition="above", severity="warning", targets=("webhook:w",),
                  description="d", event_id="e1", source="smm", at=0.0)
    WebhookNotifier(WebhookConfig("w", url, SecretStr("s"))).send(alert, parse_target("webhook:w"))


@pytest.mark.parametrize(("status", "category"), [(503, "http_5xx"), (500, "http_5xx"), (429, "http_429"),
                                                  (408, "other")])
def test_a_real_receivers_answer_gives_the_category(receiver: str, status: int, category: str) -> None:
    with pytest.raises(RetryableDeliveryError) as caught:
        _send(f"{receiver}/{status}")
    assert caught.value.category == category
    assert reason_of(caught.value) == category


def test_nobody_listening_is_network() -> None:
    port = free_port()
    with socket.socket() as s:  # make sure nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    with pytest.raises(RetryableDeliveryError) as caught:
        _send(f"http://127.0.0.1:{port}/200")
    assert caught.value.category == "network"


def test_a_mail_relay_that_is_down_is_network() -> None:
    from alerts.notify.email import EmailNotifier

    settings = Settings(smtp_host="127.0.0.1", smtp_port=free_port(), email_from="alerts@example.com")
    alert = Alert(id="a1", rule_id="r", kind="news", condition="news", severity="warning",
                  targets=("email:desk@example.com",), description="d", event_id="e1", source="smm", at=0.0)
    with pytest.raises(RetryableDeliveryError) as caught:
        EmailNotifier(settings).send(alert, parse_target("email:desk@example.com"))
    assert caught.value.category == "network" and reason_of(caught.value) == "network"
