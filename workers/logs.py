"""Log lines of the service: plain text (the default; each line starts with its time in ALERTS_TIMEZONE, ISO 8601
with milliseconds and the UTC offset: ``2025-03-11T15:04:05.123+08:00``) or, with ``ALERTS_LOG_FORMAT=json``, one
JSON object per line with ``time`` (UTC, ``...+00:00``), ``level``, ``logger``, ``message`` and the ids a line was
given (``extra={"alert_id": ...}``: alert_id, rule_id, event_id, source); a traceback, when a line carries one, is
its ``exc`` field."""

from __future__ import annotations

import json
import logging
import sys
from typing import Literal

from alerts.durations import format_iso

#: Attributes of a record copied into a JSON line when a log call passed them in ``extra``.
IDS = ("alert_id", "rule_id", "event_id", "source")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": format_iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in IDS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, its time ISO 8601 in ``timezone`` with the offset (README "Times")."""

    def __init__(self, timezone: str = "UTC"):
        super().__init__(TEXT_FORMAT)
        self.timezone = timezone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return format_iso(record.created, self.timezone)


def setup(log_format: Literal["text", "json"], verbose: bool = False, timezone: str = "UTC") -> None:
    """The root logger writes to stderr in ``log_format`` (text lines timed in ``timezone``, ALERTS_TIMEZONE);
    httpx's request lines (full URLs: a feed's ${VAR} in a query string, a webhook's token) are kept out below
    WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(timezone))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
