"""The rq job that delivers one alert to one target, through the target's notifier (``alerts.notify``).

- Exactly once, as far as a user can tell: a ``delivered`` marker is set right after the channel
  accepted the message, and checked first; a short ``sending`` lock keeps two copies of a job (a
  retry racing a job rq thought abandoned) from sending at once. Before a send an ``attempt`` marker
  is written; a later run that finds one (the worker died mid-send) first asks the notifier whether
  the message is there (Slack looks in the channel's history by the alert id in the message's
  metadata) and sends only if it is not. The window left for Slack: a channel known only by name to
  which nothing was ever delivered before (its id is learnt from Slack's answers), or a history Slack
  cannot show (the bot lacks channels:history). Email and webhooks cannot be asked afterwards: a
  worker killed between the relay (or receiver) accepting and the marker write, one Redis round
  trip, sends again on retry.
- Silences (``alerts silence``): a delivery that an active silence matches is dropped before anything else
  (quiet hours, pacing), its outcome recorded as ``silenced`` with the silence's id; an until-resolved
  silence the alert ends is expired here (``alerts.silence.model.decide``).
- Pacing: the notifier says how its channel is paced (Slack: about one message per second per
  channel, bursts of three; ``alerts.store.pacing``). A message without a free slot reserves the next
  one and is rescheduled for it (rq's scheduler); no worker sleeps.
- Slack's 429: rescheduled after its Retry-After, not slept through, without using up a retry.
- 5xx and connection errors: raised, so rq's Retry runs again with backoff.
- Errors that cannot succeed (invalid_auth, channel_not_found, not_in_channel): failed at once,
  recorded for ``alerts failed`` and, when ALERTS_OPS_SLACK_CHANNEL is set, told to it once.

The job's settings come from the worker that runs it (``workers.roles.delivery_worker.DeliveryWorker``, built
by ``alerts run`` and ``alerts worker`` with their settings and rule set); a plain ``rq worker`` gets them from
the environment.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import redis
from rq import Callback, Queue, Retry
from rq.exceptions import AbandonedJobError
from rq.job import Job, get_current_job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from alerts.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alerts.model import Alert
from alerts.notify.base import Notifier
from alerts.notify.notifiers import Notifiers
from alerts.rules.compiled import RuleSet, WebhookConfig
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.silence.model import decide
from alerts.store import failures
from alerts.store.delivery import DeliveryStore
from alerts.store.keys import Keys
from alerts.store.metrics import (
    ALERT_TO_DELIVERY,
    DELIVERIES_FAILED,
    DELIVERIES_RETRIED,
    DELIVERIES_SENT,
    PUBLISH_TO_DELIVERY,
    Metric,
    Recorder,
)
from alerts.store.silences import RESOLVED, SilenceError, SilenceStore
from alerts.targets import channel_of, parse_target

log = logging.getLogger(__name__)

#: The job function, by the import path rq stores with each job (stable across releases: queued jobs
#: name it).
DELIVER = "workers.deliver.deliver"
#: Seconds rq lets one delivery run.
JOB_TIMEOUT = 60
#: Seconds a worker holds the send lock of one (alert, target): longer than a delivery may run.
SENDING_TTL = JOB_TIMEOUT + 30
#: Reschedulings (pacing, 429) one delivery may go through before it counts as failed.
MAX_DEFERRALS = 50
#: Seconds: a pacing slot this close is taken at once rather than rescheduled for.
SLOT_TOLERANCE_SECONDS = 0.05
#: What Redis going away (or a failover: a write reaching a demoted primary) raises.
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError)


@dataclass(frozen=True)
class Delivery:
    """What delivery jobs need: the settings, and the rule set for webhook definitions."""

    settings: Settings
    rules: Callable[[], RuleSet] | None = None  # None: loaded from ALERTS_RULES_DIR when a webhook needs it

    def webhooks(self) -> Mapping[str, WebhookConfig]:
        if self.rules is not None:
            return self.rules().webhooks
        return _rules_of(self.settings.rules_dir, self.settings.timezone).webhooks

    def notifiers(self, store: DeliveryStore) -> Notifiers:
        return Notifiers(self.settings, store, self.webhooks)


@lru_cache(maxsize=4)
def _rules_of(rules_dir: object, timezone: str) -> RuleSet:
    return load_rules(str(rules_dir), timezone=timezone)


@lru_cache(maxsize=1)
def from_environment() -> Delivery:
    return Delivery(Settings())


_current: ContextVar[Delivery | None] = ContextVar("delivery", default=None)


@contextlib.contextmanager
def delivering(delivery: Delivery) -> Iterator[None]:
    """Jobs and failure callbacks run inside this block see ``delivery``."""
    token = _current.set(delivery)
    try:
        yield
    finally:
        _current.reset(token)


def current_delivery() -> Delivery:
    """The delivery of the worker running this job; from the environment under a plain ``rq worker``."""
    return _current.get() or from_environment()


def deliver(alert: dict[str, Any], target: str, reserved: bool = False, deferrals: int = 0) -> str:
    """Deliver ``alert`` (its wire form) to ``target``. ``reserved``: this run holds a pacing slot already;
    ``deferrals``: how many times the delivery was rescheduled."""
    d = current_delivery()
    settings = d.settings
    job = get_current_job()
    assert job is not None, "deliver runs inside an rq worker"
    client = job.connection
    keys = Keys(settings.key_prefix)
    try:
        a = Alert.from_wire(alert)
        t = parse_target(target)
    except ValueError as exc:  # not something any retry can deliver
        refused = PermanentDeliveryError(target, str(exc))
        _refused(client, keys, d, job, alert, target, refused)
        raise refused from None
    store = DeliveryStore(client, keys)
    if store.delivered(a.id, target):
        return "already delivered"
    silenced = _silenced(client, keys, a, target)
    if silenced is not None:
        store.note(a.id, target, "silenced", f"silence {silenced}")
        log.info("delivery of %s to %s silenced (silence %s)", a.id, target, silenced, extra=_ids(alert))
        return f"silenced (silence {silenced})"
    if t.quiet is not None and a.severity != "critical":
        now = datetime.now(ZoneInfo(settings.timezone))
        until = t.quiet_until(now)
        if until is not None:  # held until the quiet period ends; critical alerts go at once
            return _defer(job, d, alert, target, until.timestamp() - now.timestamp(), reserved=False,
                          deferrals=deferrals, why=f"quiet hours until {until:%H:%M}")
    try:
        notifier: Notifier = d.notifiers(store).for_target(t)
    except PermanentDeliveryError as exc:
        _refused(client, keys, d, job, alert, target, exc)
        raise
    pacing = notifier.pacing(t)
    # a slot reserved for this job was used by its first run: rq's retries of it (same arguments) take a new one
    retried = job.retries_left is not None and job.retries_left < len(settings.delivery_retry_intervals_seconds)
    if pacing is not None and (not reserved or retried):
        wait = store.reserve_slot(pacing.channel, pacing.rate, pacing.burst)
        if wait > SLOT_TOLERANCE_SECONDS:
            return _defer(job, d, alert, target, wait, reserved=True, deferrals=deferrals, why="pacing")
    elif pacing is not None:  # its slot was reserved; the scheduler may release several due slots at once
        wait = store.space_reserved(pacing.channel, pacing.rate)
        if wait > SLOT_TOLERANCE_SECONDS:
            return _defer(job, d, alert, target, wait, reserved=True, deferrals=deferrals, why="pacing")
    if store.lock_send(a.id, target, job.id, SENDING_TTL) == "held":  # another job is sending it right now
        return _defer(job, d, alert, target, 5.0, reserved=False, deferrals=deferrals, why="being sent")
    try:
        began = store.attempt_began(a.id, target)
        if began is not None and notifier.already_sent(a, t, began - 60):
            store.mark_delivered(a.id, target)
            log.info("delivery of %s to %s was found in the channel: an attempt that died had sent it", a.id, target)
            return "already in the channel (sent by an attempt that died before recording it)"
        store.begin_attempt(a.id, target)
        notifier.send(a, t)
    except PermanentDeliveryError as exc:
        store.forget_attempt(a.id, target)  # the channel answered: nothing was delivered
        _refused(client, keys, d, job, alert, target, exc)
        raise
    except RetryableDeliveryError as exc:
        if exc.retry_after is not None:  # the channel said when: come back then, without using up a retry
            _count(client, keys, DELIVERIES_RETRIED, channel_of(target), "http_429")
            return _defer(job, d, alert, target, exc.retry_after, reserved=False, deferrals=deferrals,
                          why=exc.reason)
        if not job.retries_left:
            _failed(client, keys, d, job, alert, target, exc, permanent=False)
            raise
        store.note(a.id, target, "retrying", exc.reason)
        log.warning("delivery of %s to %s failed, will retry: %s", a.id, target, exc.reason, extra=_ids(alert))
        raise
    else:  # recorded before the send lock goes: a second copy of the job then sees the marker
        store.mark_delivered(a.id, target)
        _sent(client, keys, job, t.kind)
    finally:
        store.unlock_send(a.id, target, job.id)
    return "delivered"


def _silenced(client: redis.Redis, keys: Keys, a: Alert, target: str) -> str | None:
    """The id of an active silence that drops this delivery, or None (``alerts.silence.model.decide``: one Redis
    read). An until-resolved silence the alert ends (a resolved alert, or a firing after the silence was made)
    is expired here, by "resolved"."""
    now = time.time()
    store = SilenceStore(client, keys)
    verdict = decide(store.for_delivery(now), a, target, now)
    for silence_id, why in verdict.ends:
        with contextlib.suppress(SilenceError):  # another delivery of the same alert ended it first
            store.expire(silence_id, RESOLVED, why, now, a.id)
            log.info("silence %s ended: %s", silence_id, why)
    return verdict.silenced_by


def _refused(client: redis.Redis, keys: Keys, d: Delivery, job: Job, alert: dict[str, Any], target: str,
             exc: PermanentDeliveryError) -> None:
    """A delivery that cannot succeed: no retry (rq marks the job failed at once), kept and told."""
    job.retries_left = 0
    _failed(client, keys, d, job, alert, target, exc, permanent=True)


def _defer(job: Job, d: Delivery, alert: dict[str, Any], target: str, seconds: float, *, reserved: bool,
           deferrals: int, why: str) -> str:
    settings = d.settings
    if deferrals >= MAX_DEFERRALS:
        exc = RetryableDeliveryError(target, f"rescheduled {deferrals} times ({why}); giving up")
        job.retries_left = 0
        _failed(job.connection, Keys(settings.key_prefix), d, job, alert, target, exc, permanent=False)
        raise exc
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    base = job.id.split("__", 1)[0]
    queue.enqueue_in(timedelta(seconds=seconds), deliver, alert, target, reserved, deferrals + 1,
                     job_id=f"{base}__{deferrals + 1}",
                     **job_options(settings, description=job.description or "", meta=dict(job.meta)))
    next_try = datetime.now(ZoneInfo(settings.timezone)) + timedelta(seconds=seconds)
    DeliveryStore(job.connection, Keys(settings.key_prefix)).note(
        str(alert.get("id")), target, "held", f"{why}; next try {next_try:%Y-%m-%d %H:%M:%S}")
    log.info("delivery of %s to %s rescheduled in %.1fs (%s)", alert.get("id"), target, seconds, why)
    return f"rescheduled in {seconds:.1f}s ({why})"


def on_failure(job: Job, connection: redis.Redis, exc_type: type[BaseException] | None,
               exc_value: BaseException | None, tb: object) -> None:
    """rq's failure callback for deliveries (each attempt that raised, or a job whose worker died): on the
    last attempt, whatever went wrong (a timeout, a crash, an error of ours), the failure is kept for
    ``alerts failed`` and told to the ops channel, like a refused delivery."""
    if job.retries_left:  # rq will run it again
        target = [*job.args, None, None][1]
        _count(connection, Keys(current_delivery().settings.key_prefix), DELIVERIES_RETRIED,
               channel_of(target if isinstance(target, str) else ""), reason_of(exc_value))
        return
    alert, target = [*job.args, None, None][:2]
    if not isinstance(alert, dict) or not isinstance(target, str):
        return
    d = current_delivery()
    reason = f"{exc_type.__name__ if exc_type else 'error'}: {exc_value}" if exc_value else "the worker died"
    if isinstance(exc_value, AbandonedJobError):
        reason = "the worker died during the delivery"
    elif isinstance(exc_value, DeliveryError):
        reason = exc_value.reason
    _failed(connection, Keys(d.settings.key_prefix), d, job, alert, target, DeliveryError(target, reason),
            permanent=isinstance(exc_value, PermanentDeliveryError))


#: rq calls this for every failed attempt of a delivery job.
ON_FAILURE = Callback("workers.deliver.on_failure")


def retry_policy(settings: Settings) -> Retry:
    """rq's Retry for deliveries: ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS, one retry per interval."""
    return Retry(max=len(settings.delivery_retry_intervals_seconds), interval=settings.delivery_retry_intervals_seconds)


def job_options(settings: Settings, *, description: str, meta: dict[str, Any], retry: Retry | None = None,
                prepared: bool = False) -> dict[str, Any]:
    """The options of every delivery job, however it is queued (the dispatcher, a reschedule, ``alerts failed
    retry``): the job timeout under the sending lock's TTL, result and failure TTLs, the failure callback and the
    retries. rq's keyword names for ``Queue.enqueue``/``enqueue_in``; ``prepared`` gives ``Queue.prepare_data``'s
    (which calls the timeout ``timeout``). ``retry``: a ``retry_policy`` already built, for a batch."""
    return {"timeout" if prepared else "job_timeout": JOB_TIMEOUT,
            "result_ttl": settings.delivery_result_ttl_seconds,
            "failure_ttl": int(settings.alert_retention_days * 86400),
            "on_failure": ON_FAILURE, "retry": retry or retry_policy(settings),
            "description": description, "meta": meta}


def _failed(client: redis.Redis, keys: Keys, d: Delivery, job: Job, alert: dict[str, Any], target: str,
            exc: DeliveryError, permanent: bool) -> None:
    failure_id = job.meta.get("failure_id") or job.id.split("__", 1)[0]  # a retry by hand keeps its failure's id
    DeliveryStore(client, keys).note(str(alert.get("id")), target, "failed", exc.reason)
    if not failures.record(client, keys, failure_id, alert, target, exc.reason, permanent,
                           retries=int(job.meta.get("retries", 0))):
        return  # kept and told already
    _count(client, keys, DELIVERIES_FAILED, channel_of(target), "refused" if permanent else reason_of(exc))
    log.error("delivery of %s to %s failed%s: %s", alert.get("id"), target, " for good" if permanent else "",
              exc.reason, extra=_ids(alert))
    d.notifiers(DeliveryStore(client, keys)).tell_ops(
        f"alerts: delivery to {target} failed: {exc.reason}. Alert {alert.get('id')} of rule "
        f"{alert.get('rule_id')}. See `alerts failed`; resend with `alerts failed retry {failure_id}`.")


# --- metrics (alerts.store.metrics): written at once, a delivery is slow beside one pipelined round trip ---

def reason_of(exc: BaseException | None) -> str:
    """The ``reason`` label of a failed attempt: refused, or a retry category (``alerts.errors.RETRY_CATEGORIES``:
    http_429, http_5xx, timeout, network, other)."""
    if isinstance(exc, PermanentDeliveryError):
        return "refused"
    if isinstance(exc, JobTimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, RetryableDeliveryError):
        return exc.category
    if isinstance(exc, DeliveryError):
        return "other"
    if isinstance(exc, ConnectionError | OSError):
        return "network"
    return "other"


def describe_failure(exc: BaseException | None) -> str:
    if exc is None:
        return "the worker died"
    if isinstance(exc, DeliveryError):
        return exc.reason
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _count(client: redis.Redis, keys: Keys, metric: Metric, *labels: str) -> None:
    rec = Recorder(keys)
    rec.inc(metric, 1, *labels)
    rec.flush(client)


def _sent(client: redis.Redis, keys: Keys, job: Job, channel: str) -> None:
    rec = Recorder(keys)
    rec.inc(DELIVERIES_SENT, 1, channel)
    alert_at = job.meta.get("alert_at")
    if isinstance(alert_at, int | float):  # the alert stream entry's time, set by the dispatcher
        rec.observe(ALERT_TO_DELIVERY, max(0.0, time.time() - alert_at / 1000), channel)
    alert = job.args[0] if job.args else None
    published = alert.get("published") if isinstance(alert, dict) else None
    if isinstance(published, int | float):  # the fired event's publish time, set by the evaluator
        rec.observe(PUBLISH_TO_DELIVERY, max(0.0, time.time() - published), channel)
    rec.flush(client)


def _ids(alert: Mapping[str, Any]) -> dict[str, str]:
    """The ids a log line about an alert carries (``ALERTS_LOG_FORMAT=json`` shows them as fields)."""
    return {k: str(alert[w]) for k, w in (("alert_id", "id"), ("rule_id", "rule_id"), ("event_id", "event_id"),
                                          ("source", "source")) if alert.get(w) is not None}
