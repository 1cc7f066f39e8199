"""``alerts run`` and ``alerts worker``: the service in the foreground (``workers.service``), and the demo feed."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import redis

from alerts.errors import ConfigError, NotReplicatedError, RedisOutOfMemory
from alerts.settings import Settings
from alerts.store.publish import Publisher
from alerts.store.server import redis_for
from workers.cli.common import demo_settings, require_rules_dir, setup_logging

#: Seconds between two events of the demo feed, so alerts appear one after another.
DEMO_PACE = 0.3


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.service import run_roles, serve

    require_rules_dir(settings, demo=args.demo)
    setup_logging(args.verbose, settings)
    after = None
    if args.demo:
        settings = demo_settings(settings)
    with redis_for(settings) as client:
        if args.demo:
            for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
                client.delete(key)
            after = lambda: _publish_demo(client, settings)  # noqa: E731
        serve(client, settings, run_roles(settings), after_start=after)
    return 0


def _publish_demo(client: redis.Redis, settings: Settings) -> None:
    """The demo feed, one event at a time; a feed Redis did not take (not replicated, out of memory) stops with
    one log line naming why, and the service runs on."""
    log = logging.getLogger(__name__)
    pub = Publisher.from_settings(client, settings)
    lines = resources.files("alerts").joinpath("data/demo_feed.jsonl").read_text("utf-8").splitlines()
    time.sleep(1.0)
    log.info("demo: publishing %d sample events (early-2025 quotes and news)", len(lines))
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                report = pub.publish_objects([(n, json.loads(line))])
            except (NotReplicatedError, RedisOutOfMemory, redis.RedisError) as exc:
                log.error("demo: feed line %d not published, the demo feed stops: %s", n, exc)
                return
            for ln, reason in report.errors:
                log.error("demo feed line %d: %s", ln, reason)
            time.sleep(DEMO_PACE)
    log.info("demo: feed published; Ctrl-C to stop")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.service import WORKER_ROLES, serve

    require_rules_dir(settings)
    setup_logging(args.verbose, settings)
    roles = set(args.role or WORKER_ROLES)
    if args.no_dispatch:  # older spellings of --role
        roles -= {"dispatch", "deliver", "schedule"}
    if args.no_evaluate:
        roles.discard("evaluate")
    if not roles:
        print("alerts worker: no role left to run", file=sys.stderr)
        return 2
    if args.role and "poll" in args.role and not settings.sources_file.exists():
        raise ConfigError(f"--role poll: the sources file {settings.sources_file} (ALERTS_SOURCES_FILE, from "
                          f"{Path.cwd()}) does not exist")
    with redis_for(settings) as client:
        serve(client, settings, roles)
    return 0


def register(sub: Any) -> None:
    """``run`` and ``worker``."""
    run = sub.add_parser("run", help="the whole service in one foreground process")
    run.add_argument("--demo", action="store_true", help="also publish a built-in sample feed")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)
    w = sub.add_parser("worker", help="a worker process: every role, or those given with --role",
                       description="Run worker roles: evaluate (events -> alerts), dispatch (alerts -> delivery "
                       "jobs), deliver (run delivery jobs), schedule (periodic jobs: retries, stale feeds, "
                       "digests, trimming), poll (the feeds of ALERTS_SOURCES_FILE), http (the HTTP app: POST "
                       "/events, /metrics, the Slack endpoints), slack (Slack Socket Mode: buttons and /alerts "
                       "without a public URL; needs ALERTS_SLACK_APP_TOKEN). Default: all but http and slack.")
    w.add_argument("--role", action="append",
                   choices=("evaluate", "dispatch", "deliver", "schedule", "poll", "http", "slack"),
                   help="a role to run; repeat for several (default: all but http and slack)")
    w.add_argument("--no-dispatch", action="store_true", help=argparse.SUPPRESS)  # = --role evaluate
    w.add_argument("--no-evaluate", action="store_true", help=argparse.SUPPRESS)  # every role but evaluate
    w.add_argument("-v", "--verbose", action="store_true")
    w.set_defaults(func=cmd_worker)
