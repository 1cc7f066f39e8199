"""``alerts status``: the health of a deployment at a glance, read from Redis (and the rule and sources files).

Each finding is a ``Check`` (``ok``, ``warn`` or ``fail``) in one of two sections, with a verdict each:

- **service health** (``healthy``): can the service do its work? What fails: Redis unreachable, answering
  something that is not Redis (``ALERTS_REDIS_URL`` naming another server's port), or out of memory (used >=
  maxmemory with noeviction, or a write probe refused: then a silent process is "unknown (Redis full)", a
  warning, not dead: its heartbeat could not be written); an
  event or alert stream whose oldest unread or unacknowledged entry has waited more than ``STUCK_SECONDS`` (a
  stuck consumer group); a role that ran within the last hour with no live process now (a dead worker nobody
  replaced); no service process at all; a source whose last poll failed; a rule paused by the circuit breaker;
  a rule file with an error. What warns: Redis without ``appendonly`` or with an eviction policy; a dead process
  whose roles others still run; deliveries failed for good; rq jobs in its failed registry; Slack Socket Mode
  set up (ALERTS_SLACK_APP_TOKEN) with no live process running the ``slack`` role, or one running it without a
  connection.
- **data freshness** (``fresh``): is the market data current? A product whose latest quote is stale, by its
  stale-feed rule, else after ``STALE_DEFAULT_BUSINESS_DAYS`` business days without one (Saturdays, Sundays and
  the rule files' ``holidays:`` not counted: a weekend gap is not stale). Per product, each vendor's latest quote
  and age (``alerts.store.freshness``: a stale vendor warns), and the series a vendor's notice discontinued that
  rules still read (``alerts.store.notices``: a warning); neither changes the exit status.

The exit status says which (``exit_status``): ``EXIT_HEALTHY`` (0) healthy and fresh, ``EXIT_UNHEALTHY`` (1) the
service is unhealthy (whatever the data), ``EXIT_STALE`` (4) the service is healthy and some data is stale. Every
read is O(1) or O(log n) in the stored events (XINFO, XLEN, one XRANGE entry per stream, one hash per product):
a million stored events cost no more than ten."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import redis
from croniter import croniter
from redis.exceptions import InvalidResponse

from alerts.durations import format_duration, format_time
from alerts.evaluate.composite import business_days_between, evaluate_stale
from alerts.ingest.sources import load_sources
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import failures, freshness, heartbeats, notices
from alerts.store import sources as source_store
from alerts.store.breaker import paused_rules
from alerts.store.digests import DigestStore
from alerts.store.keys import DISPATCH_GROUP, EVALUATOR_GROUP, Keys
from alerts.store.memory import memory_of, write_refused
from alerts.store.quotes import held_quotes
from alerts.store.server import not_redis_message
from alerts.store.silences import SilenceStore, describe, to_json
from alerts.store.state import load_states
from workers.roles.dispatch import make_queues

Level = Literal["ok", "warn", "fail"]
#: ``service``: service health (Redis, streams, processes, queues, sources, rules); ``data``: data freshness.
Section = Literal["service", "data"]
#: An entry unread (or read and not acknowledged) this long (seconds) means its consumer group is stuck:
#: a live evaluator or dispatcher takes entries within milliseconds.
STUCK_SECONDS = 120.0
#: Share of maxmemory (with noeviction) past which Redis is nearly full: a warning.
NEARLY_FULL = 0.9
#: A product without a stale-feed rule is stale when this many business days passed without a quote (the days
#: strictly between its latest quote's date and today, Saturdays, Sundays and ``holidays:`` not counted): a
#: Friday quote read on Monday is fresh, one of a week ago is stale.
STALE_DEFAULT_BUSINESS_DAYS = 3
#: Exit statuses of ``alerts status``: healthy and fresh; the service unhealthy (whatever the data: supervisors
#: use 1); the service healthy and some data stale.
EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_STALE = 0, 1, 4


@dataclass
class Check:
    level: Level
    area: str
    message: str
    section: Section = "service"


@dataclass
class Status:
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: whether the quotes were read (not when Redis could not be read)
    freshness_read: bool = False

    def section(self, section: Section) -> list[Check]:
        return [c for c in self.checks if c.section == section]

    @property
    def healthy(self) -> bool:
        """Service health: no service check fails (stale data does not make the service unhealthy)."""
        return not any(c.level == "fail" for c in self.section("service"))

    @property
    def fresh(self) -> bool | None:
        """Data freshness: no quote is stale; None when the quotes could not be read."""
        return not any(c.level == "fail" for c in self.section("data")) if self.freshness_read else None

    @property
    def exit_status(self) -> int:
        if not self.healthy:
            return EXIT_UNHEALTHY
        return EXIT_STALE if self.fresh is False else EXIT_HEALTHY

    def add(self, level: Level, area: str, message: str, section: Section = "service") -> None:
        self.checks.append(Check(level, area, message, section))

    def to_json(self) -> dict[str, Any]:
        service = self.section("service")
        stale = [c for c in self.section("data") if c.level == "fail"]
        return {"healthy": self.healthy, "fresh": self.fresh, "exit_status": self.exit_status,
                "service": {"healthy": self.healthy, "failures": sum(c.level == "fail" for c in service),
                            "warnings": sum(c.level == "warn" for c in service)},
                "freshness": {"fresh": self.fresh, "stale": len(stale)},
                "checks": [asdict(c) for c in self.checks], **self.data}


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{format_duration(max(1, seconds))} ago"


def _id_time(entry_id: bytes | str) -> float:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0]) / 1000


def collect(client: redis.Redis, settings: Settings, now: float | None = None,
            rules: RuleSet | None = None) -> Status:
    now = time.time() if now is None else now
    st = Status()
    keys = Keys(settings.key_prefix)
    try:
        full = _redis(client, keys, st)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        st.add("fail", "redis", f"unreachable: {exc}")
        st.data["redis"] = {"reachable": False}
        return st
    except InvalidResponse as exc:  # ALERTS_REDIS_URL names the port of another kind of server
        st.add("fail", "redis", not_redis_message(settings, exc))
        st.data["redis"] = {"reachable": False, "not_redis": True}
        return st
    rs = rules if rules is not None else load_rules(settings.rules_dir, timezone=settings.timezone)
    _streams(client, settings, keys, st, now)
    procs = _processes(client, keys, st, now, redis_full=full)
    _slack(procs, settings, st)
    _rq(client, settings, keys, st)
    _digests(client, keys, rs, settings, st, now)
    _sources(client, settings, keys, st, now)
    _quotes(client, keys, rs, settings, st, now)
    _held(client, keys, st)
    _paused(client, keys, st)
    _silences(client, keys, settings, st, now)
    errors = [p for p in rs.problems if p.severity == "error"]
    for p in errors:
        st.add("fail", "rules", str(p))
    st.data["rules"] = {"loaded": len(rs.by_id), "errors": [str(p) for p in errors]}
    if not errors:
        st.add("ok", "rules", f"{len(rs.by_id)} rules loaded from {settings.rules_dir}")
    return st


def _redis(client: redis.Redis, keys: Keys, st: Status) -> bool:
    """Redis itself; True when it is out of memory (maxmemory reached with noeviction: writes refused)."""
    info: dict[str, Any] = client.info()
    version = info.get("redis_version", "?")
    aof = bool(int(info.get("aof_enabled", 0)))
    mem = memory_of(info)
    policy = mem.policy
    st.data["redis"] = {"reachable": True, "version": version, "used_memory": mem.used,
                        "used_memory_human": info.get("used_memory_human"), "maxmemory": info.get("maxmemory"),
                        "maxmemory_policy": policy, "appendonly": aof,
                        "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status")}
    refused = mem.refuses_writes_when_full and write_refused(client, keys.probe)
    full = refused or mem.full
    st.data["redis"]["out_of_memory"] = full
    if full:
        st.add("fail", "redis", f"Redis out of memory: used {mem.used_human or mem.used} of maxmemory "
                                f"{mem.maxmemory_human or mem.maxmemory} (maxmemory-policy {policy}): writes are "
                                + ("refused (a write probe was answered OOM)" if refused else "refused at this size")
                                + "; nothing new is stored or evaluated and heartbeats cannot be written; free "
                                "memory or raise maxmemory")
    else:
        st.add("ok", "redis", f"Redis {version}, {info.get('used_memory_human', mem.used)} used"
                              + (f" of maxmemory {mem.maxmemory_human or mem.maxmemory}" if mem.maxmemory else "")
                              + f", appendonly {'yes' if aof else 'no'}, maxmemory-policy {policy}")
        if mem.refuses_writes_when_full and mem.used >= NEARLY_FULL * mem.maxmemory:
            st.add("warn", "redis", f"Redis nearly out of memory: used {mem.used_human or mem.used} of maxmemory "
                                    f"{mem.maxmemory_human or mem.maxmemory} ({mem.used / mem.maxmemory:.0%}); at "
                                    "maxmemory every write is refused (free memory or raise maxmemory)")
    if not aof:
        st.add("warn", "redis", "appendonly is off: a Redis restart loses what was written since its last "
                                "snapshot (set appendonly yes)")
    if policy not in ("noeviction", "?"):
        st.add("warn", "redis", f"maxmemory-policy is {policy}: Redis may evict events, state or delivery "
                                "markers when full (set noeviction)")
    return full


def _group_info(client: redis.Redis, stream: str, group: str) -> dict[str, Any] | None:
    try:
        groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None  # no such stream yet
    g = next((g for g in groups if g["name"] in (group, group.encode())), None)
    if g is None:
        return {"group": False}
    last = g["last-delivered-id"]
    pending = int(g.get("pending", 0))
    lag = g.get("lag")
    first_unread = cast(list[tuple[bytes, Any]], client.xrange(stream, min=b"(" + (
        last if isinstance(last, bytes) else str(last).encode()), max="+", count=1))
    oldest_unread = _id_time(first_unread[0][0]) if first_unread else None
    if lag is None:  # Redis < 7: whether any entry is unread, not how many
        lag = None if first_unread else 0
    oldest_pending = None
    if pending:
        summary: dict[str, Any] = client.xpending(stream, group)
        rows = cast(list[dict[str, Any]], client.xpending_range(stream, group, min=summary["min"], max="+", count=1))
        if rows:
            oldest_pending = time.time() - int(rows[0]["time_since_delivered"]) / 1000  # Redis' clock is now
    return {"group": True, "lag": lag, "pending": pending, "oldest_unread": oldest_unread,
            "oldest_pending": oldest_pending}


def _oldest(client: redis.Redis, stream: str) -> float:
    """The time of a stream's first entry (one XRANGE entry)."""
    first = cast(list[tuple[bytes, Any]], client.xrange(stream, min="-", max="+", count=1))
    return _id_time(first[0][0]) if first else time.time()


def _streams(client: redis.Redis, settings: Settings, keys: Keys, st: Status, now: float) -> None:
    rows = []
    streams = [(keys.events(s), EVALUATOR_GROUP, "evaluators") for s in range(settings.stream_shards)]
    streams.append((keys.alerts, DISPATCH_GROUP, "dispatchers"))
    for stream, group, who in streams:
        length = int(client.xlen(stream))
        info = _group_info(client, stream, group)
        row: dict[str, Any] = {"stream": stream, "length": length, "group": group}
        if info is None or not info.get("group"):
            rows.append(row)
            if length:  # no group: nobody ever read it, every entry is waiting
                waited = max(0.0, now - _oldest(client, stream))
                row.update({"lag": length, "pending": 0, "oldest_waiting_seconds": round(waited, 3)})
                text = f"{stream}: {length:,} entries, all unread: no consumer group {group!r} yet (no {who} read it)"
                if waited > STUCK_SECONDS:
                    st.add("fail", "streams", f"{text}; stuck: the oldest has waited {format_duration(waited)} "
                                              f"(are the {who} running?)")
                else:
                    st.add("warn", "streams", text)
            continue
        row.update({k: info[k] for k in ("lag", "pending")})
        waits = [now - t for t in (info["oldest_unread"],) if t is not None]
        if info["oldest_pending"] is not None:
            waits.append(now - info["oldest_pending"])
        waited = max(waits, default=0.0)
        row["oldest_waiting_seconds"] = round(waited, 3)
        rows.append(row)
        lag_text = "some" if info["lag"] is None else f"{info['lag']:,}"
        text = f"{stream}: {length:,} entries, {lag_text} unread, {info['pending']:,} pending"
        if waited > STUCK_SECONDS:
            st.add("fail", "streams", f"{text}; stuck: the oldest has waited {format_duration(waited)} "
                                      f"(are the {who} running? consumer group {group!r})")
    if not any(c.area == "streams" and c.level == "fail" for c in st.checks):
        total = sum(r["length"] for r in rows)
        st.add("ok", "streams", f"{len(rows)} streams, {total:,} entries, nothing waiting longer than "
                                f"{format_duration(STUCK_SECONDS)}")
    st.data["streams"] = rows


def _processes(client: redis.Redis, keys: Keys, st: Status, now: float,
               redis_full: bool = False) -> list[heartbeats.Proc]:
    """Live and dead processes by their heartbeats. While Redis is full (``redis_full``) a silent process may be
    alive and unable to write its beat: its state is unknown (a warning), never dead."""
    procs = heartbeats.processes(client, keys, now)
    st.data["processes"] = [{**asdict(p), "doing": dict(p.doing), "last_beat_seconds_ago": round(now - p.beat, 1),
                             "state": "alive" if p.alive else "unknown (Redis full)" if redis_full else "dead"}
                            for p in procs]
    if not procs:
        st.add("fail", "processes", "no service process has run in the last hour (alerts run, alerts worker)")
        return procs
    live_roles = {r for p in procs if p.alive for r in p.roles}
    for p in procs:
        doing = "; ".join(f"{role}: {what}" for role, what in p.doing.items())
        if p.alive:
            st.add("ok", "processes", f"{p.host} pid {p.pid}: {','.join(p.roles)}, up "
                                      f"{format_duration(max(1, now - p.started))}" + (f" ({doing})" if doing else ""))
    for p in procs:
        if not p.alive and redis_full:
            st.add("warn", "processes", f"{p.host} pid {p.pid} ({','.join(p.roles)}): unknown (Redis full): last "
                                        f"heartbeat {_ago(now - p.beat)}; its heartbeat could not be written because "
                                        "Redis is out of memory, so it may be alive")
        elif not p.alive:
            orphaned = [r for r in p.roles if r not in live_roles]
            level: Level = "fail" if orphaned else "warn"
            st.add(level, "processes", f"{p.host} pid {p.pid} ({','.join(p.roles)}) is dead: last heartbeat "
                                       f"{_ago(now - p.beat)}" + (f"; no live process runs {', '.join(orphaned)}"
                                                                  if orphaned else "; others run its roles"))
    return procs


def _slack(procs: list[heartbeats.Proc], settings: Settings, st: Status) -> None:
    """Socket Mode: set up (ALERTS_SLACK_APP_TOKEN) but run nowhere, or run but not connected, is a warning: the
    alerts still go out; the buttons and /alerts get no answer."""
    live = [p for p in procs if p.alive and "slack" in p.roles]
    if settings.slack_app_token is not None and not live:
        st.add("warn", "slack", "ALERTS_SLACK_APP_TOKEN is set but no live process runs the slack role: buttons and "
                                "/alerts get no answer over Socket Mode (alerts worker --role slack)")
    for p in live:
        doing = p.doing.get("slack", "")
        if not doing.startswith("Socket Mode connected"):
            st.add("warn", "slack", f"{p.host} pid {p.pid}: {doing or 'Socket Mode not connected'}")


def _rq(client: redis.Redis, settings: Settings, keys: Keys, st: Status) -> None:
    per_queue = {q.name: {"queued": q.count, "started": q.started_job_registry.count,
                          "scheduled": q.scheduled_job_registry.count, "failed": q.failed_job_registry.count}
                 for q in make_queues(client, settings)}
    counts = {k: sum(c[k] for c in per_queue.values()) for k in ("queued", "started", "scheduled", "failed")}
    gave_up = len(failures.listing(client, keys))
    st.data["rq"] = {"queue": settings.queue_name, **counts, "failed_for_good": gave_up, "queues": per_queue}
    busy = ", ".join(f"{name.removeprefix(settings.queue_name + ':')} {c['queued']}"
                     for name, c in per_queue.items() if c["queued"])
    st.add("ok", "deliveries", f"queues {settings.queue_name}:*: {counts['queued']} queued"
                               + (f" ({busy})" if busy else "") + f", {counts['started']} "
                               f"running, {counts['scheduled']} scheduled (retries, pacing, quiet hours)")
    if gave_up:
        st.add("warn", "deliveries", f"{gave_up} deliveries failed for good (alerts failed; alerts failed retry)")


def _digests(client: redis.Redis, keys: Keys, rs: RuleSet, settings: Settings, st: Status, now: float) -> None:
    store = DigestStore(client, keys)
    rows = []
    for name, d in sorted(rs.digests.items()):
        zone = ZoneInfo(d.timezone or settings.timezone)
        nxt = cast(datetime, croniter(d.schedule, datetime.fromtimestamp(now, zone)).get_next(datetime))
        queued = int(client.llen(keys.outbox("digest", name)))
        last = store.state(name).get("sent_at")
        rows.append({"digest": name, "next": nxt.isoformat(), "queued": queued, "last_sent": last})
        st.add("ok", "digests", f"{name}: next {format_time(nxt, seconds=False)}, {queued} alerts waiting, last "
                                f"sent {format_time(float(last), zone.key, seconds=False) if last else 'never'}")
    st.data["digests"] = rows


def _sources(client: redis.Redis, settings: Settings, keys: Keys, st: Status, now: float) -> None:
    path = settings.sources_file
    if not path.exists():
        st.data["sources"] = []
        return
    sources = load_sources(path, os.environ)
    for p in sources.errors:
        st.add("fail", "sources", str(p))
    names = [s.name for s in sources.sources]
    status = source_store.read_status(client, keys, names)
    rows = []
    for name in names:
        s = status[name]
        rows.append({**asdict(s), "failing": s.failures > 0})
        if s.failures:
            st.add("fail", "sources", f"{name}: failing, {s.failures} polls in a row; last error "
                                      f"{_ago(now - (s.last_error_at or now))}: {s.last_error}"
                                      + (f"; last success {_ago(now - s.last_success)}" if s.last_success else
                                         "; never succeeded"))
        elif s.last_success is None:
            st.add("ok", "sources", f"{name}: not polled yet")
        else:
            st.add("ok", "sources", f"{name}: last success {_ago(now - s.last_success)}"
                                    + (f", {s.last_published} new events" if s.last_published is not None else ""))
    st.data["sources"] = rows


def stale_by_default(as_of: date, now: float, tz: str, holidays: frozenset[date] = frozenset()) -> bool:
    """Whether a product without a stale-feed rule, last quoted on ``as_of``, is stale at ``now``: at least
    ``STALE_DEFAULT_BUSINESS_DAYS`` business days (in ``tz``) passed without a quote."""
    today = datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    return business_days_between(as_of, today, holidays) >= STALE_DEFAULT_BUSINESS_DAYS


def _quotes(client: redis.Redis, keys: Keys, rs: RuleSet, settings: Settings, st: Status, now: float) -> None:
    st.freshness_read = True
    products = dict(rs.catalog.products)
    states = load_states(client, keys, sorted(products))
    stale_rules = {r.product.key: r for r in rs.stale}
    rows = []
    for pkey, state in states.items():
        if state is None or not state.quotes:
            continue
        last = max(state.quotes.values(), key=lambda q: q.as_of)
        product = products[pkey]
        rule = stale_rules.get(pkey)
        if rule is not None:
            stale = evaluate_stale(rule, last, now, rs.timezone, rs.holidays, None) is not None
            limit = f"rule {rule.id}: {rule.after_text}"
        else:
            stale = stale_by_default(date.fromisoformat(last.as_of_date), now, rs.timezone, rs.holidays)
            limit = (f"no stale-feed rule: {STALE_DEFAULT_BUSINESS_DAYS} business days without a quote, weekends"
                     + (" and the rule files' holidays" if rs.holidays else "") + " not counted")
        age = max(0.0, now - last.as_of)
        rows.append({"product": product.name, "price": last.price, "unit": product.unit_text,
                     "as_of": last.as_of_date, "age_seconds": round(age), "stale": stale, "limit": limit})
        text = (f"{product.name}: {last.price:,.10g} {product.unit_text} as of {last.as_of_date} "
                f"({format_duration(age)} old)")
        st.add("fail" if stale else "ok", "quotes", text + (f"; stale ({limit})" if stale else ""), "data")
    if not rows:
        st.add("ok", "quotes", "no quote stored yet", "data")
    st.data["quotes"] = rows
    by_vendor = freshness.vendor_quotes(states, rs, now, STALE_DEFAULT_BUSINESS_DAYS)  # per product and vendor
    st.data["vendors"] = [q.to_json() for q in by_vendor]
    for level, text in freshness.vendor_lines(by_vendor):
        st.add("warn" if level == "warn" else "ok", "vendors", text, "data")
    ended = notices.discontinued_in_use([n for n, _ in notices.stored_notices(client, keys)], rs, now)
    st.data["discontinued"] = [d.to_json() for d in ended]  # series a vendor ended that rules still read
    for d in ended:
        st.add("warn", "notices", d.message(), "data")


def _held(client: redis.Redis, keys: Keys, st: Status) -> None:
    """The quotes the sanity check holds (a warning: each waits for a person to release or drop it)."""
    held = held_quotes(client, keys)
    st.data["held"] = {"count": len(held), "ids": [h.id for h in held[:20]]}
    if held:
        names = ", ".join(sorted({h.event.product for h in held}))
        st.add("warn", "quotes", f"{len(held)} quotes held by the sanity check, not used ({names}): alerts quotes "
               "held; release or drop each", "data")


def _paused(client: redis.Redis, keys: Keys, st: Status) -> None:
    paused = paused_rules(client, keys)
    st.data["paused"] = [{"rule": rid, **info} for rid, info in sorted(paused.items())]
    for rid in sorted(paused):
        st.add("fail", "breaker", f"rule {rid} is paused by the circuit breaker (alerts rules resume {rid})")


def _silences(client: redis.Redis, keys: Keys, settings: Settings, st: Status, now: float) -> None:
    """The active silences (``alerts silence list``): an operator's choice, never a problem."""
    active = SilenceStore(client, keys).active(now)
    st.data["silences"] = [to_json(s, now) for s in active]
    st.add("ok", "silences", f"{len(active)} active" if active else "none active")
    for s in active:
        st.add("ok", "silences", describe(s, settings.timezone, now))


def render(st: Status) -> str:
    """The service health lines, then the data freshness lines, then one verdict line naming both."""
    mark = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}
    lines = ["Service health"]
    lines += [f"{mark[c.level]:<5} {c.area:<11} {c.message}" for c in st.section("service")]
    lines.append("Data freshness")
    lines += [f"{'STALE' if c.level == 'fail' else mark[c.level]:<5} {c.area:<11} {c.message}"
              for c in st.section("data")]
    if not st.freshness_read:
        lines.append("?     quotes      not read (Redis could not be read)")
    service = st.section("service")
    fails = sum(c.level == "fail" for c in service)
    warns = sum(c.level == "warn" for c in service)
    stale = sum(c.level == "fail" for c in st.section("data"))
    verdict = ("healthy" + (f" ({warns} warning{'s' if warns != 1 else ''})" if warns else "") if st.healthy else
               f"UNHEALTHY: {fails} problem{'s' if fails != 1 else ''}"
               + (f", {warns} warning{'s' if warns != 1 else ''}" if warns else ""))
    data = ("data freshness unknown" if st.fresh is None else "data fresh" if st.fresh else
            f"data STALE: {stale} product{'s' if stale != 1 else ''}")
    lines.append(f"{verdict}; {data} (exit status {st.exit_status})")
    return "\n".join(lines)


__all__ = ["EXIT_HEALTHY", "EXIT_STALE", "EXIT_UNHEALTHY", "STALE_DEFAULT_BUSINESS_DAYS", "STUCK_SECONDS", "Check",
           "Status", "collect", "render", "stale_by_default"]
