"""``webhook:NAME``: the alert as a JSON POST, signed, through httpx.

The signature scheme, for a receiver to verify (see README.md):

    X-Alerts-Timestamp: 1740456000                  (unix seconds when it was sent)
    X-Alerts-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by the secret>

A receiver recomputes the HMAC over the timestamp, a dot and the exact bytes of the body, compares it
in constant time, and refuses timestamps more than a few minutes old (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from alerts.errors import PermanentDeliveryError, RetryableDeliveryError, transport_category
from alerts.model import Alert
from alerts.notify.base import Unpaced
from alerts.rules.compiled import WebhookConfig
from alerts.targets import Target

#: Seconds to wait for a receiver.
TIMEOUT = 10.0
#: 4xx answers that may succeed later (everything else 4xx is permanent).
RETRYABLE_4XX = frozenset({408, 429})


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookNotifier(Unpaced):
    def __init__(self, config: WebhookConfig):
        self.config = config

    def send(self, alert: Alert, target: Target) -> None:
        body = json.dumps(alert.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {**dict(self.config.headers), "Content-Type": "application/json",
                   "X-Alerts-Timestamp": str(ts),
                   "X-Alerts-Signature": sign(self.config.secret.get_secret_value(), ts, body)}
        try:
            with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
                response = client.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(str(target), f"cannot reach the webhook: {type(exc).__name__}",
                                         category=transport_category(exc)) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429:
            after = response.headers.get("Retry-After")
            raise RetryableDeliveryError(str(target), "rate limited by the receiver",
                                         float(after) if after and after.isdigit() else None, "http_429")
        if status >= 500 or status in RETRYABLE_4XX:
            raise RetryableDeliveryError(str(target), f"the webhook answered {status}",
                                         category="http_5xx" if status >= 500 else "other")
        raise PermanentDeliveryError(str(target), f"the webhook refused the alert: {status}")
