"""Log lines of the service: plain text (the default) or, with ``ALERTS_LOG_FORMAT=json``, one JSON object per
line with ``time``, ``level``, ``logger``, ``message`` and the ids a line was given (``extra={"alert_id": ...}``:
alert_id, rule_id, event_id, source); a traceback, when a line carries one, is its ``exc`` field."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

#: Attributes of a record copied into a JSON line when a log call passed them in ``extra``.
IDS = ("alert_id", "rule_id", "event_id", "source")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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


def setup(log_format: Literal["text", "json"], verbose: bool = False) -> None:
    """The root logger writes to stderr in ``log_format``; httpx's request lines (full URLs: a feed's
    ${VAR} in a query string, a webhook's token) are kept out below WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
