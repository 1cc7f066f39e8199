"""Honest change windows (rules/README.md, "Moves over a window"): the reference quote of a change over a window
is the last quote at or before the window's start, and only if it is near that start.

Shared by the evaluation (``alerts.evaluate.engine.measure``) and ``rules explain``, so that both say the same.
"""

from __future__ import annotations

import bisect
import math

from alerts.model import History

#: A change window's reference quote may be this much older than the window's start, at least (weekends, holidays).
WINDOW_TOLERANCE_MIN = 4 * 86400.0
#: ... or this fraction of the window, when that is more (a tenth: 36.5 days for a year).
WINDOW_TOLERANCE_SHARE = 0.1


def window_tolerance(window: float) -> float:
    """How much older than the window's start (t - window) its reference quote may be, in seconds: 4 days, or a
    tenth of the window when that is more. An older quote is no reference: a 30-day change is never a 636-day
    one."""
    return max(WINDOW_TOLERANCE_MIN, WINDOW_TOLERANCE_SHARE * window)


def last_at_or_before(history: History, t: float) -> tuple[float, float] | None:
    """The last (time, price) of ``history`` at or before ``t``."""
    i = bisect.bisect_right(history, (t, math.inf))
    return history[i - 1] if i else None


def reference(history: History, t: float, window: float) -> tuple[float, float] | None:
    """The reference quote of a change over ``window`` at time ``t``: the last quote at or before ``t - window``,
    if it is within ``window_tolerance`` of that; else None."""
    start = t - window
    ref = last_at_or_before(history, start)
    return ref if ref is not None and ref[0] >= start - window_tolerance(window) else None
