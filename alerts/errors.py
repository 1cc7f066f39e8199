"""The one exception tree of the package.

::

    AlertsError
     ├── ConfigError                 settings that cannot work (never retried)
     ├── EventError                  a malformed event line (never retried; names file and line)
     │    ├── CsvError               a CSV file that cannot be imported at all (alerts.ingest.csv_import)
     │    └── QuoteHeld              a quote the sanity check held in the quarantine (alerts.events.sanity)
     ├── UnitError                   a price or unit that cannot be read or converted (alerts.units)
     ├── RuleError                   a broken rule file (never retried; reported with file, line and rule id)
     │    ├── YamlError              not YAML, or beyond the limits (alerts.rules.yaml_lines)
     │    ├── RegexError             a regex RE2 refuses (alerts.rules.matching)
     │    ├── TemplateError          a message template that does not compile or exceeds its limits
     │    └── LimitExceeded          a template render past a size, step or time limit (alerts.rules.template_limits)
     ├── SilenceError                a silence that cannot be made as asked (alerts.store.silences)
     ├── FeedError                   a feed source that failed this time (alerts.ingest.feeds)
     ├── FetchError                  an article URL that could not be read (alerts.ingest.web)
     ├── LeaseLost                   a batch's shards changed hands: its events stay pending (alerts.store.batch)
     ├── RedisServerError            the private redis-server could not be started
     ├── RedisOutOfMemory            Redis refused a write (maxmemory reached): names used/maxmemory, what was stored
     ├── NotReplicatedError          events published that too few replicas acknowledged (publish them again)
     └── DeliveryError               a notification could not be delivered
          ├── RetryableDeliveryError   may succeed later (5xx, timeouts, rate limits); ``category`` says which
          └── PermanentDeliveryError   cannot succeed as configured (bad token, unknown channel)

Classes that stand for one module's mistakes live in that module, under these bases; a test checks that every
exception class of the package is in this tree.

A trader's mistake (``EventError``, ``RuleError``) is reported, never retried. A ``DeliveryError``
says through its class whether retrying can help (``retryable``).
"""

from __future__ import annotations

from dataclasses import dataclass


class AlertsError(Exception):
    """Base of every error raised on purpose by this package."""


class ConfigError(AlertsError):
    pass


class EventError(AlertsError):
    """An event that cannot be accepted. ``str()`` is the reason, without location."""


class RedisServerError(AlertsError):
    pass


class NotReplicatedError(AlertsError):
    """Events written to the Redis primary that fewer replicas than ``ALERTS_REDIS_MIN_REPLICAS`` acknowledged
    within ``ALERTS_REDIS_WAIT_TIMEOUT_MS``: not accepted (a failover now could lose them); publish them again.
    ``report`` is the publish report so far (``published``: the events that were replicated)."""

    def __init__(self, message: str, report: object = None):
        super().__init__(message)
        self.report = report


class RedisOutOfMemory(AlertsError):
    """Redis refused a write because it reached ``maxmemory`` (an ``OOM command not allowed`` reply).

    ``str()`` names the cause in one line (with used/maxmemory when known). ``report`` is what was stored
    before the refusal (for a publish: the publish report, whose ``published`` lists the items stored), so
    a caller can say exactly which items of a batch were kept."""

    def __init__(self, message: str, report: object = None):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class Problem:
    """One finding of the rule checker, printed as ``PATH:LINE: RULE-ID: message``."""

    path: str
    line: int
    rule_id: str | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        rid = self.rule_id or "-"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.path}:{self.line}: {rid}: {prefix}{self.message}"


class RuleError(AlertsError):
    """A trader's mistake in a rule file; the loader turns it into a ``Problem`` with file, line and rule id."""


class DeliveryError(AlertsError):
    retryable = False

    def __init__(self, target: str, reason: str):
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}")


#: Why a delivery may succeed later: the ``reason`` label of the delivery metrics.
RETRY_CATEGORIES = ("http_429", "http_5xx", "timeout", "network", "other")


class RetryableDeliveryError(DeliveryError):
    """``category`` says why it may succeed later (``RETRY_CATEGORIES``): rate limited (``http_429``, also
    whenever the receiver said when to come back), a server error (``http_5xx``), a timeout, the receiver not
    reachable (``network``), or ``other``."""

    retryable = True

    def __init__(self, target: str, reason: str, retry_after: float | None = None, category: str = "other"):
        super().__init__(target, reason)
        if category not in RETRY_CATEGORIES:
            raise ValueError(f"unknown retry category {category!r}")
        self.retry_after = retry_after
        self.category = "http_429" if retry_after is not None else category


class PermanentDeliveryError(DeliveryError):
    retryable = False


def transport_category(exc: BaseException) -> str:
    """The retry category of an exception raised while reaching a receiver: ``timeout`` for the timeouts of
    the socket, httpx and smtplib (``TimeoutError`` or an httpx ``*Timeout``), else ``network``."""
    if isinstance(exc, TimeoutError) or any(c.__name__.endswith("Timeout") for c in type(exc).__mro__):
        return "timeout"
    return "network"
