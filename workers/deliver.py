"""The rq job that delivers one alert to one target.

- Exactly once, as far as a user can tell: a ``delivered`` marker is set right after the channel
  accepted the message, and checked first; a short ``sending`` lock keeps two copies of a job (a
  retry racing a job rq thought abandoned) from sending at once. Before a Slack send an ``attempt``
  marker is written; a later run that finds one (the worker died mid-send) first looks for the message
  in the channel's history by the alert id in its metadata, and sends only if it is not there. The
  window left for Slack: a channel known only by name to which nothing was ever delivered before
  (its id is learnt from Slack's answers), or a history Slack cannot show (the bot lacks
  channels:history). Email and webhooks cannot be asked afterwards: a worker killed between the
  relay (or receiver) accepting and the marker write, one Redis round trip, sends again on retry.
- Pacing: about one message per second per Slack channel, bursts of three (``alerts.pacing``). A
  message without a free slot reserves the next one and is rescheduled for it (rq's scheduler);
  no worker sleeps.
- Slack's 429: rescheduled after its Retry-After, not slept through, without using up a retry.
- 5xx and connection errors: raised, so rq's Retry runs again with backoff.
- Errors that cannot succeed (invalid_auth, channel_not_found, not_in_channel): failed at once,
  recorded for ``alerts failed`` and, when ALERTS_OPS_SLACK_CHANNEL is set, told to it once.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis
from rq import Callback, Queue, Retry
from rq.job import Job, get_current_job
from rq.serializers import JSONSerializer

from alerts.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alerts.model import Alert
from alerts.notify import notifier_for
from alerts.notify.slack import SlackNotifier
from alerts.rules.compiled import RuleSet, WebhookConfig
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import failures
from alerts.store.keys import MARKER_TTL, Keys
from alerts.store.pacing import reserve
from alerts.targets import Target, parse_target

log = logging.getLogger("alerts.deliver")

#: Seconds rq lets one delivery run.
JOB_TIMEOUT = 60
#: Seconds a worker holds the send lock of one (alert, target): longer than a delivery may run.
SENDING_TTL = JOB_TIMEOUT + 30
#: Reschedulings (pacing, 429) one delivery may go through before it counts as failed.
MAX_DEFERRALS = 50
#: Slots closer than this (seconds) are taken at once rather than rescheduled.
SLACK_SLOT_SLACK = 0.05

_settings: Settings | None = None
_rules: Callable[[], RuleSet] | None = None


def configure(settings: Settings, rules: Callable[[], RuleSet] | None = None) -> None:
    """Settings (and the rule set, for webhook definitions) for ``deliver`` in this process; without
    them, ``deliver`` reads the settings from the environment and the rules from ALERTS_RULES_DIR."""
    global _settings, _rules
    _settings = settings
    _rules = rules


def _webhooks(settings: Settings) -> Mapping[str, WebhookConfig]:
    global _rules
    if _rules is None:
        loaded = load_rules(settings.rules_dir, timezone=settings.timezone)
        _rules = lambda: loaded  # noqa: E731
    return _rules().webhooks


def current_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def deliver(alert: dict[str, Any], target: str, reserved: bool = False, deferrals: int = 0) -> str:
    """Deliver ``alert`` to ``target``. ``reserved``: this run holds a pacing slot already;
    ``deferrals``: how many times the delivery was rescheduled."""
    settings = current_settings()
    job = get_current_job()
    assert job is not None, "deliver runs inside an rq worker"
    client = job.connection
    keys = Keys(settings.key_prefix)
    a = Alert.from_dict(alert)
    marker = keys.delivered(a.id, target)
    if client.exists(marker):
        return "already delivered"
    t = parse_target(target)
    if t.quiet is not None and a.severity != "critical":
        now = datetime.now(ZoneInfo(settings.timezone))
        until = t.quiet_until(now)
        if until is not None:  # held until the quiet period ends; critical alerts go at once
            return _defer(job, settings, alert, target, until.timestamp() - now.timestamp(), reserved=False,
                          deferrals=deferrals, why=f"quiet hours until {until:%H:%M}")
    if t.kind == "digest":
        # Held in Redis for the digest sender.
        pipe = client.pipeline(transaction=True)
        pipe.rpush(keys.outbox(t.kind, t.value), json.dumps(alert, ensure_ascii=False))
        pipe.set(marker, 1, ex=MARKER_TTL)
        pipe.execute()
        return f"queued for {target}"
    if t.kind == "slack" and settings.slack_bot_token is not None and not reserved:
        wait = reserve(client, keys.pace(f"slack:{t.value}"),  # per channel, whatever the target's options
                       settings.slack_rate_per_second, settings.slack_burst)
        if wait > SLACK_SLOT_SLACK:
            return _defer(job, settings, alert, target, wait, reserved=True, deferrals=deferrals, why="pacing")
    lock = keys.sending(a.id, target)
    if not client.set(lock, job.id, nx=True, ex=SENDING_TTL):
        held = client.get(lock)
        holder = held.decode() if isinstance(held, bytes) else held
        if holder != job.id:  # another job is sending it right now
            return _defer(job, settings, alert, target, 5.0, reserved=False, deferrals=deferrals, why="being sent")
        # the lock is this very job's, left by a run whose worker died: rq re-runs a job only after that
        client.set(lock, job.id, ex=SENDING_TTL)
    try:
        notifier = notifier_for(t, settings, _webhooks(settings) if t.kind == "webhook" else None)
        if isinstance(notifier, SlackNotifier) and _sent_by_a_dead_attempt(client, keys, notifier, a.id, t):
            client.set(marker, 1, ex=MARKER_TTL)
            client.delete(keys.attempt(a.id, target))
            log.info("delivery of %s to %s was found in the channel: an attempt that died had sent it", a.id, target)
            return "already in the channel (sent by an attempt that died before recording it)"
        client.set(keys.attempt(a.id, target), time.time(), ex=MARKER_TTL)
        where = notifier.send(a, t)
    except PermanentDeliveryError as exc:
        client.delete(keys.attempt(a.id, target))  # Slack answered: nothing was posted
        job.retries_left = 0  # a retry cannot help; rq marks the job failed at once
        _failed(client, keys, settings, job, alert, target, exc, permanent=True)
        raise
    except RetryableDeliveryError as exc:
        if exc.retry_after is not None:  # Slack said when: come back then, without using up a retry
            return _defer(job, settings, alert, target, exc.retry_after, reserved=False, deferrals=deferrals,
                          why=exc.reason)
        if not job.retries_left:
            _failed(client, keys, settings, job, alert, target, exc, permanent=False)
        log.warning("delivery of %s to %s failed, will retry: %s", a.id, target, exc.reason)
        raise
    else:  # recorded before the send lock goes: a second copy of the job then sees the marker
        pipe = client.pipeline(transaction=True)
        pipe.set(marker, 1, ex=MARKER_TTL)
        pipe.delete(keys.attempt(a.id, target))
        if where and t.kind == "slack" and t.value.startswith("#"):
            pipe.set(keys.slack_channel(t.value), where)
        pipe.execute()
    finally:
        client.eval(_RELEASE, 1, lock, job.id)
    return "delivered"


def _sent_by_a_dead_attempt(client: redis.Redis, keys: Keys, notifier: SlackNotifier, alert_id: str,
                            t: Target) -> bool:
    """A previous attempt began sending and never recorded the outcome (its worker died): look in the
    channel for the message it may have posted, by the alert id in the message metadata."""
    began = client.get(keys.attempt(alert_id, str(t)))
    if began is None:
        return False
    channel_id = t.value if not t.value.startswith("#") else client.get(keys.slack_channel(t.value))
    if channel_id is None:
        log.warning("cannot check %s for a message of a dead attempt (channel id unknown): it may be sent twice", t)
        return False
    channel = channel_id.decode() if isinstance(channel_id, bytes) else channel_id
    try:
        return notifier.already_posted(channel, alert_id, float(began) - 60)
    except PermanentDeliveryError as exc:  # no history scope, say: better a possible duplicate than a lost alert
        log.warning("cannot check %s for a message of a dead attempt (%s): it may be sent twice", t, exc.reason)
        return False


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _defer(job: Job, settings: Settings, alert: dict[str, Any], target: str, seconds: float, *, reserved: bool,
           deferrals: int, why: str) -> str:
    if deferrals >= MAX_DEFERRALS:
        exc = RetryableDeliveryError(target, f"rescheduled {deferrals} times ({why}); giving up")
        job.retries_left = 0
        _failed(job.connection, Keys(settings.key_prefix), settings, job, alert, target, exc, permanent=False)
        raise exc
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    base = job.id.split("__", 1)[0]
    queue.enqueue_in(timedelta(seconds=seconds), deliver, alert, target, reserved, deferrals + 1,
                     job_id=f"{base}__{deferrals + 1}", result_ttl=settings.delivery_result_ttl_seconds,
                     job_timeout=JOB_TIMEOUT, on_failure=ON_FAILURE,
                     retry=retry_policy(settings), description=job.description)
    log.info("delivery of %s to %s rescheduled in %.1fs (%s)", alert.get("id"), target, seconds, why)
    return f"rescheduled in {seconds:.1f}s ({why})"


def on_failure(job: Job, connection: redis.Redis, exc_type: type[BaseException] | None,
               exc_value: BaseException | None, tb: object) -> None:
    """rq's failure callback for deliveries (each attempt that raised, or a job whose worker died): on the
    last attempt, whatever went wrong (a timeout, a crash, an error of ours), the failure is kept for
    ``alerts failed`` and told to the ops channel, like a refused delivery."""
    if job.retries_left:
        return  # rq will run it again
    alert, target = [*job.args, None, None][:2]
    if not isinstance(alert, dict) or not isinstance(target, str):
        return
    settings = current_settings()
    reason = f"{exc_type.__name__ if exc_type else 'error'}: {exc_value}" if exc_value else "the worker died"
    if isinstance(exc_value, DeliveryError):
        reason = exc_value.reason
    _failed(connection, Keys(settings.key_prefix), settings, job, alert, target,
            DeliveryError(target, reason), permanent=isinstance(exc_value, PermanentDeliveryError))


#: rq calls this for every failed attempt of a delivery job.
ON_FAILURE = Callback("workers.deliver.on_failure")


def retry_policy(settings: Settings) -> Retry:
    """rq's Retry for deliveries: ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS, one retry per interval."""
    return Retry(max=len(settings.delivery_retry_intervals_seconds), interval=settings.delivery_retry_intervals_seconds)


def _failed(client: redis.Redis, keys: Keys, settings: Settings, job: Job, alert: dict[str, Any], target: str,
            exc: DeliveryError, permanent: bool) -> None:
    failure_id = job.id.split("__", 1)[0]
    if not failures.record(client, keys, failure_id, alert, target, exc.reason, permanent):
        return  # kept and told already
    log.error("delivery of %s to %s failed%s: %s", alert.get("id"), target, " for good" if permanent else "",
              exc.reason)
    if settings.ops_slack_channel and settings.slack_bot_token is not None:
        text = (f"alerts: delivery to {target} failed: {exc.reason}. Alert {alert.get('id')} of rule "
                f"{alert.get('rule_id')}. See `alerts failed`; resend with `alerts failed retry {failure_id}`.")
        try:
            SlackNotifier.for_settings(settings).post_text(settings.ops_slack_channel, text)
        except DeliveryError as notice_exc:
            log.error("could not tell %s: %s", settings.ops_slack_channel, notice_exc.reason)
