"""Digests: ``digest:NAME`` targets queue alerts (``DigestNotifier``); the digest is sent on its cron
schedule (the ``digests`` periodic job), or now (``alerts digest send``).

One email per digest per scheduled slot, whatever the number of schedulers and restarts: a sender
takes the digest's lock (SET NX, one sender at a time, scheduled or by hand) before reading and
sending, and records the slot as sent in the same transaction that removes the sent alerts from the
digest's list. A slot missed while everything was down is sent
once when the service returns (missed slots are not sent one by one: the next digest covers them).
When the mail relay is down, the lock is released and the alerts stay queued; the next pass tries
again. ``preview`` builds the same email without sending or consuming anything.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from email.message import EmailMessage
from typing import cast
from zoneinfo import ZoneInfo

from croniter import croniter

from alerts.errors import DeliveryError
from alerts.model import Alert
from alerts.notify.base import Unpaced
from alerts.notify.digest_email import PriceLine, build
from alerts.notify.email import smtp_send
from alerts.rules.compiled import RuleSet
from alerts.rules.models import Digest
from alerts.settings import Settings
from alerts.store.delivery import DeliveryStore
from alerts.store.digests import DigestStore
from alerts.targets import Target

log = logging.getLogger(__name__)

#: Seconds a sender holds a slot's lock while it builds and sends.
LOCK_TTL = 300
#: Days of quotes in each product's chart.
CHART_DAYS = 30


class DigestNotifier(Unpaced):
    """``digest:NAME``: the alert waits in the digest's queue until the digest goes out. A delivery retried
    after a worker died may queue it twice; the digest shows each alert once."""

    def __init__(self, store: DeliveryStore):
        self.store = store

    def send(self, alert: Alert, target: Target) -> None:
        self.store.queue_for_digest(target.value, alert)


def due_slot(d: Digest, tz: str, now: float) -> datetime:
    """The latest scheduled time at or before ``now``, in the digest's time zone."""
    zone = ZoneInfo(d.timezone or tz)
    return cast(datetime, croniter(d.schedule, datetime.fromtimestamp(now, zone)).get_prev(datetime))


def compose(store: DigestStore, settings: Settings, rules: RuleSet, d: Digest,
            now: float, slot: str | None = None) -> tuple[EmailMessage, int, dict[str, float]]:
    """The email for what is queued now (for the scheduled ``slot``, None when sent by hand), how many queue
    entries it covers (to remove once sent), and the prices it shows."""
    queued = store.queued(d.name)
    items = list({a.get("id"): a for a in queued}.values())  # each alert once (a retried delivery may queue it twice)
    state = store.state(d.name)
    previous = state.get("prices", {})
    lines, charts, shown = [], {}, {}
    for name in dict.fromkeys(a["product"] for a in items if a.get("product")):
        product = rules.catalog.find(name)
        if product is None:
            continue
        q = store.latest_quote(product.key)
        if q is None:
            continue
        lines.append(PriceLine(product.name, q.price, product.unit_text, q.as_of_date, previous.get(product.key)))
        shown[product.key] = q.price
        charts[product.name] = store.quotes_since(product.key, now - CHART_DAYS * 86400)
    zone = ZoneInfo(d.timezone or settings.timezone)
    last_sent = datetime.fromtimestamp(state["sent_at"], zone) if state.get("sent_at") else None
    msg = build(d, items, lines, charts, datetime.fromtimestamp(now, zone), settings.email_from, last_sent, slot)
    return msg, len(queued), shown


def send_digest(store: DigestStore, settings: Settings, rules: RuleSet, name: str, slot: str | None,
                now: float | None = None) -> str:
    """Send digest ``name`` for its scheduled ``slot`` (once), or now when ``slot`` is None."""
    now = time.time() if now is None else now
    d = rules.digests[name]
    if not store.lock(name, LOCK_TTL):  # one sender per digest at a time, scheduled or by hand
        return "another sender is sending this digest"
    state = store.state(name)  # read under the lock
    if slot is not None and state.get("slot", "") >= slot:
        store.unlock(name)
        return "already sent"
    try:
        msg, count, shown = compose(store, settings, rules, d, now, slot)
        if count or d.send_empty:
            smtp_send(settings, msg, f"digest:{name}")
    except DeliveryError as exc:
        store.unlock(name)  # let the next pass try again; the alerts stay queued
        log.error("digest %s not sent, will try again: %s", name, exc.reason)
        return f"not sent: {exc.reason}"
    prices = {**state.get("prices", {}), **shown}  # a digest that does not show a product keeps its baseline
    emailed = bool(count or d.send_empty)  # sent_at: when an email last went out (a preview names it)
    store.sent(name, count, {"slot": slot or state.get("slot", ""), "sent_at": now if emailed else state.get("sent_at"),
                             "count": count, "prices": prices})
    if count or d.send_empty:
        log.info("digest %s (%s): sent with %d alerts", name, slot, count)
    else:
        log.debug("digest %s (%s): empty, not sent", name, slot)
    return f"sent with {count} alerts" if count or d.send_empty else "nothing to send"


def run_due(store: DigestStore, settings: Settings, rules: RuleSet, now: float | None = None) -> dict[str, str]:
    """Send every digest whose latest slot was not sent yet."""
    now = time.time() if now is None else now
    out = {}
    for name, d in rules.digests.items():
        slot = due_slot(d, settings.timezone, now).isoformat()
        if store.state(name).get("slot", "") < slot:
            out[name] = send_digest(store, settings, rules, name, slot, now)
    return out
