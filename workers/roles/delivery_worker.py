"""rq's worker mechanics for deliveries: ``DeliveryWorker`` (a SimpleWorker run in a thread of ``alerts run`` or
``alerts worker``, one per delivery queue), the beat that keeps a running delivery's started-job entry alive,
and the upkeep that hands back the deliveries of dead workers (``abandoned``). The job itself is
``workers.deliver.deliver``."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import DequeueTimeout, StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from alerts.errors import DeliveryError
from alerts.notify.slack import token_problem
from workers.deliver import REDIS_UNAVAILABLE, Delivery, delivering, describe_failure, from_environment

log = logging.getLogger(__name__)

#: A job taken off its queue and not started after this long (seconds) is queued again (``_unstarted``).
UNSTARTED_SECONDS = 10.0
#: Seconds a running delivery's entry in rq's started-job registry lives without a beat: a worker that died
#: (SIGKILL, power) has its delivery handed back (``abandoned``) this long after its last beat, rather than
#: rq's job timeout + 60 s.
STARTED_TTL = 5
#: Seconds between two beats of a running delivery (from a thread beside the job).
BEAT_SECONDS = 1.0
#: Seconds a worker waits on an empty queue before it looks at whether it was asked to stop.
DEQUEUE_SECONDS = 1
#: Seconds rq's command thread (a main-thread, not burst, worker's) waits for a message before it looks again
#: at whether it was stopped: rq's own 60 s, when the thread reads the UNSUBSCRIBE reply before ``stop``,
#: held every stop for a minute (redis-py 8.2 joins the thread).
PUBSUB_WAIT_SECONDS = 1.0


class DeliveryWorker(SimpleWorker):
    """An rq worker (in-process, no fork) whose jobs see its ``Delivery``.

    While a delivery runs, a thread beside it beats every ``BEAT_SECONDS``: the job's entry in rq's
    started-job registry (and the worker's key) then lives ``STARTED_TTL`` seconds past the last beat, so a
    worker that dies mid-delivery has the delivery handed back within seconds (``abandoned``, run by the
    ``schedule`` role every second), not after rq's job timeout plus a minute.

    ``threaded``: the worker runs in a thread other than the main one (the ``deliver`` role runs one per
    queue): no signal handlers (the main thread owns SIGINT/SIGTERM and calls ``stop``), job timeouts by
    timer rather than SIGALRM, no rq pubsub thread, an idle worker looks at ``stop`` every second, and
    Redis going away ends ``work`` quietly with ``redis_error`` set, for the caller to wait and start again.
    A burst worker (``work(burst=True)``: the tests, the benchmarks) has no rq pubsub thread either: it ends
    when its queues are empty, and rq's commands would find it gone.
    """

    def __init__(self, *args: Any, delivery: Delivery | None = None, threaded: bool = False, **kwargs: Any):
        kwargs.setdefault("serializer", JSONSerializer)
        if threaded:
            self.death_penalty_class = TimerDeathPenalty
        super().__init__(*args, **kwargs)
        self.delivery = delivery or from_environment()
        self.threaded = threaded
        self.burst = False
        self.redis_error: BaseException | None = None

    def stop(self) -> None:
        """Stop after the delivery running now (from any thread)."""
        self._stop_requested = True

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return STARTED_TTL

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            execution = self.prepare_execution(job)
            with _beating(self, job, execution):
                self.perform_job(job, queue, execution)
            self.set_state(WorkerStatus.IDLE)
        except REDIS_UNAVAILABLE as exc:
            if not self.threaded:
                raise
            self.redis_error = exc  # the delivery's entry lapses and it is handed back once Redis answers
            raise StopRequested from exc

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with delivering(self.delivery):
            return bool(super().perform_job(job, queue, execution))

    def work(self, *args: Any, **kwargs: Any) -> bool:
        self.burst = bool(kwargs.get("burst", args[0] if args else False))
        if not self.threaded:  # threaded workers: said once by whoever runs them
            report_token_problem(self.delivery)
        return bool(super().work(*args, **kwargs))

    def clean_registries(self) -> None:
        """rq's upkeep, with the deliveries of dead workers handed back first by ``abandoned`` (rq's own cleanup
        runs failure callbacks under SIGALRM, which only the main thread has)."""
        abandoned(self.connection, [q.name for q in self.queues], self.delivery)
        super().clean_registries()

    def _install_signal_handlers(self) -> None:
        if not self.threaded:
            super()._install_signal_handlers()

    def subscribe(self) -> None:
        """rq's command thread (`rq shutdown`), as rq starts it but waiting ``PUBSUB_WAIT_SECONDS``, not 60 s; none
        for a threaded worker (rq's commands reach a worker of its own process only) or a burst one."""
        if self.threaded or self.burst:
            return
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # rq types it as None only
            sleep_time=PUBSUB_WAIT_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler)

    def unsubscribe(self) -> None:
        if not self.threaded:
            super().unsubscribe()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None,
                                     max_idle_time: int | None = None) -> tuple[Job, Queue] | None:
        if not self.threaded:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        try:  # rq's own loop retries Redis for ever, logging every try, and never looks at _stop_requested
            self.set_state(WorkerStatus.IDLE)
            while True:
                if self._stop_requested:
                    raise StopRequested
                self.heartbeat()
                if self.should_run_maintenance_tasks:
                    self.run_maintenance_tasks()
                try:
                    result = self.queue_class.dequeue_any(
                        self._ordered_queues, DEQUEUE_SECONDS, connection=self.connection, job_class=self.job_class,
                        serializer=self.serializer, death_penalty_class=self.death_penalty_class)
                except DequeueTimeout:
                    continue
                if result is not None:
                    job, queue = result
                    self.reorder_queues(reference_queue=queue)
                    job.redis_server_version = self.get_redis_server_version()
                    self.heartbeat()
                    return result
        except REDIS_UNAVAILABLE as exc:
            self.redis_error = exc
            raise StopRequested from exc

    def teardown(self) -> None:
        try:
            super().teardown()
        except REDIS_UNAVAILABLE as exc:
            if not self.threaded:
                raise
            self.redis_error = self.redis_error or exc

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """rq logs every failed attempt with its traceback (15 lines); a delivery's failure is one line, logged
        where it happens (``deliver``, ``_failed``), and the traceback only at debug level."""
        _, exc, _ = exc_info
        if not isinstance(exc, DeliveryError) and job.retries_left:  # an error of ours or a timeout: say it once
            log.warning("delivery job %s failed, will retry: %s", job.id, describe_failure(exc))
        log.debug("delivery job %s raised", job.id, exc_info=exc_info)


def report_token_problem(delivery: Delivery) -> None:
    """Before the first job: a Slack token that Slack refuses is one clear error line (the role still runs:
    other channels deliver, and Slack deliveries fail with the same reason)."""
    problem = token_problem(delivery.settings)
    if problem is not None:
        (log.error if problem.startswith("Slack refuses") else log.warning)(problem)


@contextlib.contextmanager
def _beating(worker: DeliveryWorker, job: Job, execution: Execution) -> Iterator[None]:
    """While the block runs, keep the delivery's started-job entry (and the worker) alive, ``STARTED_TTL``
    seconds past each beat."""
    done = threading.Event()

    def beat() -> None:
        registry = job.started_job_registry
        while not done.wait(BEAT_SECONDS):
            try:
                with worker.connection.pipeline() as pipe:
                    worker.heartbeat(STARTED_TTL, pipeline=pipe)
                    execution.heartbeat(registry, STARTED_TTL, pipeline=pipe)
                    pipe.execute()
            except redis.RedisError as exc:  # Redis away: the entry lapses, and the delivery is handed back
                log.debug("could not beat for delivery job %s: %s", job.id, exc)

    t = threading.Thread(target=beat, name=f"beat-{job.id}", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join(5)


def abandoned(client: redis.Redis, queue_names: Iterable[str], delivery: Delivery) -> None:
    """Deliveries whose worker died (their started-job entry lapsed): handed back to rq, which runs them again
    while they have retries left and fails them otherwise; the failure callback (``on_failure``: the failure
    kept for ``alerts failed``, the ops notice) runs by timer, so this works from any thread."""
    with delivering(delivery):
        for name in queue_names:
            StartedJobRegistry(name, connection=client, serializer=JSONSerializer,
                               death_penalty_class=TimerDeathPenalty).cleanup()
            _unstarted(client, name)


def _unstarted(client: redis.Redis, queue_name: str, after: float = UNSTARTED_SECONDS) -> None:
    """Jobs a worker took off the queue (into rq's intermediate list) but never started: its worker died between
    the two steps, or a Redis failover kept the first and lost the second. rq looks at them only every 10
    minutes; here one seen twice, ``after`` seconds apart, and still not started, goes back to the front
    of its queue (it never ran: nothing was sent)."""
    queue = Queue(queue_name, connection=client, serializer=JSONSerializer)
    waiting = queue.intermediate_queue
    ids = waiting.get_job_ids()
    if not ids:
        return
    started = set(queue.started_job_registry.get_job_ids())
    for job_id in ids:
        if job_id in started or waiting.set_first_seen(job_id):
            continue
        first = waiting.get_first_seen(job_id)
        if first is None or time.time() - first.timestamp() < after:
            continue
        pipe = client.pipeline(transaction=True)
        pipe.lrem(waiting.key, 1, job_id)
        pipe.lpush(queue.key, job_id)
        pipe.delete(waiting.get_first_seen_key(job_id))
        pipe.execute()
        log.warning("delivery job %s was taken from %s but never started (its worker or Redis went away): "
                    "queued again", job_id, queue_name)
