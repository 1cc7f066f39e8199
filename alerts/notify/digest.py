"""Sending digests: on their cron schedule (from the scheduler), or now (``alerts digest send``).

One email per digest per scheduled slot, whatever the number of schedulers and restarts: a sender
takes the digest's lock (SET NX, one sender at a time, scheduled or by hand) before reading and
sending, and records the slot as sent in the same transaction that removes the sent alerts from the
digest's list. A slot missed while everything was down is sent
once when the service returns (missed slots are not sent one by one: the next digest covers them).
When the mail relay is down, the lock is released and the alerts stay queued; the next pass tries
again. ``preview`` builds the same email without sending or consuming anything.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from email.message import EmailMessage
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis
from croniter import croniter

from alerts.errors import DeliveryError
from alerts.notify.digest_email import PriceLine, build
from alerts.notify.email import smtp_send
from alerts.rules.compiled import RuleSet
from alerts.rules.models import Digest
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.state import decode_state

log = logging.getLogger("alerts.digests")

#: Seconds a sender holds a slot's lock while it builds and sends.
LOCK_TTL = 300
#: Days of quotes in each product's chart.
CHART_DAYS = 30


def due_slot(d: Digest, tz: str, now: float) -> datetime:
    """The latest scheduled time at or before ``now``, in the digest's time zone."""
    zone = ZoneInfo(d.timezone or tz)
    return cast(datetime, croniter(d.schedule, datetime.fromtimestamp(now, zone)).get_prev(datetime))


def _state(client: redis.Redis, keys: Keys, name: str) -> dict[str, Any]:
    raw = client.get(keys.digest_state(name))
    return json.loads(raw) if raw else {}


def compose(client: redis.Redis, keys: Keys, settings: Settings, rules: RuleSet, d: Digest,
            now: float) -> tuple[EmailMessage, int, dict[str, float]]:
    """The email for what is queued now, how many alerts it holds, and the prices it shows."""
    items = [json.loads(x) for x in cast(list[bytes], client.lrange(keys.outbox("digest", d.name), 0, -1))]
    previous = _state(client, keys, d.name).get("prices", {})
    lines, charts, shown = [], {}, {}
    for name in dict.fromkeys(a["product"] for a in items if a.get("product")):
        product = rules.catalog.find(name)
        if product is None:
            continue
        st = decode_state(cast(dict[bytes, bytes], client.hgetall(keys.state(product.key))))
        if st is None or not st.quotes:
            continue
        q = max(st.quotes.values(), key=lambda q: q.as_of)
        lines.append(PriceLine(product.name, q.price, product.unit_text, q.as_of_date, previous.get(product.key)))
        shown[product.key] = q.price
        points: list[tuple[float, float]] = []
        for key in client.scan_iter(match=f"{keys.history(product.key, '')}*"):
            for member, score in cast(list[tuple[bytes, float]], client.zrangebyscore(
                    key, now - CHART_DAYS * 86400, "+inf", withscores=True)):
                points.append((score, float(json.loads(member)[1])))
        charts[product.name] = sorted(points)
    zone = ZoneInfo(d.timezone or settings.timezone)
    msg = build(d, items, lines, charts, datetime.fromtimestamp(now, zone), settings.email_from)
    return msg, len(items), shown


def send_digest(client: redis.Redis, settings: Settings, rules: RuleSet, name: str, slot: str | None,
                now: float | None = None) -> str:
    """Send digest ``name`` for its scheduled ``slot`` (once), or now when ``slot`` is None."""
    now = time.time() if now is None else now
    keys = Keys(settings.key_prefix)
    d = rules.digests[name]
    lock = keys.digest_lock(name)  # one sender per digest at a time, scheduled or by hand
    if not client.set(lock, 1, nx=True, ex=LOCK_TTL):
        return "another sender is sending this digest"
    state = _state(client, keys, name)  # read under the lock
    if slot is not None and state.get("slot", "") >= slot:
        client.delete(lock)
        return "already sent"
    try:
        msg, count, shown = compose(client, keys, settings, rules, d, now)
        if count or d.send_empty:
            smtp_send(settings, msg, f"digest:{name}")
    except DeliveryError as exc:
        client.delete(lock)  # let the next pass try again; the alerts stay queued
        log.error("digest %s not sent, will try again: %s", name, exc.reason)
        return f"not sent: {exc.reason}"
    pipe = client.pipeline(transaction=True)
    pipe.ltrim(keys.outbox("digest", name), count, -1)  # what arrived meanwhile stays for the next one
    prices = {**state.get("prices", {}), **shown}  # a digest that does not show a product keeps its baseline
    pipe.set(keys.digest_state(name), json.dumps({"slot": slot or state.get("slot", ""), "sent_at": now,
                                                  "count": count, "prices": prices}))
    pipe.delete(lock)
    pipe.execute()
    log.info("digest %s (%s): %s", name, slot, f"sent with {count} alerts" if count or d.send_empty else "empty")
    return f"sent with {count} alerts" if count or d.send_empty else "nothing to send"


def run_due(client: redis.Redis, settings: Settings, rules: RuleSet, now: float | None = None) -> dict[str, str]:
    """Send every digest whose latest slot was not sent yet."""
    now = time.time() if now is None else now
    keys = Keys(settings.key_prefix)
    out = {}
    for name, d in rules.digests.items():
        slot = due_slot(d, settings.timezone, now).isoformat()
        if _state(client, keys, name).get("slot", "") < slot:
            out[name] = send_digest(client, settings, rules, name, slot, now)
    return out
