"""The circuit breaker's policy: a rule that fires more than ``limit`` times within ``window`` seconds
is paused, and one notice goes to its targets instead; ``alerts rules resume ID`` resumes it. This
protects a channel from a broken feed or a rule written the wrong way round.

Pure: ``decide`` takes what Redis holds (paused rules, recent counts) and the clock reading; the
reading and the writing live in ``alerts.store.breaker``. The breaker counts by the wall clock of
the evaluating process (how fast alerts are *sent* is what matters), so backtests do not apply it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from msgspec.structs import replace

from alerts.model import Alert, alert_id

#: Seconds per counting bucket: counts are kept per rule per minute.
BUCKET = 60


@dataclass
class BreakerVerdict:
    alerts: list[Alert]  # what goes out: alerts of running rules, and one notice per newly paused rule
    counted: Counter[str] = field(default_factory=Counter)  # rule id -> alerts sent now
    paused: dict[str, dict[str, float]] = field(default_factory=dict)  # rule id -> pause record
    held: int = 0  # alerts not sent because their rule is paused


def buckets(now: float, window: float) -> list[int]:
    """The counting buckets (minutes since the epoch) that make up the window ending at ``now``."""
    last = int(now // BUCKET)
    return list(range(last - math.ceil(window / BUCKET) + 1, last + 1))


def decide(alerts: Iterable[Alert], paused: set[str], counts: Mapping[str, int], limit: int, window: float,
           now: float) -> BreakerVerdict:
    """Which alerts go out, given the rules already ``paused`` and each rule's alert ``counts`` in the window."""
    running: Counter[str] = Counter(counts)
    stopped = set(paused)
    verdict = BreakerVerdict([])
    for a in alerts:
        if a.rule_id in stopped:
            verdict.held += 1
            continue
        running[a.rule_id] += 1
        if running[a.rule_id] > limit:
            stopped.add(a.rule_id)
            verdict.paused[a.rule_id] = {"at": now, "count": running[a.rule_id] - 1}
            verdict.alerts.append(notice(a, limit, window, now))
            verdict.held += 1
            continue
        verdict.alerts.append(a)
        verdict.counted[a.rule_id] += 1
    return verdict


def notice(a: Alert, limit: int, window: float, now: float) -> Alert:
    """The one alert that says a rule was paused, to the rule's targets."""
    text = (f"rule {a.rule_id} fired more than {limit} times in {window / 60:g} minutes and is paused; "
            f"no more alerts from it until someone runs: alerts rules resume {a.rule_id}")
    return replace(a, id=alert_id(a.rule_id, "paused", now), kind="notice", condition="paused",
                   severity="critical", text=text, status="paused")
