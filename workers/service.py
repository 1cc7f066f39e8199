"""Putting the parts together in one process: evaluator, dispatcher and housekeeping in threads,
the rq worker that delivers notifications in the main thread (it owns SIGINT/SIGTERM: the first
signal lets the current delivery finish, then everything stops)."""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from alerts.rules.compiled import RuleSet
from alerts.rules.reload import RuleHolder
from alerts.settings import Settings
from workers.deliver import configure
from workers.dispatch import Dispatcher, make_queue
from workers.evaluator import Evaluator, consumer_name
from workers.periodic import Housekeeper

log = logging.getLogger("alerts.service")


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
        print(f"warning: {msg}", file=sys.stderr, flush=True)


def serve(client: redis.Redis, settings: Settings, *, evaluate: bool = True, dispatch: bool = True,
          after_start: Callable[[], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    holder = RuleHolder(settings.rules_dir, settings.timezone)
    configure(settings, holder.current)
    report_rules(holder.current(), settings)
    stop = threading.Event()
    threads = [threading.Thread(target=holder.watch, args=(stop,), name="rules-watch", daemon=True)]
    evaluator = Evaluator(client, settings, holder.current) if evaluate else None
    dispatcher = Dispatcher(client, settings) if dispatch else None
    if evaluator:
        threads.append(threading.Thread(target=evaluator.run, args=(stop,), name="evaluator", daemon=True))
    if dispatcher:
        threads.append(threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True))
        housekeeper = Housekeeper(client, settings, dispatcher, holder.current)
        threads.append(threading.Thread(target=housekeeper.run, args=(stop,), name="housekeeping", daemon=True))
    for t in threads:
        t.start()
    if after_start:
        threading.Thread(target=after_start, name="after-start", daemon=True).start()
    try:
        if dispatch:
            worker = SimpleWorker([make_queue(client, settings)], connection=client, serializer=JSONSerializer,
                                  name=consumer_name("rq"))
            worker.work(logging_level="WARNING", with_scheduler=False)
        else:
            _wait_for_signal(stop)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        log.info("stopped")


def _wait_for_signal(stop: threading.Event) -> None:
    import signal

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(0.5):
        pass
