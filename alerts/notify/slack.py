"""Slack through slack_sdk's WebClient (``chat.postMessage``) at ``ALERTS_SLACK_API_URL``.

Errors are sorted the way Alertmanager sorts them: the ones that cannot succeed as configured
(bad token, unknown channel, bot not in the channel) are permanent; rate limits, 5xx and
connection problems are retryable, and a 429 carries Slack's Retry-After.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.errors import PermanentDeliveryError, RetryableDeliveryError
from alerts.model import Alert
from alerts.notify.blocks import blocks, fallback_text
from alerts.notify.summary import slack_escape
from alerts.settings import Settings
from alerts.targets import Target

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
    def __init__(self, client: WebClient):
        self.client = client

    @classmethod
    def for_settings(cls, settings: Settings) -> SlackNotifier:
        assert settings.slack_bot_token is not None
        return _cached(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)

    def send(self, alert: Alert, target: Target) -> str | None:
        """Post the alert; returns the channel id Slack answered with."""
        response = self._post(str(target), channel=target.value, text=fallback_text(alert), blocks=blocks(alert),
                              metadata={"event_type": METADATA_TYPE, "event_payload": {"alert_id": alert.id}})
        channel = response.get("channel") if response is not None else None
        return channel if isinstance(channel, str) else None

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
                    raise RetryableDeliveryError(where, "history rate limited", float(after) if after else 30.0) \
                        from None
                if status >= 500 or error in RETRYABLE_ERRORS:
                    raise RetryableDeliveryError(where, f"cannot read the channel history: {error or status}") \
                        from None
                raise PermanentDeliveryError(where, f"cannot read the channel history: {error or status}") from None
            except (SlackClientError, OSError) as exc:
                raise RetryableDeliveryError(f"slack:{channel_id}", f"cannot read the channel history: "
                                             f"{type(exc).__name__}") from None
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
        try:
            return self.client.chat_postMessage(unfurl_links=False, unfurl_media=False, **kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise RetryableDeliveryError(target, "rate limited by Slack",
                                             float(retry_after) if retry_after else None) from None
            if status >= 500 or error in RETRYABLE_ERRORS:
                raise RetryableDeliveryError(target, f"Slack answered {status} {error}".strip()) from None
            raise PermanentDeliveryError(target, f"Slack refused the message: {error or status}") from None
        except (SlackClientError, OSError) as exc:
            raise RetryableDeliveryError(target, f"cannot reach Slack: {type(exc).__name__}") from None


@lru_cache(maxsize=8)
def _cached(token: str, base_url: str) -> SlackNotifier:
    # no retry handlers: slack_sdk would resend a post whose connection dropped after Slack took it (and
    # sleep in the worker); rq's Retry and the attempt marker do that job
    return SlackNotifier(WebClient(token=token, base_url=base_url, timeout=TIMEOUT, retry_handlers=[]))
