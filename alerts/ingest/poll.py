"""Polling one source: fetch (``feeds.fetch``, conditional), read its items, validate them as every event is
(``alerts.events.parse_objects``: limits, catalog, units, future check, currency conversion, the quote sanity
check: a held quote is among the refused items and kept in the quarantine), and publish the
ones the source has not published before (``alerts.store.sources``). A failure is recorded for the status
command and the source's next poll is put off by a backoff with jitter; it never touches the other sources.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

import httpx
import redis

from alerts.events.json_in import parse_objects
from alerts.events.wire import Event
from alerts.ingest.feeds import FeedError, Validators, bad_reason, fetch, items_of
from alerts.ingest.sources import Source
from alerts.store import sources as store
from alerts.store.keys import Keys
from alerts.store.publish import Publisher

log = logging.getLogger(__name__)

#: Longest wait after failures in a row (seconds), unless the source's own ``every`` is longer.
MAX_BACKOFF = 3600.0
#: A backoff is drawn between this share of its full length and all of it (jitter: sources that failed together
#: do not come back together).
JITTER_FLOOR = 0.5


@dataclass
class PollResult:
    name: str
    not_modified: bool = False
    #: events published by this poll
    published: list[Event] = field(default_factory=list)
    #: valid items the source had published before
    already: int = 0
    #: (where, reason) of each item that is not a valid event
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: why the poll failed as a whole (None: it did not)
    error: str | None = None
    seconds: float = 0.0
    next_due: float = 0.0


def backoff(src: Source, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` failed polls in a row: the source's interval doubled per failure, up to
    ``MAX_BACKOFF`` (or the interval, if longer), drawn with jitter; never less than a Retry-After the server gave."""
    full = min(src.every * 2 ** max(0, failures - 1), max(MAX_BACKOFF, src.every))
    wait: float = full * rng.uniform(JITTER_FLOOR, 1.0)
    return max(wait, retry_after or 0.0)


def poll(client: redis.Redis, http: httpx.Client, src: Source, publisher: Publisher, *,
         failures: int = 0, validators: Validators | None = None, rng: random.Random | None = None,
         record: bool = True) -> PollResult:
    """Poll ``src`` once and publish what is new. Never raises for anything the source sends."""
    rng = rng or random.Random()
    keys: Keys = publisher.keys
    started = time.time()
    t0 = time.perf_counter()
    out = PollResult(src.name)
    try:
        fetched = fetch(http, src, validators or Validators())
        if fetched.not_modified:
            out.not_modified = True
        else:
            raw = items_of(src, fetched)
            wheres = [w for w, _ in raw]
            objects: list[tuple[int, object]] = []
            for i, (where, item) in enumerate(raw):
                reason = bad_reason(item)
                if reason is not None:
                    out.rejected.append((where, reason))
                else:
                    objects.append((i, item))
            errors: list[tuple[int, str]] = []
            guard = publisher.guard(origin=f"source {src.name}")  # the quote sanity check of every door
            events = [ev for _, ev in parse_objects(
                objects, publisher.catalog, publisher.tz, errors, max_future_days=publisher.max_future_days,
                rates=publisher.rates(), fx_max_age_days=publisher.fx_max_age_days, guard=guard)]
            if guard is not None:
                guard.flush()  # the held quotes, to the quarantine (they are among the refused items)
            out.rejected.extend((wheres[i], reason) for i, reason in errors)
            position = {w: i for i, w in enumerate(wheres)}  # in feed order (not one list search per item)
            out.rejected.sort(key=lambda r: position.get(r[0], 0))
            new = store.unseen(client, keys, src.name, events)
            out.already = len(events) - len(new)
            store.publish_new(client, keys, src.name, new, publisher.shards)
            out.published = new
    except FeedError as exc:
        out.error = src.redact(str(exc))
        out.next_due = started + backoff(src, failures + 1, rng, exc.retry_after)
        if record:
            store.record_failure(client, keys, src.name, now=started, due=out.next_due, error=out.error)
        out.seconds = time.perf_counter() - t0
        log.warning("source %s: poll failed (%d in a row; next try in %.0f s): %s", src.name, failures + 1,
                    out.next_due - started, out.error)
        return out
    out.seconds = time.perf_counter() - t0
    out.next_due = started + src.every
    if record:
        store.record_success(client, keys, src.name, now=started, due=out.next_due, published=len(out.published),
                             etag=None if out.not_modified else fetched.validators.etag,
                             last_modified=None if out.not_modified else fetched.validators.last_modified,
                             not_modified=out.not_modified)
    if out.rejected:
        first = "; ".join(f"{w}: {r}" for w, r in out.rejected[:3])
        log.warning("source %s: %d items refused (%s%s)", src.name, len(out.rejected), src.redact(first),
                    "; ..." if len(out.rejected) > 3 else "")
    log.info("source %s: %s", src.name, "not modified" if out.not_modified else
             f"{len(out.published)} new events published, {out.already} already published")
    return out
