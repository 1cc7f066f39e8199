"""email:ADDRESS through a real SMTP server on 127.0.0.1 (aiosmtpd), parsed back with the email package."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller

from alerts.settings import Settings
from tests.pipeline import Pipeline
from tests.servers import free_port, write_rules


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def p(client: redis.Redis, settings: Settings, rules_dir: Path, smtp: tuple[Inbox, int]) -> Pipeline:
    write_rules(rules_dir, """
rules:
  - id: licences
    news: {any: [export licen*]}
    notify: [email:desk@example.com]
""")
    return Pipeline(client, settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp[1], "smtp_starttls": False, "email_from": "alerts@example.com",
        "delivery_retry_intervals_seconds": [0, 0]}))


def test_one_email_per_alert_multipart_and_escaped(p: Pipeline, smtp: tuple[Inbox, int]) -> None:
    inbox, _ = smtp
    p.run({"type": "news", "id": "n1", "headline": "<script>alert(1)</script> export licences & more",
           "url": "https://news.test/a?x=1&y=2", "source": "smm"})
    (msg,) = inbox.messages
    assert msg["To"] == "desk@example.com" and msg["From"] == "alerts@example.com"
    assert msg["Subject"].startswith("[warning] licences: ")
    text = msg.get_body("plain").get_content()  # type: ignore[union-attr]
    html = msg.get_body("html").get_content()  # type: ignore[union-attr]
    assert "[licences] <script>alert(1)</script> export licences & more" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; export licences &amp; more" in html
    assert 'href="https://news.test/a?x=1&amp;y=2"' in html


def test_relay_down_is_retried_refused_recipient_is_not(p: Pipeline, smtp: tuple[Inbox, int]) -> None:
    from alerts.store import failures
    from alerts.store.keys import Keys

    inbox, _ = smtp
    from workers.deliver import Delivery

    good = p.delivery
    p.delivery = Delivery(p.settings.model_copy(update={"smtp_port": free_port()}))  # a relay that is down
    p.run({"type": "news", "id": "n1", "headline": "export licences", "source": "smm"})
    (f,) = failures.listing(p.client, Keys())
    assert f["permanent"] is False and "cannot send through the mail relay" in f["reason"]
    p.delivery = good
    inbox.refuse = "550 no such user"
    p.run({"type": "news", "id": "n2", "headline": "export licences 2", "source": "smm"})
    assert {x["permanent"] for x in failures.listing(p.client, Keys())} == {False, True}
    assert inbox.messages == []


class Authenticated(Inbox):
    def __init__(self) -> None:
        super().__init__()
        self.logins: list[str] = []

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        ok = auth_data.login == b"alerts" and auth_data.password == b"relay-password"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_and_login(client: redis.Redis, settings: Settings, rules_dir: Path, tmp_path: Path, mode: str,
                       caplog: pytest.LogCaptureFixture) -> None:
    import ssl

    import trustme
    from pydantic import SecretStr

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = Authenticated()
    port = free_port()
    if mode == "starttls":
        controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                                tls_context=server_ctx, require_starttls=True, auth_require_tls=True)
    else:
        controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                                ssl_context=server_ctx, auth_require_tls=False)
    controller.start()
    try:
        write_rules(rules_dir, "rules:\n  - id: r\n    news: {any: [licen*]}\n    notify: [email:desk@example.com]\n")
        password = "relay-password"
        p = Pipeline(client, settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": mode == "starttls",
            "smtp_ssl": mode == "implicit", "smtp_ca_file": ca_file, "smtp_username": "alerts",
            "smtp_password": SecretStr(password), "email_from": "alerts@example.com"}))
        p.run({"type": "news", "id": "n1", "headline": "export licences", "source": "smm"})
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and inbox.logins == ["alerts"]
    assert password not in caplog.text and password not in repr(p.settings)
