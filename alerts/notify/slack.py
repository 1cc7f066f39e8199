"""Slack through slack_sdk's WebClient (``chat.postMessage``) at ``ALERTS_SLACK_API_URL``.

Errors are sorted the way Alertmanager sorts them: the ones that cannot succeed as configured
(bad token, unknown channel, bot not in the channel) are permanent; rate limits, 5xx and
connection problems are retryable, and a 429 carries Slack's Retry-After.

Each message posted is remembered (``alerts.store.delivery.DeliveryStore.remember_slack_message``: channel id, ts,
the alert). The follow-up of an alert whose quote the vendor corrected (kind ``correction``) is posted in the thread
of the original's message when it is known (else as a message of its own, which names the original), and the
original is updated (``chat.update``) with a line "based on a price SMM corrected from 452,000 to 448,000 CNY/t".
Both steps can be run again: the reply is not posted twice (its own message is remembered) and the update sets the
same blocks; an update Slack refuses (the original deleted, say) is logged, the follow-up stays delivered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.errors import PermanentDeliveryError, RetryableDeliveryError, transport_category
from alerts.model import Alert
from alerts.notify.base import Pacing
from alerts.notify.blocks import blocks, fallback_text, slack_escape
from alerts.settings import Settings
from alerts.store.delivery import DeliveryStore
from alerts.targets import Target
from alerts.units import format_price

log = logging.getLogger(__name__)

#: Seconds to wait for Slack to answer one call.
TIMEOUT = 10
#: Message metadata type marking our messages (with the alert id), to find them again.
METADATA_TYPE = "alerts_alert"
#: Pages of channel history read, at most, when checking for a message sent by a dead attempt.
HISTORY_PAGES = 5
#: Slack error codes that mean "try again later".
RETRYABLE_ERRORS = frozenset({
    "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "timeout",
})


class SlackNotifier:
    """``slack:#name``, ``slack:C0123ABCD``, or a direct message to a user, ``slack:@U0123ABCD``. Learns the id of a
    channel known by name (or of the user's direct-message channel) from Slack's answers (kept in Redis), so that a
    later delivery can look for its message in the channel's history."""

    def __init__(self, client: WebClient, store: DeliveryStore, rate: float = 1.0, burst: int = 3):
        self.client = client
        self.store = store
        self.rate = rate
        self.burst = burst

    @classmethod
    def for_settings(cls, settings: Settings, store: DeliveryStore) -> SlackNotifier:
        assert settings.slack_bot_token is not None
        web = _web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
        return cls(web, store, settings.slack_rate_per_second, settings.slack_burst)

    def pacing(self, target: Target) -> Pacing:
        """About one message per second per channel, with short bursts (Slack's own limit)."""
        return Pacing(f"slack:{target.value}", self.rate, self.burst)

    def send(self, alert: Alert, target: Target) -> None:
        """Post the alert, and remember the message and the id of a channel known by name; a correction's follow-up
        goes in the thread of the original's message, which it updates."""
        if alert.kind == "correction" and alert.corrects:
            return self._send_followup(alert, target, alert.corrects)
        self._post_alert(alert, target, _channel(target))
        return None

    def _post_alert(self, alert: Alert, target: Target, channel: str, thread_ts: str | None = None) -> None:
        extra = {"thread_ts": thread_ts} if thread_ts is not None else {}
        response = self._post(str(target), channel=channel, text=fallback_text(alert), blocks=blocks(alert),
                              metadata={"event_type": METADATA_TYPE, "event_payload": {"alert_id": alert.id}}, **extra)
        channel_id = response.get("channel") if response is not None else None
        ts = response.get("ts") if response is not None else None
        if isinstance(channel_id, str) and target.value.startswith(("#", "@")):  # a name, or a user's DM channel
            self.store.remember_slack_channel(target.value, channel_id)
        if isinstance(channel_id, str) and isinstance(ts, str):
            self.store.remember_slack_message(alert.id, str(target), channel_id, ts, alert.to_wire())

    def _send_followup(self, alert: Alert, target: Target, original_id: str) -> None:
        original = self.store.slack_message(original_id, str(target))
        if self.store.slack_message(alert.id, str(target)) is None:  # not posted yet (a retry after the update)
            if original is not None:
                self._post_alert(alert, target, original["channel"], thread_ts=original["ts"])
            else:  # the original was not posted here, or too long ago: a message of its own (its text names it)
                self._post_alert(alert, target, _channel(target))
        if original is None or not isinstance(original.get("alert"), dict):
            return
        self.store.add_correction_line(original_id, str(target), alert.id, correction_line(alert))
        self._update_original(original_id, target)

    def _update_original(self, original_id: str, target: Target) -> None:
        """The original message again, with every correction line noted for it (the same blocks on a retry)."""
        original = self.store.slack_message(original_id, str(target))
        if original is None:
            return
        try:
            first = Alert.from_wire(original["alert"])
        except ValueError:
            log.warning("the message of %s in %s cannot be updated: its alert is not readable", original_id, target)
            return
        body = blocks(first)
        notes = [{"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(line)}]}
                 for line in original["lines"]]
        body[-1:-1] = notes  # above the buttons
        try:
            self._call(str(target), self.client.chat_update, channel=original["channel"], ts=original["ts"],
                       text=fallback_text(first), blocks=body)
        except PermanentDeliveryError as exc:  # the follow-up is delivered; only the original stays as it was
            log.warning("the message of %s in %s was not updated with its correction: %s", original_id, target,
                        exc.reason)

    def already_sent(self, alert: Alert, target: Target, since: float) -> bool:
        """Whether the channel holds our message for this alert (remembered when posted, else by the alert id in
        its metadata in the channel's history). False when that cannot be known (channel id never learnt, no
        history scope): it may then be sent twice. A correction's follow-up says False: its send does each of its
        steps once by itself."""
        if alert.kind == "correction":
            return False
        if self.store.slack_message(alert.id, str(target)) is not None:
            return True
        channel = self.store.slack_channel_id(target.value) if target.value.startswith(("#", "@")) else target.value
        if channel is None:
            log.warning("cannot check %s for a message of a dead attempt (channel id unknown): it may be sent twice",
                        target)
            return False
        try:
            return self.already_posted(channel, alert.id, since)
        except PermanentDeliveryError as exc:  # no history scope, say: better a possible duplicate than a lost alert
            log.warning("cannot check %s for a message of a dead attempt (%s): it may be sent twice", target,
                        exc.reason)
            return False

    def already_posted(self, channel_id: str, alert_id: str, since: float) -> bool:
        """Whether the channel holds a message of ours for this alert posted since ``since`` (epoch s):
        what a delivery checks before sending again after an attempt that died half way."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            try:
                page = self.client.conversations_history(channel=channel_id, oldest=f"{since:.6f}", limit=200,
                                                         include_all_metadata=True, cursor=cursor)
            except SlackApiError as exc:
                status = exc.response.status_code
                error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
                where = f"slack:{channel_id}"
                if status == 429 or error == "ratelimited":
                    after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                    raise RetryableDeliveryError(where, "history rate limited", float(after) if after else 30.0,
                                                 "http_429") \
                        from None
                if status >= 500 or error in RETRYABLE_ERRORS:
                    raise RetryableDeliveryError(where, f"cannot read the channel history: {error or status}",
                                                 category="http_5xx" if status >= 500 else "other") from None
                raise PermanentDeliveryError(where, f"cannot read the channel history: {error or status}") from None
            except (SlackClientError, OSError) as exc:
                raise RetryableDeliveryError(f"slack:{channel_id}", f"cannot read the channel history: "
                                             f"{type(exc).__name__}", category=transport_category(exc)) from None
            for message in page.get("messages") or []:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == METADATA_TYPE and (meta.get("event_payload") or {}).get(
                        "alert_id") == alert_id:
                    return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False
        return False

    def post_text(self, channel: str, text: str) -> None:
        """A plain message (operations notices), escaped."""
        self._post(f"slack:{channel}", channel=channel, text=slack_escape(text))

    def _post(self, target: str, **kwargs: Any) -> Any:
        return self._call(target, self.client.chat_postMessage, unfurl_links=False, unfurl_media=False, **kwargs)

    def _call(self, target: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """A Web API call, its errors sorted: Retryable (429 with Retry-After, 5xx, transport) or Permanent."""
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise RetryableDeliveryError(target, "rate limited by Slack",
                                             float(retry_after) if retry_after else None, "http_429") from None
            if status >= 500 or error in RETRYABLE_ERRORS:
                raise RetryableDeliveryError(target, f"Slack answered {status} {error}".strip(),
                                             category="http_5xx" if status >= 500 else "other") from None
            raise PermanentDeliveryError(target, f"Slack refused the message: {error or status}") from None
        except (SlackClientError, OSError) as exc:
            raise RetryableDeliveryError(target, f"cannot reach Slack: {type(exc).__name__}",
                                         category=transport_category(exc)) from None


def correction_line(alert: Alert) -> str:
    """The line a correction's follow-up adds to the original message (plain text: escaped where it is shown)."""
    old = format_price(alert.superseded) if alert.superseded is not None else "?"
    new = format_price(alert.price) if alert.price is not None else "?"
    verdict = "still holds" if alert.still_holds else "no longer holds"
    return (f"\u270f\ufe0f Based on a price {alert.source} corrected from {old} to {new} {alert.unit or ''}".rstrip()
            + f" ({alert.as_of}): the condition {verdict}. See the thread.")


def token_problem(settings: Settings) -> str | None:
    """Asks Slack (``auth.test``) whether ALERTS_SLACK_BOT_TOKEN works: None when it does (or is not set), else
    one line saying what is wrong (the token itself is never in it)."""
    if settings.slack_bot_token is None:
        return None
    web = _web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        web.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        status = exc.response.status_code
        if status >= 500 or status == 429 or error in RETRYABLE_ERRORS:
            return f"cannot check ALERTS_SLACK_BOT_TOKEN now: Slack answered {status} {error}".strip()
        return (f"Slack refuses ALERTS_SLACK_BOT_TOKEN ({error or status}): no Slack message can be delivered "
                "until it is replaced")
    except (SlackClientError, OSError) as exc:
        return f"cannot check ALERTS_SLACK_BOT_TOKEN now: cannot reach Slack ({type(exc).__name__})"
    return None


@lru_cache(maxsize=8)
def _channel(target: Target) -> str:
    """What chat.postMessage is given: a channel name or id, or for a direct message (``slack:@U0123ABCD``) the
    user id, which Slack posts in the user's direct messages with the app (it answers with that channel's id)."""
    return target.value[1:] if target.value.startswith("@") else target.value


def _web_client(token: str, base_url: str) -> WebClient:
    # no retry handlers: slack_sdk would resend a post whose connection dropped after Slack took it (and
    # sleep in the worker); rq's Retry and the attempt marker do that job
    return WebClient(token=token, base_url=base_url, timeout=TIMEOUT, retry_handlers=[])
