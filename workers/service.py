"""Putting the parts together in one process, by role:

- ``evaluate``: the evaluator (event streams -> alerts), and the event-time stage for spreads and
  all_of rules (one running across all processes), in threads;
- ``dispatch``: the dispatcher (alert stream -> rq delivery jobs), in a thread;
- ``deliver``: rq workers that run delivery jobs, one per kind of channel (Slack, email, webhooks, the
  rest), each in a thread (``Deliverers``); the main thread owns SIGINT/SIGTERM: the first signal lets
  the deliveries running finish, then everything stops;
- ``schedule``: the periodic jobs (``workers.roles.periodic``), in a thread;
- ``poll``: the feed pollers (``workers.roles.poller``: the sources file), in a thread and its pool;
- ``http``: the HTTP app (``workers.web.http``: POST /events), uvicorn in a thread;
- ``slack``: the Slack Socket Mode connection (``workers.web.slack_socket``: buttons and ``/alerts`` without a
  public URL), in a thread; it needs ALERTS_SLACK_APP_TOKEN.

``alerts run`` runs every role (``slack`` when ALERTS_SLACK_APP_TOKEN is set); ``alerts worker`` every role but
``http`` (two workers on one machine would want one port) and ``slack`` (Slack takes 10 connections per app
at most: the desk runs one or two), and ``alerts worker --role ...`` the ones named, for operators who scale
evaluators and deliverers separately. Every process watches the rule files.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis

from alerts.errors import ConfigError
from alerts.rules.compiled import RuleSet
from alerts.rules.reload import RuleHolder
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.streams import consumer_name
from workers.deliver import JOB_TIMEOUT, REDIS_UNAVAILABLE, Delivery
from workers.roles.composer import Composer
from workers.roles.delivery_worker import DeliveryWorker, report_token_problem
from workers.roles.dispatch import Dispatcher, queue_names
from workers.roles.evaluator import Evaluator
from workers.roles.heartbeat import Heartbeat
from workers.roles.loop import RETRY_SECONDS
from workers.roles.periodic import Periodic
from workers.roles.poller import Poller
from workers.web.http import HttpServer, check_exposure, make_app
from workers.web.slack_socket import NEEDS_APP_KEY, SocketMode

log = logging.getLogger(__name__)

#: Longest wait between two tries to reach Redis at start-up (seconds).
REDIS_RETRY_MAX_SECONDS = 5.0
#: Every role, in the order they start.
ROLES = ("evaluate", "dispatch", "deliver", "schedule", "poll", "http", "slack")
#: What ``alerts worker`` runs without --role.
WORKER_ROLES = ROLES[:5]


def run_roles(settings: Settings) -> tuple[str, ...]:
    """What ``alerts run`` runs: every role, ``slack`` only with ALERTS_SLACK_APP_TOKEN."""
    return ROLES if settings.slack_app_token is not None else tuple(r for r in ROLES if r != "slack")


def report_rules(rs: RuleSet, settings: Settings) -> None:
    """Log every problem of a rule set (its valid rules still run) and what it holds."""
    for p in rs.problems:
        (log.warning if p.severity == "warning" else log.error)("rule problem: %s", p)
    kinds = Counter(type(compiled[0]).__name__.removesuffix("Rule").lower() for compiled in rs.by_id.values())
    log.info("loaded %d rules (%s) from %d files in %s%s", len(rs.by_id),
             ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())), len(rs.files), settings.rules_dir,
             f"; {len(rs.errors)} problems" if rs.errors else "")
    if settings.slack_bot_token is None and any(
            t.kind == "slack" for rules in rs.by_id.values() for r in rules for t in r.targets):
        msg = "ALERTS_SLACK_BOT_TOKEN is not set: Slack targets are printed to the console instead"
        log.warning(msg)


def serve(client: redis.Redis, settings: Settings, roles: Iterable[str] = ROLES,
          after_start: Callable[[], None] | None = None) -> None:
    """Run the given roles until SIGINT/SIGTERM."""
    wanted = set(roles)
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {', '.join(ROLES)}")
    if "slack" in wanted and settings.slack_app_token is None:
        raise ConfigError(NEEDS_APP_KEY)
    holder = RuleHolder(settings.rules_dir, settings.timezone)
    delivery = Delivery(settings, holder.current)
    report_rules(holder.current(), settings)
    log.info("roles: %s", ", ".join(r for r in ROLES if r in wanted))
    stop = threading.Event()
    _on_signal(stop)  # from here on: a SIGTERM while Redis is awaited or the roles start stops them cleanly
    if not wait_for_redis(client, stop=stop):
        return
    threads = [threading.Thread(target=holder.watch, args=(stop,), name="rules-watch", daemon=True)]
    doing: dict[str, Callable[[], str]] = {}  # role -> what it owns or does now, for its heartbeat
    if "evaluate" in wanted:
        evaluator = Evaluator(client, settings, holder.current)
        threads.append(threading.Thread(target=evaluator.run, args=(stop,), name="evaluator", daemon=True))
        composer = Composer(client, settings, holder.current)
        threads.append(threading.Thread(target=composer.run, args=(stop,), name="composer", daemon=True))
        doing["evaluate"] = lambda: _evaluating(evaluator, composer)
    dispatcher = Dispatcher(client, settings) if "dispatch" in wanted else None
    if dispatcher is not None:
        threads.append(threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True))
        doing["dispatch"] = lambda: "alert stream -> delivery jobs"
    deliverers = Deliverers(client, settings, delivery) if "deliver" in wanted else None
    if deliverers is not None:
        doing["deliver"] = deliverers.doing
    if "schedule" in wanted:
        periodic = Periodic(client, settings, holder.current, delivery, dispatcher)
        threads.append(threading.Thread(target=periodic.run, args=(stop,), name="periodic", daemon=True))
        doing["schedule"] = lambda: "periodic jobs: retries, stale feeds, digests, trimming"
    if "poll" in wanted:
        poller = Poller(client, settings, lambda: holder.current().catalog)  # products added in rule files too
        threads.append(threading.Thread(target=poller.run, args=(stop,), name="poller", daemon=True))
        doing["poll"] = lambda: (f"polling {', '.join(sorted(poller.running))}" if poller.running else
                                 f"{len(poller.sources.sources) if poller.sources else 0} sources, none due")
    if "slack" in wanted:
        socket_mode = SocketMode(client, settings, holder.current)  # ConfigError without the app token
        threads.append(threading.Thread(target=socket_mode.run, args=(stop,), name="slack-socket", daemon=True))
        doing["slack"] = socket_mode.doing
    http = None
    if "http" in wanted:
        check_exposure(settings)
        http = HttpServer(make_app(client, settings, lambda: holder.current().catalog, holder.current), settings)
        doing["http"] = lambda: f"listening on {settings.http_host}:{http.port if http else settings.http_port}"
    heartbeat = Heartbeat(client, Keys(settings.key_prefix), doing)
    threads.append(threading.Thread(target=heartbeat.run, args=(stop,), name="heartbeat", daemon=True))
    for t in threads:
        t.start()
    if http is not None:
        http.start()
    if after_start:
        threading.Thread(target=after_start, name="after-start", daemon=True).start()
    try:
        if deliverers is not None:
            deliverers.run(stop)
        else:
            _wait_for_signal(stop)
    finally:
        stop.set()
        if http is not None:
            http.stop()
        for t in threads:
            t.join(timeout=10)
        log.info("stopped")


def where(client: redis.Redis) -> str:
    """host:port of a client's Redis (never its password), for messages."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}" if "host" in kwargs else "the Redis of the sentinels"


def wait_for_redis(client: redis.Redis, first_wait: float = 0.5, max_wait: float = REDIS_RETRY_MAX_SECONDS,
                   stop: threading.Event | None = None) -> bool:
    """True once Redis answers; until then wait, the time between tries doubling up to ``max_wait``, with one
    log line (a service started before its Redis, or during an outage, waits for it instead of exiting). False
    when ``stop`` is set first (a signal while waiting)."""
    stop = stop or threading.Event()
    wait = first_wait
    told = False
    while not stop.is_set():
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not told:
                log.error("Redis unreachable at %s (%s); waiting for it, trying again every %g s at most",
                          where(client), type(exc).__name__, max_wait)
                told = True
            stop.wait(wait)
            wait = min(wait * 2, max_wait)
            continue
        if told:
            log.warning("Redis at %s answers again; starting", where(client))
        return True
    return False


class Deliverers:
    """The ``deliver`` role: one rq worker per delivery queue (``workers.roles.dispatch.queue_names``: one per kind
    of channel, and the queue of earlier releases), each in a thread of its own, so a channel that hangs
    holds up only its own queue. The main thread owns SIGINT/SIGTERM: the first signal asks every worker to
    stop after the delivery it is running. Redis going away (an outage, a failover) ends a worker; its
    thread logs the outage once for them all, waits for Redis (the wait doubling up to
    ``REDIS_RETRY_MAX_SECONDS``) and starts a new worker; the delivery it held lapses in rq's started-job
    registry and is handed back by the ``schedule`` role within seconds
    (``workers.roles.delivery_worker.STARTED_TTL``)."""

    def __init__(self, client: redis.Redis, settings: Settings, delivery: Delivery):
        self.client = client
        self.delivery = delivery
        self.workers: dict[str, DeliveryWorker | None] = dict.fromkeys(queue_names(settings))
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._down = False

    def run(self, stop: threading.Event) -> None:
        """Until a signal (or ``stop``): then each worker finishes its delivery, for up to the job timeout."""
        report_token_problem(self.delivery)
        threads = [threading.Thread(target=self.work, args=(name,), name=f"deliver-{name}", daemon=True)
                   for name in self.workers]
        for t in threads:
            t.start()
        try:
            _wait_for_signal(stop)
        finally:
            self.stop.set()
            for w in list(self.workers.values()):
                if w is not None:
                    w.stop()
            deadline = time.monotonic() + JOB_TIMEOUT + 5
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))

    def work(self, queue: str) -> None:
        while not self.stop.is_set():
            w = None
            error: BaseException | None = None
            try:
                w = DeliveryWorker([queue], connection=self.client, delivery=self.delivery, name=consumer_name("rq"),
                                   threaded=True)
                self.workers[queue] = w
                w.work(logging_level="WARNING", with_scheduler=False)
                error = w.redis_error
            except REDIS_UNAVAILABLE as exc:
                error = exc
            except Exception as exc:  # a bug of ours or rq's: logged, and a new worker a second later
                log.exception("deliver: the rq worker of %s failed; starting a new one", queue)
                error = exc
            if self.stop.is_set():
                return
            if error is None or not isinstance(error, REDIS_UNAVAILABLE):
                self.stop.wait(RETRY_SECONDS)  # rq's work() ended by itself (it quits on a Redis timeout)
                if not self._answers():
                    self._wait_for_redis(redis.ConnectionError("Redis does not answer"))
                continue
            self._wait_for_redis(error)

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def _wait_for_redis(self, error: BaseException) -> None:
        with self._lock:
            if not self._down:
                self._down = True
                log.error("deliver: Redis unavailable at %s (%s); the delivery workers wait for it", where(self.client),
                          type(error).__name__)
        wait = RETRY_SECONDS / 2
        while not self.stop.is_set() and not self._answers():
            self.stop.wait(wait)
            wait = min(wait * 2, REDIS_RETRY_MAX_SECONDS)
        with self._lock:
            if self._down and not self.stop.is_set():
                self._down = False
                log.warning("deliver: Redis at %s answers again; delivering", where(self.client))

    def doing(self) -> str:
        jobs = [f"{name.rpartition(':')[2] if ':' in name else 'old queue'}: {job}" for name, w in self.workers.items()
                if w is not None and (job := w.get_current_job_id())]
        return "; ".join(jobs) if jobs else f"{len(self.workers)} queues, waiting for jobs"


def _on_signal(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _evaluating(evaluator: Evaluator, composer: Composer) -> str:
    shards = ",".join(map(str, sorted(evaluator.owned))) or "none yet"
    return f"shards {shards}" + ("; the event-time stage" if composer.holding else "")


def _wait_for_signal(stop: threading.Event) -> None:
    _on_signal(stop)
    while not stop.wait(0.5):
        pass
