"""The ``poll`` role: polls every source of the sources file when it is due (``alerts.ingest.poll``).

Each poll runs in a small thread pool, so a slow or hung feed holds up only itself; a poll takes the source's
Redis lock first, so several poller processes share the sources (each source is polled by one at a time, when
the ``due`` time they share says so). The sources file is read again when it changes: valid sources run, the
problems of the others are logged (``alerts sources check`` lists them). Products added in the rule files are
taken up as the evaluators take them (``alerts.rules.reload``): the publisher that validates what a poll got is
built again with the catalog of the rule set in force whenever that changes (a broken edit is refused and the last
good rules stay, for the pollers as for the evaluators)."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

from alerts.catalog import Catalog
from alerts.ingest.feeds import Validators
from alerts.ingest.poll import PollResult, poll
from alerts.ingest.sources import Source, SourceSet, load_sources
from alerts.rules.reload import POLL_SECONDS, RuleHolder
from alerts.settings import Settings
from alerts.store import sources as store
from alerts.store.keys import Keys
from alerts.store.publish import Publisher
from workers.roles.loop import run_steps

log = logging.getLogger(__name__)

#: Seconds between two looks at which sources are due.
TICK_SECONDS = 0.5
#: Polls running at once in one process.
MAX_PARALLEL = 8
#: A poll's lock outlives its longest possible fetch by this much (seconds).
LOCK_SLACK = 60.0


def read_sources(path: Path) -> SourceSet:
    sources = load_sources(path, os.environ)
    for p in sources.problems:
        (log.warning if p.severity == "warning" else log.error)("sources file: %s", p)
    return sources


def make_publisher(client: redis.Redis, settings: Settings, catalog: Catalog | None = None) -> Publisher:
    return Publisher.from_settings(client, settings, catalog)


def poll_now(client: redis.Redis, settings: Settings, src: Source, publisher: Publisher | None = None,
             http: httpx.Client | None = None) -> PollResult:
    """Poll one source now (``alerts poll --once``), with the stored validators, under its lock."""
    publisher = publisher or make_publisher(client, settings)
    keys = Keys(settings.key_prefix)
    token = uuid.uuid4().hex
    if not store.take_lock(client, keys, src.name, token, src.timeout * 3 + LOCK_SLACK):
        return PollResult(src.name, error="another poller is polling this source right now; try again")
    try:
        st = store.read_status(client, keys, [src.name])[src.name]
        own = http is None
        http = http or httpx.Client()  # alerts.ingest.feeds.fetch follows redirects itself
        try:
            return poll(client, http, src, publisher, failures=st.failures,
                        validators=Validators(st.etag, st.last_modified))
        finally:
            if own:
                http.close()
    finally:
        store.drop_lock(client, keys, src.name, token)


class Poller:
    """``catalog``: the products of the rule set in force (the process's ``RuleHolder``, which another thread
    watches); without it the poller keeps a ``RuleHolder`` of its own and looks at the rule files once a second."""

    def __init__(self, client: redis.Redis, settings: Settings, catalog: Callable[[], Catalog] | None = None):
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.path = settings.sources_file
        self.sources: SourceSet | None = None
        self._mtime: float | None = None
        self.publisher: Publisher | None = None
        self._catalog = catalog
        self._holder: RuleHolder | None = None
        self._rules_checked = 0.0
        self._published_with: Catalog | None = None  # the catalog ``publisher`` was built with
        self.http = httpx.Client()  # alerts.ingest.feeds.fetch follows redirects itself (headers: own origin only)
        self.pool = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="poll")
        self.running: dict[str, Future[None]] = {}
        self.rng = random.Random()

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if self.sources is not None and mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            if self.sources is None or self.sources.sources:  # debug: `alerts run` without feeds (the demo)
                log.debug("no sources file at %s: nothing to poll", self.path)
            self.sources = SourceSet(str(self.path))
            return
        self.sources = read_sources(self.path)
        log.info("polling %d sources from %s%s", len(self.sources.sources), self.path,
                 f" ({len(self.sources.errors)} problems)" if self.sources.errors else "")

    def catalog(self) -> Catalog:
        """The products of the rule files in force now."""
        if self._catalog is not None:
            return self._catalog()
        if self._holder is None:
            self._holder = RuleHolder(self.settings.rules_dir, self.settings.timezone)
            self._rules_checked = time.monotonic()
        elif time.monotonic() - self._rules_checked >= POLL_SECONDS:
            self._rules_checked = time.monotonic()
            self._holder.check()  # a broken edit is refused (logged): the last good rules stay
        return self._holder.current().catalog

    def current_publisher(self) -> Publisher:
        """The publisher polls publish with, built again when the rule files' products changed."""
        catalog = self.catalog()
        if self.publisher is None or catalog is not self._published_with:
            if self.publisher is not None:
                log.info("the rule files changed: polls now validate against %d products", len(catalog.products))
            self.publisher = make_publisher(self.client, self.settings, catalog)
            self._published_with = catalog
        return self.publisher

    def step(self) -> None:
        self._reload()
        assert self.sources is not None
        for name, fut in list(self.running.items()):
            if fut.done():
                del self.running[name]
        due = [s for s in self.sources.sources if s.name not in self.running]
        if due:
            publisher = self.current_publisher()
            now = time.time()
            status = store.read_status(self.client, self.keys, [s.name for s in due])
            for src in due:
                st = status[src.name]
                if st.due > now:
                    continue
                token = uuid.uuid4().hex
                if not store.take_lock(self.client, self.keys, src.name, token, src.timeout * 3 + LOCK_SLACK):
                    continue
                self.running[src.name] = self.pool.submit(self._poll, src, st, token, publisher)
        time.sleep(TICK_SECONDS)

    def _poll(self, src: Source, st: store.SourceStatus, token: str, publisher: Publisher) -> None:
        try:
            poll(self.client, self.http, src, publisher, failures=st.failures,
                 validators=Validators(st.etag, st.last_modified), rng=self.rng)
        except redis.RedisError as exc:
            log.error("source %s: Redis unavailable while publishing (%s); polled again when it is back",
                      src.name, type(exc).__name__)
        except Exception:
            log.exception("source %s: poll failed", src.name)
        finally:
            try:
                store.drop_lock(self.client, self.keys, src.name, token)
            except redis.RedisError:
                pass  # the lock expires by itself

    def recover(self) -> None:
        self.publisher = None

    def run(self, stop: threading.Event) -> None:
        try:
            run_steps(stop, "poller", self.step, self.recover)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.http.close()
