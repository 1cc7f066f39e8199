"""What deliveries keep in Redis: the markers that make a delivery happen once, the send lock, the
ids of Slack channels known by name, the digests' queues, and pacing.

Keys: ``P:delivered:{alert}:{target}`` (delivered), ``P:attempt:{alert}:{target}`` (a send began),
``P:sending:{alert}:{target}`` (one sender at a time), ``P:slackchannel:{name}``, ``P:slackmsg:{alert}:{target}`` (the
Slack message an alert was posted as: a hash of its channel id, ts and the alert's wire form, and the correction
lines added to it, ``c:{follow-up id}``), ``P:outbox:digest:{name}``, ``P:pace:{channel}``.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Literal

import redis

from alerts.model import Alert
from alerts.store import pacing
from alerts.store.keys import MARKER_TTL, Keys
from alerts.store.locks import release

#: Where a delivery stands, as ``alerts history`` shows it.
Outcome = Literal["delivered", "held", "retrying", "failed", "silenced"]
#: Seconds an outcome is kept: as long as the alerts themselves (the alert stream's 90 days).
OUTCOME_TTL = 90 * 86400


def outcomes_key(keys: Keys, alert_id: str) -> str:
    return f"{keys.prefix}:outcome:{alert_id}"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class DeliveryStore:
    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys

    # --- once ------------------------------------------------------------------------------------

    def delivered(self, alert_id: str, target: str) -> bool:
        return bool(self.client.exists(self.keys.delivered(alert_id, target)))

    def mark_delivered(self, alert_id: str, target: str) -> None:
        """Delivered; the attempt marker goes with it, in one transaction (and the outcome for history)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.delivered(alert_id, target), 1, ex=MARKER_TTL)
        pipe.delete(self.keys.attempt(alert_id, target))
        self._note(pipe, alert_id, target, "delivered", None)
        pipe.execute()

    # --- outcomes, for ``alerts history`` --------------------------------------------------------

    def note(self, alert_id: str, target: str, status: Outcome, reason: str | None = None) -> None:
        """Record where a delivery stands: held (quiet hours, pacing, a rate limit: with until when),
        retrying or failed (with why), silenced (``silence ID``). The latest outcome per target is kept for
        ``OUTCOME_TTL``."""
        pipe = self.client.pipeline(transaction=False)
        self._note(pipe, alert_id, target, status, reason)
        pipe.execute()

    def _note(self, pipe: redis.client.Pipeline, alert_id: str, target: str, status: Outcome,
              reason: str | None) -> None:
        key = outcomes_key(self.keys, alert_id)
        pipe.hset(key, target, json.dumps({"status": status, "at": time.time(), "reason": reason}))
        pipe.expire(key, OUTCOME_TTL)

    def outcomes(self, alert_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """alert id -> target -> {"status", "at", "reason"} (one pipelined read)."""
        pipe = self.client.pipeline(transaction=False)
        for aid in alert_ids:
            pipe.hgetall(outcomes_key(self.keys, aid))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for aid, raw in zip(alert_ids, pipe.execute() if alert_ids else [], strict=True):
            got = {}
            for target, value in raw.items():
                with contextlib.suppress(ValueError):
                    got[target.decode()] = json.loads(value)
            out[aid] = got
        return out

    def attempt_began(self, alert_id: str, target: str) -> float | None:
        """When a send of this delivery began and never recorded its outcome (its worker died), or None."""
        began = self.client.get(self.keys.attempt(alert_id, target))
        return float(began) if began is not None else None  # type: ignore[arg-type]

    def begin_attempt(self, alert_id: str, target: str) -> None:
        self.client.set(self.keys.attempt(alert_id, target), time.time(), ex=MARKER_TTL)

    def forget_attempt(self, alert_id: str, target: str) -> None:
        """The channel answered that nothing was delivered."""
        self.client.delete(self.keys.attempt(alert_id, target))

    def lock_send(self, alert_id: str, target: str, holder: str, ttl: int) -> Literal["taken", "mine", "held"]:
        """Take the send lock of one delivery for ``ttl`` seconds. "mine": ``holder`` held it already (a run
        of the same job whose worker died); "held": someone else is sending it right now."""
        key = self.keys.sending(alert_id, target)
        if self.client.set(key, holder, nx=True, ex=ttl):
            return "taken"
        if _text(self.client.get(key)) != holder:  # type: ignore[arg-type]
            return "held"
        self.client.set(key, holder, ex=ttl)
        return "mine"

    def unlock_send(self, alert_id: str, target: str, holder: str) -> None:
        release(self.client, self.keys.sending(alert_id, target), holder)

    # --- channels ---------------------------------------------------------------------------------

    def slack_channel_id(self, name: str) -> str | None:
        """The id of a Slack channel known by name (``#desk``), learnt from Slack's answers, or None."""
        return _text(self.client.get(self.keys.slack_channel(name)))  # type: ignore[arg-type]

    def remember_slack_channel(self, name: str, channel_id: str) -> None:
        self.client.set(self.keys.slack_channel(name), channel_id)

    def remember_slack_message(self, alert_id: str, target: str, channel_id: str, ts: str,
                               alert: dict[str, Any]) -> None:
        """The Slack message ``alert_id`` was posted as to ``target``: its channel id and ts, and the alert (its
        wire form), kept as long as the delivery markers (a correction's follow-up replies in its thread and updates
        it)."""
        key = self.keys.slack_message(alert_id, target)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={"channel": channel_id, "ts": ts, "alert": json.dumps(alert, ensure_ascii=False)})
        pipe.expire(key, MARKER_TTL)
        pipe.execute()

    def slack_message(self, alert_id: str, target: str) -> dict[str, Any] | None:
        """{"channel", "ts", "alert": the wire form, "lines": the correction lines added, oldest first}, or None."""
        raw = self.client.hgetall(self.keys.slack_message(alert_id, target))
        fields = {k.decode(): v.decode() for k, v in raw.items()}  # type: ignore[union-attr]
        if "channel" not in fields or "ts" not in fields:
            return None
        lines = sorted(json.loads(v) for k, v in fields.items() if k.startswith("c:"))
        try:
            alert = json.loads(fields.get("alert", "null"))
        except ValueError:
            alert = None
        return {"channel": fields["channel"], "ts": fields["ts"], "alert": alert, "lines": [t for _, t in lines]}

    def add_correction_line(self, alert_id: str, target: str, followup_id: str, line: str) -> None:
        """Note that the follow-up ``followup_id`` adds ``line`` to the message of ``alert_id`` (once: a retry keeps
        the first time it was noted, which orders the lines)."""
        key = self.keys.slack_message(alert_id, target)
        self.client.hsetnx(key, f"c:{followup_id}", json.dumps([time.time(), line], ensure_ascii=False))

    def queue_for_digest(self, name: str, alert: Alert) -> None:
        self.client.rpush(self.keys.outbox("digest", name), json.dumps(alert.to_dict(), ensure_ascii=False))

    def reserve_slot(self, channel: str, rate: float, burst: int) -> float:
        """A send slot in ``channel``'s token bucket: 0 to send now (recorded as the channel's last send),
        else the seconds until the reserved slot."""
        wait = pacing.reserve(self.client, self.keys.pace(channel), rate, burst)
        if wait <= 0:
            pacing.sent(self.client, self.keys.pace(channel))
        return wait

    def space_reserved(self, channel: str, rate: float) -> float:
        """For a send whose slot was reserved: 0 to send now, else the seconds until one interval after the
        channel's last send (reserved slots released together go one by one)."""
        return pacing.space(self.client, self.keys.pace(channel), rate)
