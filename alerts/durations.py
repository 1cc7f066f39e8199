"""Durations as traders write them (``90s``, ``30m``, ``6h``, ``1d``, ``2w``, ``1h30m``), each use with its
own longest allowed value, and moments as people read them: ``format_time`` (``2025-03-11 15:04:05 +08:00``),
the one format of every time a person reads (README "Times"), and ``format_iso`` for log lines; both always
carry the zone's UTC offset."""

from __future__ import annotations

import math
import re
from datetime import datetime
from zoneinfo import ZoneInfo

#: Seconds in each duration suffix.
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")

DAY = 86400.0
#: Longest silence (``alerts silence add --for`` or ``--until``, ``/alerts silence``): a year.
MAX_SILENCE = 365 * DAY
SILENCE_LIMIT = "a silence lasts at most 365 days"
#: Longest ``cooldown:`` of a rule: a year.
MAX_COOLDOWN = 365 * DAY
COOLDOWN_LIMIT = "a cooldown lasts at most 365 days"
#: Longest window a rule looks back over (``over:``, ``within:``, ``stale.after:``): the quote history kept by
#: default (ALERTS_QUOTE_RETENTION_DAYS), 400 days.
MAX_WINDOW = 400 * DAY
WINDOW_LIMIT = "a window spans at most 400 days"
#: What ``format_time`` shows for a time no calendar can hold (a corrupt or absurd value in Redis).
INVALID_TIME = "(invalid time)"


def parse_duration(text: str | int | float, maximum: float | None = None, limit: str | None = None) -> float:
    """Seconds in ``text``. A bare number is seconds. Raises ValueError on anything else, on a duration no
    number can hold, and on one longer than ``maximum`` seconds (saying ``limit``, such as "a silence lasts
    at most 365 days")."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    big = isinstance(text, int) and abs(text) >= 10**40  # str() of an int past 4300 digits raises
    shown = "a number of more than 40 digits" if big else repr(str(text)[:40])
    if isinstance(text, int | float):
        if text != text:  # nan
            raise ValueError(f"{shown} is not a duration")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        try:
            seconds = float(text)
        except OverflowError:  # an int beyond any float
            seconds = math.inf
    else:
        s = text.strip().lower().replace(" ", "")
        if not s or _PART.sub("", s):
            raise ValueError(f"{shown} is not a duration; write for example 30m, 6h, 1d or 1h30m")
        seconds = float(sum(float(n) * SECONDS[u] for n, u in _PART.findall(s)))
    if not math.isfinite(seconds) or (maximum is not None and seconds > maximum):
        say = limit or ("at most " + format_duration(maximum) if maximum is not None else "no number holds it")
        raise ValueError(f"{shown} is too long: {say}")
    return seconds


def format_duration(seconds: float) -> str:
    """``2592000`` -> ``30d``; ``5400`` -> ``1h30m``."""
    if not math.isfinite(seconds):
        return "forever" if seconds > 0 else "0s"
    left = int(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        n, left = divmod(left, SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"


def format_time(when: float | datetime | None, tz: str | None = None, *, seconds: bool = True) -> str:
    """A moment as every human-facing text shows it: in ``tz`` (ALERTS_TIMEZONE; a datetime keeps its own
    zone when ``tz`` is None), with the zone's UTC offset: ``2025-03-11 15:04:05 +08:00`` (``seconds=False``:
    ``2025-03-11 15:04 +08:00``). Never raises: a time no calendar can hold (out of range, not a number) is
    ``(invalid time)``."""
    try:
        if isinstance(when, datetime):
            moment = when.astimezone(ZoneInfo(tz)) if tz is not None else when
            if moment.tzinfo is None:
                moment = moment.astimezone()
        elif isinstance(when, int | float) and not isinstance(when, bool) and math.isfinite(when):
            moment = datetime.fromtimestamp(when, ZoneInfo(tz or "UTC"))
        else:
            return INVALID_TIME
        offset = moment.strftime("%z")  # +0800
    except (OverflowError, ValueError, OSError, KeyError):
        return INVALID_TIME
    offset = f"{offset[:3]}:{offset[3:5]}" if len(offset) >= 5 else "+00:00"
    m = moment  # the year always four digits (strftime's %Y gives 999 for the year 999)
    shown = f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}"
    return f"{shown}:{m.second:02d} {offset}" if seconds else f"{shown} {offset}"


def format_iso(ts: float, tz: str = "UTC") -> str:
    """A moment for log lines: ISO 8601 in ``tz`` with milliseconds and the offset,
    ``2025-03-11T15:04:05.123+08:00``. Never raises (``(invalid time)``)."""
    try:
        return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError, OSError, KeyError, TypeError):
        return INVALID_TIME
