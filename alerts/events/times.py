"""Event times: an ISO date (that day in the service time zone) or a datetime with its UTC offset as epoch
seconds and a local date (``parse_time``, cached: quotes of one day come in runs), the local date of an epoch
time, and the refusal of an event dated too far ahead of now."""

from __future__ import annotations

import time
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from alerts.errors import EventError
from alerts.events.words import days

#: The ordinal of 1970-01-01, for epoch seconds worked out from a date's ordinal.
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=4096)
def _day_start(day: date, tz: str) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


@lru_cache(maxsize=64)
def zone(tz: str) -> ZoneInfo:
    """The time zone of that name, looked up once."""
    return ZoneInfo(tz)


def parse_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    """A date (that day in ``tz``) or an ISO datetime with offset -> (epoch seconds, local ISO date)."""
    try:
        return _parse_time(value, tz, field)
    except OverflowError:
        raise EventError(f"{field}: {value!s} is out of range") from None


@lru_cache(maxsize=4096)  # quotes of one day come in runs: parsing a date is most of the time of a quote's time
def _parse_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    return read_time(value, tz, field)


@lru_cache(maxsize=4096)
def iso_day(ordinal: int) -> str:
    """The ISO text of a date by its ordinal: formatted once per day, not once per quote."""
    return date.fromordinal(ordinal).isoformat()


def read_time(value: str | date | datetime, tz: str, field: str) -> tuple[float, str]:
    """``parse_time`` without its cache (``PriceRows`` keeps its own, one entry per time as written)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise EventError(f"{field}: {value!r} is not an ISO date or datetime") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise EventError(f"{field}: {value.isoformat()!r} has no UTC offset; add one such as +08:00")
        return value.timestamp(), iso_day(value.astimezone(zone(tz)).toordinal())
    return _day_start(value, tz), value.isoformat()


def local_date(ts: float, tz: str) -> str:
    """The ISO date of an epoch time in ``tz``."""
    return datetime.fromtimestamp(ts, zone(tz)).date().isoformat()


def check_not_future(ts: float, field: str, written: str, tz: str, now: float | None,
                     max_future_days: float | None) -> None:
    """EventError when ``ts`` is more than ``max_future_days`` after ``now`` (default the clock); no check
    without ``max_future_days``."""
    if max_future_days is None:
        return
    ref = now if now is not None else time.time()
    if ts > ref + max_future_days * 86400:
        local = datetime.fromtimestamp(ref, zone(tz)).strftime("%Y-%m-%d %H:%M")
        raise EventError(f"{field}: {written} is in the future, more than {days(max_future_days)} after now "
                         f"({local} {tz}); date an event when it happened (limit: ALERTS_MAX_FUTURE_DAYS)")
