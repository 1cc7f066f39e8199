"""Digests: one email per slot, even with two schedulers; a relay that is down and comes back; the email
parsed back with the email package; preview consumes nothing."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from alerts.notify.digest import compose, run_due
from alerts.settings import Settings
from alerts.store.digests import DigestStore
from tests.conftest import env_for
from tests.notify.test_email import Inbox, smtp  # noqa: F401 - the SMTP server fixture
from tests.pipeline import Pipeline, quote
from tests.servers import free_port, write_rules

RULES = """
digests:
  - name: desk-daily
    schedule: "0 8 * * 1-5"
    timezone: Asia/Shanghai
    to: [desk@example.com]
    subject: "Rare earths: {{ count }} alerts"
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [digest:desk-daily]
  - id: licences
    news: {any: [export licen*]}
    notify: [digest:desk-daily]
"""

MONDAY_0805 = datetime(2025, 3, 3, 8, 5, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


@pytest.fixture
def p(client: redis.Redis, settings: Settings, rules_dir: Path, smtp: tuple[Inbox, int]) -> Pipeline:  # noqa: F811
    write_rules(rules_dir, RULES)
    pipe = Pipeline(client, settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp[1], "smtp_starttls": False, "email_from": "alerts@example.com"}))
    pipe.run(quote(447_000, "2025-02-27"), quote(452_000, "2025-02-28"),
             {"type": "news", "id": "n1", "headline": "<b>Magnet</b> makers obtain export licences & more",
              "url": "https://news.test/1", "source": "smm", "published_at": "2025-03-01T10:00:00+08:00"})
    return pipe



def digests(p: Pipeline) -> DigestStore:
    return DigestStore(p.client, p.keys)

def test_one_email_per_slot_even_with_two_schedulers(p: Pipeline, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _ = smtp
    results: list[dict[str, str]] = []
    store = digests(p)
    racers = [threading.Thread(target=lambda: results.append(run_due(store, p.settings, p.rules, MONDAY_0805)))
              for _ in range(2)]
    for t in racers:
        t.start()
    for t in racers:
        t.join(30)
    assert len(inbox.messages) == 1, results
    assert run_due(digests(p), p.settings, p.rules, MONDAY_0805 + 60) == {}  # the slot is done
    msg = inbox.messages[0]
    assert msg["Subject"] == "Rare earths: 2 alerts" and msg["To"] == "desk@example.com"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html_part = msg.get_body(("html",))
    html = html_part.get_content()  # type: ignore[union-attr]
    assert "Pr-Nd oxide" in text and "[prnd-450k] Pr-Nd oxide 452,000 CNY/t on 2025-02-28" in text
    assert text.startswith("2 alerts since the last digest (never sent)")
    assert "Latest prices" in text
    assert "Pr-Nd oxide: 452,000 CNY/t on 2025-02-28 (no earlier digest price to compare with)" in text
    assert "&lt;b&gt;Magnet&lt;/b&gt; makers obtain export licences &amp; more" in html and "<b>Magnet" not in html
    images = [part for part in msg.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content().startswith(b"\x89PNG")  # type: ignore[union-attr]
    assert f"cid:{images[0]['Content-ID'][1:-1]}" in html
    assert p.client.llen("alerts:outbox:digest:desk-daily") == 0  # sent alerts are never sent again


def test_relay_down_keeps_the_alerts_and_a_missed_slot_goes_once(p: Pipeline, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, _ = smtp
    down = p.settings.model_copy(update={"smtp_port": free_port()})
    assert run_due(digests(p), down, p.rules, MONDAY_0805)["desk-daily"].startswith("not sent")
    assert p.client.llen("alerts:outbox:digest:desk-daily") == 2
    # the relay is back two days later: the missed slots go out once, as one email
    later = MONDAY_0805 + 2 * 86400
    assert run_due(digests(p), p.settings, p.rules, later) == {"desk-daily": "sent with 2 alerts"}
    assert run_due(digests(p), p.settings, p.rules, later + 60) == {}
    assert len(inbox.messages) == 1


def test_preview_and_send_now(p: Pipeline, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, port = smtp
    env = env_for(p.settings, ALERTS_SMTP_HOST="127.0.0.1", ALERTS_SMTP_PORT=str(port),
                  ALERTS_SMTP_STARTTLS="false", ALERTS_EMAIL_FROM="alerts@example.com")
    preview = subprocess.run([sys.executable, "-m", "workers.cli", "digest", "preview", "desk-daily"], env=env,
                             capture_output=True, text=True, check=False)
    assert preview.returncode == 0 and "Subject: Rare earths: 2 alerts" in preview.stdout
    assert inbox.messages == [] and p.client.llen("alerts:outbox:digest:desk-daily") == 2
    sent = subprocess.run([sys.executable, "-m", "workers.cli", "digest", "send", "desk-daily"], env=env,
                          capture_output=True, text=True, check=False)
    assert sent.returncode == 0 and "sent with 2 alerts" in sent.stdout, sent.stderr
    assert len(inbox.messages) == 1 and p.client.llen("alerts:outbox:digest:desk-daily") == 0
    assert email.message_from_bytes(inbox.messages[0].as_bytes(), policy=email.policy.default)["Subject"]


def test_digest_subject_is_checked_and_prices_keep_their_baseline(p: Pipeline, rules_dir: Path) -> None:
    import json

    from alerts.rules.load import load_rules

    (rules_dir / "bad.yaml").write_text('digests:\n  - {name: x, schedule: "0 8 * * *", to: [a@b.c], '
                                        'subject: "{{ cnt }}"}\n')
    problems = [str(q) for q in load_rules(rules_dir).problems]
    assert any("digests: x: subject: unknown field 'cnt'" in q for q in problems), problems
    (rules_dir / "bad.yaml").unlink()
    assert run_due(digests(p), p.settings, p.rules, MONDAY_0805)["desk-daily"] == "sent with 2 alerts"
    # the next (empty) slot sends nothing and keeps the prices the last email showed, for the next change
    assert run_due(digests(p), p.settings, p.rules, MONDAY_0805 + 86400)["desk-daily"] == "nothing to send"
    state = json.loads(p.client.get("alerts:digest:desk-daily:state"))  # type: ignore[arg-type]
    assert state["prices"] == {"prndoxide": 452000.0}
    # a preview names when the last digest really went out, not the time of the preview
    p.run(quote(440_000, "2025-03-03"), quote(455_000, "2025-03-04"))  # below, then above again
    msg, _, _ = compose(digests(p), p.settings, p.rules, p.rules.digests["desk-daily"], MONDAY_0805 + 3 * 86400)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("1 alerts since the last digest (sent 2025-03-03 08:05 +08:00)"), text  # not "CST"
    assert "Pr-Nd oxide: 455,000 CNY/t on 2025-03-04 (+0.7%)" in text
