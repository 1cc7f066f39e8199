"""Slack through slack_sdk's WebClient (``chat.postMessage``) at ``ALERTS_SLACK_API_URL``.

Errors are sorted the way Alertmanager sorts them: the ones that cannot succeed as configured
(bad token, unknown channel, bot not in the channel) are permanent; rate limits, 5xx and
connection problems are retryable, and a 429 carries Slack's Retry-After.
"""

from __future__ import annotations

from functools import lru_cache

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.errors import PermanentDeliveryError, RetryableDeliveryError
from alerts.model import Alert
from alerts.notify.message import slack_escape, summary
from alerts.settings import Settings
from alerts.targets import Target

#: Seconds to wait for Slack to answer one call.
TIMEOUT = 10
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

    def send(self, alert: Alert, target: Target) -> None:
        channel = target.value
        text = slack_escape(summary(alert))
        try:
            self.client.chat_postMessage(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            if status == 429 or error == "ratelimited":
                retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise RetryableDeliveryError(str(target), "rate limited by Slack",
                                             float(retry_after) if retry_after else None) from None
            if status >= 500 or error in RETRYABLE_ERRORS:
                raise RetryableDeliveryError(str(target), f"Slack answered {status} {error}".strip()) from None
            raise PermanentDeliveryError(str(target), f"Slack refused the message: {error or status}") from None
        except (SlackClientError, OSError) as exc:
            raise RetryableDeliveryError(str(target), f"cannot reach Slack: {type(exc).__name__}") from None


@lru_cache(maxsize=8)
def _cached(token: str, base_url: str) -> SlackNotifier:
    return SlackNotifier(WebClient(token=token, base_url=base_url, timeout=TIMEOUT))
