"""Hot reload: watch the rule files and swap in the new rule set when they change.

Every process polls its own ``ALERTS_RULES_DIR`` once a second (``POLL_SECONDS``), so an edit takes
effect within a couple of seconds on every worker, without a restart. An edit that breaks a rule is
reported (log and console, with file and line) and the last good rule set stays active. State
follows rule fingerprints, so unchanged rules keep being armed or not, their cooldowns and confirm
counts; a rule whose condition changed starts armed. Problems that were already there (rules left
out at start) do not block a reload; only an edit that adds a problem is refused.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from alerts.errors import Problem
from alerts.rules.compiled import RuleSet
from alerts.rules.load import TEST_SUFFIXES, load_rules

log = logging.getLogger("alerts.rules")

#: Seconds between two looks at the rule files.
POLL_SECONDS = 1.0

Signature = tuple[tuple[str, int, int], ...]


def signature(root: Path) -> Signature:
    """What changes when any rule file is added, removed or edited."""
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = [p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and not p.name.endswith(TEST_SUFFIXES)]
    else:
        files = []
    out = []
    for p in sorted(files):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def _problem_key(p: Problem) -> tuple[str, str | None, str]:
    """A problem without its line: lines move when a file is edited above it."""
    return p.path, p.rule_id, p.message


class RuleHolder:
    """The active rule set of a process; ``current()`` is what evaluation uses, batch by batch."""

    def __init__(self, root: Path, timezone: str, on_change: Callable[[RuleSet], None] | None = None):
        self.root = root
        self.timezone = timezone
        self.on_change = on_change
        self._sig = signature(root)
        self._rules = load_rules(root, timezone=timezone)
        self._lock = threading.Lock()

    def current(self) -> RuleSet:
        return self._rules

    def check(self) -> bool:
        """Reload if the files changed. True when a new rule set became active."""
        sig = signature(self.root)
        if sig == self._sig:
            return False
        with self._lock:
            self._sig = sig
            candidate = load_rules(self.root, timezone=self.timezone)
            known = {_problem_key(p) for p in self._rules.errors}
            new_errors = [p for p in candidate.errors if _problem_key(p) not in known]
            if new_errors:
                for p in new_errors:
                    log.error("rule edit rejected: %s", p)
                msg = (f"rules in {self.root} not reloaded: {len(new_errors)} new problems; the last good rules "
                       "stay active:\n" + "\n".join(f"  {p}" for p in new_errors))
                print(msg, file=sys.stderr, flush=True)
                return False
            self._rules = candidate
        log.info("rules reloaded from %s: %d rules", self.root, len(candidate.by_id))
        if self.on_change:
            self.on_change(candidate)
        return True

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                self.check()
            except Exception:  # a watcher must survive anything a file system throws at it
                log.exception("could not reload the rules")
