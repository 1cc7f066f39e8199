"""Every email carries a well-formed ``Date:`` and ``Message-ID:`` (RFC 5322), through a real SMTP server on
127.0.0.1 (aiosmtpd): an alert's Message-ID is derived from the alert id and the target, so a send that the
relay took but answered with an error, tried again, is the same message; a digest's from its slot."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from alerts.notify.digest import compose, run_due
from alerts.notify.email import domain_of, message_id
from alerts.settings import Settings
from alerts.store.digests import DigestStore
from tests.notify.test_email import Inbox, smtp  # noqa: F401 - the SMTP server fixture
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules
from tests.test_digests import MONDAY_0805

RULES = """
digests:
  - {name: desk-daily, schedule: "0 8 * * 1-5", timezone: Asia/Shanghai, to: [desk@example.com]}
rules:
  - id: licences
    news: {any: [export licen*]}
    notify: [email:desk@example.com, email:risk@example.com]
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [digest:desk-daily]
"""
#: RFC 5322 msg-id: "<" dot-atom-text "@" dot-atom-text ">".
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
MSG_ID = re.compile(rf"^<{ATOM}@{ATOM}>$")


class TakesThenFails(Inbox):
    """A relay that takes the first message and answers 451 all the same (a timeout after the data, a relay
    restarting): the sender tries again."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await super().handle_DATA(server, session, envelope)
        return "451 4.3.0 try again later" if len(self.messages) == 1 else "250 Message accepted"


@pytest.fixture
def p(client: redis.Redis, settings: Settings, rules_dir: Path, smtp: tuple[Inbox, int]) -> Pipeline:  # noqa: F811
    write_rules(rules_dir, RULES)
    return Pipeline(client, settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp[1], "smtp_starttls": False,
        "email_from": "Rare earth alerts <alerts@desk.example.com>", "delivery_retry_intervals_seconds": [0, 0]}))


def well_formed(msg: email.message.EmailMessage) -> tuple[datetime, str]:
    """The message's Date (parsed, aware) and Message-ID, each present once and without defects."""
    assert len(msg.get_all("Date", [])) == 1 and len(msg.get_all("Message-ID", [])) == 1
    date, mid = msg["Date"], msg["Message-ID"]
    assert not date.defects and not mid.defects
    when = parsedate_to_datetime(str(date))
    assert when.tzinfo is not None
    assert MSG_ID.match(str(mid)), str(mid)
    return when, str(mid)


def test_an_alert_email_has_a_date_and_a_message_id_per_alert_and_target(
        p: Pipeline, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _ = smtp
    before = datetime.now(UTC).replace(microsecond=0)
    (a,) = [x for x in p.run({"type": "news", "id": "n1", "headline": "export licences", "source": "smm"})]
    p.run({"type": "news", "id": "n2", "headline": "more export licences", "source": "smm"})
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert len(inbox.messages) == 4
    got = {(m["To"], m["Subject"]): well_formed(m) for m in inbox.messages}
    assert all(before <= when <= after for when, _ in got.values())  # the time it was sent, in UTC
    ids = [mid for _, mid in got.values()]
    assert len(set(ids)) == 4  # one per alert and target
    first = next(mid for (to, subject), (_, mid) in got.items() if to == "desk@example.com"
                 and subject.endswith("export licences") and "more" not in subject)
    assert first == message_id("alert", a.id, "email:desk@example.com", "alerts@desk.example.com")
    assert first.startswith(f"<alert.{a.id}.") and first.endswith("@desk.example.com>")


def test_a_retried_send_is_the_same_message(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    from aiosmtpd.controller import Controller

    from tests.servers import free_port

    write_rules(rules_dir, RULES.replace("email:desk@example.com, email:risk@example.com", "email:desk@example.com"))
    inbox = TakesThenFails()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        p = Pipeline(client, settings.model_copy(update={
            "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "email_from": "alerts@example.com",
            "delivery_retry_intervals_seconds": [0, 0]}))
        (a,) = p.run({"type": "news", "id": "n1", "headline": "export licences", "source": "smm"})
        p.deliver()
    finally:
        controller.stop()
    assert len(inbox.messages) == 2  # taken twice: the first answer was an error
    (_, first), (_, second) = (well_formed(m) for m in inbox.messages)
    assert first == second == message_id("alert", a.id, "email:desk@example.com", "alerts@example.com")


def test_a_digest_has_a_date_and_a_message_id_per_slot(p: Pipeline, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _ = smtp
    p.run(quote(447_000, "2025-02-27"), quote(452_000, "2025-02-28"))
    store = DigestStore(p.client, p.keys)
    d = p.rules.digests["desk-daily"]
    slot = "2025-03-03T08:00:00+08:00"
    again = [compose(store, p.settings, p.rules, d, MONDAY_0805 + i, slot)[0]["Message-ID"] for i in (0, 30)]
    other = compose(store, p.settings, p.rules, d, MONDAY_0805 + 86400, "2025-03-04T08:00:00+08:00")[0]
    by_hand = compose(store, p.settings, p.rules, d, MONDAY_0805)[0]
    assert again[0] == again[1] != other["Message-ID"] != by_hand["Message-ID"]  # per slot; by hand: its own
    assert run_due(store, p.settings, p.rules, MONDAY_0805) == {"desk-daily": "sent with 1 alerts"}
    (msg,) = inbox.messages
    when, mid = well_formed(msg)
    assert when == datetime(2025, 3, 3, 0, 5, tzinfo=UTC)  # the send's time (MONDAY_0805 in Shanghai), as UTC
    assert mid == str(again[0]) and mid.startswith("<digest.desk-daily.") and mid.endswith("@desk.example.com>")


@pytest.mark.parametrize("sender,domain", [
    ("alerts@localhost", "localhost"), ("Desk <desk@mail.example.cn>", "mail.example.cn"),
    ("no-address", "alerts.invalid"), ("x@", "alerts.invalid"), ("@bad domain", "alerts.invalid"),
])
def test_the_message_id_domain_is_the_from_addresses(sender: str, domain: str) -> None:
    assert domain_of(sender) == domain
    mid = message_id("alert", "a/b c", "email:x@y.z", sender)
    assert MSG_ID.match(mid) and mid.endswith(f"@{domain}>")
