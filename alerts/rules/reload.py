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
from pathlib import Path

from alerts.errors import Problem
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules, rule_files

log = logging.getLogger(__name__)

#: Seconds between two looks at the rule files.
POLL_SECONDS = 1.0

#: (path, modification time in ns, size) of every rule file.
FilesFingerprint = tuple[tuple[str, int, int], ...]


def files_fingerprint(root: Path) -> FilesFingerprint:
    """What changes when any rule file (``load.rule_files``) is added, removed or edited."""
    out = []
    for p in rule_files(root) if root.exists() else []:
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

    def __init__(self, root: Path, timezone: str):
        self.root = root
        self.timezone = timezone
        self._files = files_fingerprint(root)
        self._rules = load_rules(root, timezone=timezone)
        self._lock = threading.Lock()

    def current(self) -> RuleSet:
        return self._rules

    def check(self) -> bool:
        """Reload if the files changed. True when a new rule set became active."""
        files = files_fingerprint(self.root)
        if files == self._files:
            return False
        with self._lock:
            self._files = files
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
        return True

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                self.check()
            except Exception:  # a watcher must survive anything a file system throws at it
                log.exception("could not reload the rules")
