"""All runtime configuration, read from ``ALERTS_*`` environment variables and an optional ``.env``.

``load_settings`` is how a process reads them: a value that cannot work is one ``ConfigError`` line per
variable, naming it (never a pydantic traceback, never an error per event later), and an ``ALERTS_*``
variable that no setting has is warned about once, with the closest setting's name.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from alerts.errors import ConfigError

PREFIX = "ALERTS_"
ENV_FILE = ".env"
#: Environment variables rule files may always read (``${ALERTS_RULES_VAR_RISK_HOOK}``): no setting has the prefix.
RULES_VAR_PREFIX = "ALERTS_RULES_VAR_"
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
log = logging.getLogger(__name__)


def _comma_list(v: Any, what: str) -> Any:
    """A list setting written as ``a,b,c`` or as a JSON list; anything else is left to pydantic."""
    if isinstance(v, str):
        text = v.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                raise ValueError(f"not a list of {what}") from None
        return [part.strip() for part in text.split(",") if part.strip()]
    return v


def _rule_var_names(v: list[str]) -> list[str]:
    for name in v:
        if not _VAR_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if not rule_var_allowed(name, [name]):
            raise ValueError(f"{name} is a variable of the service's settings (ALERTS_*): rule files may not "
                             f"read it; give the rules their own, named {RULES_VAR_PREFIX}...")
    return v


#: ALERTS_RULES_ALLOWED_VARS: the names of environment variables, no ALERTS_* one but ALERTS_RULES_VAR_*.
RuleVars = Annotated[list[str], NoDecode, BeforeValidator(lambda v: _comma_list(v, "environment variable names")),
                     AfterValidator(_rule_var_names)]
_RULE_VARS: TypeAdapter[list[str]] = TypeAdapter(RuleVars)


class Settings(BaseSettings):
    """One place for every setting. Secrets are ``SecretStr``: their repr is ``'**********'``."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=ENV_FILE, extra="ignore")

    # --- where things live ---------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis to use. Unset: a private redis-server is started with its data in data_dir. "
        "A SecretStr because the URL may carry a password.",
    )
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default=[], description="Redis Sentinel addresses (host:port,host:port): every process, rq included, "
        "finds the primary through them, and finds it again after a failover. ALERTS_REDIS_URL may then give "
        "only the scheme (rediss:// for TLS), user, password and db, not a host.")
    redis_master_name: str = Field(default="mymaster", min_length=1, pattern=r"^\S+$",
                                   description="The name the sentinels monitor the primary under.")
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the sentinels themselves (requirepass in sentinel.conf).")
    redis_password: SecretStr | None = Field(
        default=None, description="Password of the Redis data connections (instead of one in ALERTS_REDIS_URL).")
    redis_username: str | None = Field(default=None, min_length=1,
                                       description="ACL user of the data connections (Redis 6+; default: 'default').")
    redis_ca_file: Path | None = Field(
        default=None, description="CA bundle for the Redis server's certificate (rediss:// URLs; an internal CA); "
        "default: the system's.")
    redis_min_replicas: int = Field(
        default=0, ge=0, description="An event counts as accepted once this many replicas have it: after each "
        "batch a publisher sends WAIT and fails (POST /events: 503, alerts publish: exit 3) on fewer "
        "acknowledgements. 0: no wait.")
    redis_wait_timeout_ms: int = Field(default=1000, ge=1, description="How long that WAIT waits for replicas.")
    data_dir: Path = Path("./.alerts")
    rules_dir: Path = Path("./rules")
    rules_allowed_vars: RuleVars = Field(
        default=[], description="Environment variables a rule file may read (a webhook's secret: ${NAME}), "
        "comma-separated, besides those named ALERTS_RULES_VAR_*, which it always may. Any other name is refused "
        "in the rule files, and ALERTS_* names cannot be listed: a trader could send a service secret to a URL "
        "of theirs.")
    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone: the day a date-only quote "
                          "belongs to.")
    key_prefix: str = Field(default="alerts", min_length=1, pattern=r"^\S+$",
                            description="Prefix of every Redis key this service writes.")

    # --- Slack ------------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_api_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://\S+$")
    slack_rate_per_second: float = Field(default=1.0, gt=0, description="Messages per second per Slack channel.")
    slack_burst: int = Field(default=3, ge=1, description="Messages a quiet Slack channel takes at once.")

    slack_signing_secret: SecretStr | None = Field(
        default=None, description="The Slack app's signing secret: POST /slack/interactions and /slack/commands "
        "take only requests signed with it. Unset: those endpoints answer 503.")
    slack_app_token: SecretStr | None = Field(
        default=None, description="The Slack app-level token (xapp-..., scope connections:write) for Socket Mode: "
        "buttons and /alerts reach the slack role over a websocket it opens, no public URL needed.")
    slack_allowed_users: Annotated[list[str], NoDecode] = Field(
        default=[], description="Slack user ids (U0123ABCD,U0456EFGH) that may snooze and silence from Slack; a "
        "rule's owner (owners: in the rule files) may too. Anyone in the channel may acknowledge.")

    ops_slack_channel: str | None = Field(
        default=None, description="Slack channel told once about every delivery that failed for good.")

    # --- email: email targets and digests -------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = Field(default=False, description="implicit TLS (port 465) instead of STARTTLS")
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle for the relay's certificate "
                                      "(an internal CA); default: the system's")
    email_from: str = "alerts@localhost"

    # --- the hot path (units in the names) ------------------------------------------------------------
    stream_shards: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Event stream shards. Events of one product always go to one shard, which one "
        "evaluator owns at a time, so a product's quotes are evaluated in order. Fixed per deployment.",
    )
    batch_size: int = Field(default=1000, ge=1, description="Events read per shard per XREADGROUP.")
    block_ms: int = Field(default=500, ge=1, description="XREADGROUP block time; far below socket timeout.")
    lease_seconds: float = Field(default=10.0, gt=0, description="How long an evaluator owns a shard.")
    claim_idle_seconds: float = Field(
        default=30.0, gt=0, description="Pending events idle this long belong to a dead consumer and are claimed."
    )
    socket_timeout_seconds: float = Field(default=10.0, gt=0)
    event_retention_days: float = Field(default=7.0, gt=0, description="Evaluated events are trimmed after this.")
    alert_retention_days: float = Field(default=90.0, gt=0, description="Alert history is trimmed after this.")
    quote_retention_days: float = Field(
        default=400.0, gt=0, description="Quote and news history older than this (event time, before each "
        "series' newest) is trimmed; never less than the longest change window of any rule.")
    max_future_days: float = Field(
        default=1.0, ge=0, description="A quote or article dated more than this many days after now (in "
        "timezone) is refused by publish and backtests: a date in the future would mute the real quotes after it.")

    quote_max_daily_move_pct: float = Field(
        default=25.0, gt=0, le=1000, description="Quote sanity: a quote that moves more than this from its "
        "product's last quote in a day (or 8 times the product's median daily move, if larger; scaled by the square "
        "root of the days between them, 90 at most) is held in the quarantine (`alerts quotes held`), not used.")

    sources_file: Path = Field(default=Path("./sources.yaml"), description="The operators' feed sources "
                               "(YAML) the pollers fetch; a missing file means no pollers.")

    # --- the HTTP app (the ``http`` role) ----------------------------------------------------------
    http_host: str = Field(default="127.0.0.1", min_length=1, description="Address the HTTP app listens on.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Its port (0: any free port).")
    ingest_token: SecretStr | None = Field(
        default=None, description="Bearer token POST /events requires. Unset: the app serves loopback only.")
    ingest_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="Largest body POST /events takes.")

    fx_max_age_days: float = Field(
        default=7.0, gt=0, description="An exchange rate older than this (in event time) is not used: a "
        "threshold in another currency does not fire, a quote in another currency is refused.")
    composite_grace_seconds: float = Field(
        default=7200.0, ge=0, description="Spreads and all_of rules are evaluated in event time: a time waits "
        "for the other legs' quotes up to this long, then is evaluated with what is known.")

    breaker_max_alerts: int = Field(
        default=20, ge=1, description="Circuit breaker: a rule that fires more than this many times within "
        "breaker_window_seconds is paused until `alerts rules resume ID`.")
    breaker_window_seconds: float = Field(default=600.0, gt=0, description="Circuit breaker window.")

    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines of `alerts run` and `alerts worker`: plain text, or one JSON object "
        "per line (time, level, logger, message, and alert_id, rule_id, event_id, source when a line has them).")

    # --- delivery ---------------------------------------------------------------------------------
    queue_name: str = Field(default="alerts-notify", min_length=1)
    delivery_result_ttl_seconds: int = Field(default=3600, ge=0)
    delivery_retry_intervals_seconds: Annotated[list[Annotated[int, Field(ge=0)]], NoDecode] = Field(
        default=[5, 30, 120, 600, 1800], min_length=1,
        description="Seconds between retries: JSON [5,30,120] or 5,30,120.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        if not _zone_exists(v):
            close = difflib.get_close_matches(v, sorted(available_timezones()), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "use an IANA name such as Asia/Shanghai or UTC"
            raise ValueError(f"unknown time zone; {hint}")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix:// (value not shown: it may hold a password)")
        return v

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _sentinel_list(cls, v: Any) -> Any:
        return _comma_list(v, "host:port such as s1:26379,s2:26379")

    @field_validator("slack_allowed_users", mode="before")
    @classmethod
    def _user_list(cls, v: Any) -> Any:
        return _comma_list(v, "Slack user ids such as U0123ABCD,U0456EFGH")

    @field_validator("slack_allowed_users")
    @classmethod
    def _user_ids(cls, v: list[str]) -> list[str]:
        for item in v:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", item):
                raise ValueError(f"{item!r} is not a Slack user id such as U0123ABCD")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("must be a Slack app-level token starting with xapp- (value not shown); a bot token "
                             "(xoxb-) goes in ALERTS_SLACK_BOT_TOKEN")
        return v

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, v: list[str]) -> list[str]:
        for item in v:
            sentinel_address(item)
        return v

    @field_validator("redis_ca_file")
    @classmethod
    def _ca_file_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(f"no such file: {v}")
        return v

    @field_validator("delivery_retry_intervals_seconds", mode="before")
    @classmethod
    def _intervals(cls, v: Any) -> Any:
        if isinstance(v, str):
            text = v.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("not a list of seconds such as [5,30,120] or 5,30,120") from None
            return [part.strip() for part in text.split(",")] if text else []
        return v

    @model_validator(mode="after")
    def _block_below_timeout(self) -> Settings:
        if self.block_ms >= self.socket_timeout_seconds * 1000:
            raise ValueError(f"ALERTS_BLOCK_MS ({self.block_ms}) must be below ALERTS_SOCKET_TIMEOUT_SECONDS "
                             f"({self.socket_timeout_seconds:g} s): a blocked read would time out")
        return self

    @model_validator(mode="after")
    def _redis_parts_fit(self) -> Settings:
        url = self.redis_url.get_secret_value() if self.redis_url is not None else None
        if self.redis_sentinels and url is not None:
            if url.startswith("unix://"):
                raise ValueError("ALERTS_REDIS_URL is a unix socket but ALERTS_REDIS_SENTINELS is set: with sentinels "
                                 "the URL gives only the scheme, user, password and db (rediss://:PASSWORD@/0)")
            if urlsplit(url).hostname:
                raise ValueError("ALERTS_REDIS_URL names a host but ALERTS_REDIS_SENTINELS finds the primary: drop "
                                 "the host from the URL (rediss://:PASSWORD@/0 for TLS and a password), or unset one")
        if url is None and not self.redis_sentinels:
            extra = [variable(name) for name in ("redis_password", "redis_username", "redis_ca_file",
                                                 "redis_min_replicas", "redis_sentinel_password")
                     if getattr(self, name) not in (None, 0)]
            if extra:
                raise ValueError(f"{', '.join(extra)} set but no Redis is configured (ALERTS_REDIS_URL or "
                                 "ALERTS_REDIS_SENTINELS): the private redis-server has no password, TLS or replicas")
        if self.redis_ca_file is not None and not (url or "").startswith("rediss://"):
            raise ValueError("ALERTS_REDIS_CA_FILE is set but the connection is not TLS: use a rediss:// "
                             "ALERTS_REDIS_URL")
        return self


def rule_var_allowed(name: str, allowed: Iterable[str]) -> bool:
    """Whether a rule file may read the environment variable ``name``: one named ``ALERTS_RULES_VAR_*``, or one
    of ``allowed`` (ALERTS_RULES_ALLOWED_VARS) that is no other ``ALERTS_*`` variable (in any case: settings
    are read ignoring case)."""
    if name.startswith(RULES_VAR_PREFIX):
        return True
    return not name.upper().startswith(PREFIX) and name in set(allowed)


def rules_allowed_vars(env_file: str | Path | None = ENV_FILE) -> list[str]:
    """ALERTS_RULES_ALLOWED_VARS alone, as ``load_settings`` reads it (the environment, then ``env_file``), for
    loading rule files where no Settings is at hand. Raises ConfigError, as ``load_settings`` does."""
    name = variable("rules_allowed_vars")
    env = {k.upper(): v for k, v in os.environ.items()}
    raw = env[name] if name in env else _dotenv(env_file).get(name)
    if raw is None:
        return []
    try:
        return _RULE_VARS.validate_python(raw)
    except ValidationError as exc:
        errors = [{**err, "loc": ("rules_allowed_vars", *err["loc"])} for err in exc.errors(include_url=False)]
        raise ConfigError("\n".join(_describe(err, env) for err in errors)) from None


def sentinel_address(item: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:26379`` for IPv6) -> (host, port); ValueError naming the item."""
    host, sep, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in item):
        raise ValueError(f"{item!r} is not host:port")
    return host, int(port)


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError; "../x" a ValueError
        return False
    return True


def variable(field: str) -> str:
    """The environment variable of a setting: ``stream_shards`` -> ``ALERTS_STREAM_SHARDS``."""
    return PREFIX + field.upper()


@lru_cache(maxsize=1)
def known_variables() -> frozenset[str]:
    return frozenset(variable(name) for name in Settings.model_fields)


_SECRET = {name for name, f in Settings.model_fields.items() if "SecretStr" in repr(f.annotation)}
_FRIENDLY = {
    "int_parsing": "must be a whole number", "int_from_float": "must be a whole number",
    "float_parsing": "must be a number", "bool_parsing": "must be true or false",
    "greater_than_equal": "must be at least {ge}", "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}", "less_than": "must be less than {lt}",
    "string_too_short": "must not be empty", "too_short": "must not be empty",
    "string_pattern_mismatch": "has white space or is not of the expected form",
}


def _describe(err: Mapping[str, Any], env: Mapping[str, str]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    template = _FRIENDLY.get(err["type"])
    ctx = {k: f"{v:g}" if isinstance(v, float) else v for k, v in err.get("ctx", {}).items()}
    msg = template.format(**ctx) if template else str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return msg
    field = loc[0]
    name = variable(field)
    where = "" if name in env else f" (in {ENV_FILE})"
    item = f" item {int(loc[1]) + 1}" if len(loc) > 1 and loc[1].isdigit() else ""
    value = err.get("input")
    shown = "" if field in _SECRET or item or not isinstance(value, str) else f"={value!r}"
    if field == "delivery_retry_intervals_seconds" and item and err["type"] == "greater_than_equal":
        msg = "must not be negative"
    return f"{name}{shown}{where}:{item} {msg}"


def load_settings(warn: Callable[[str], None] | None = None, env_file: str | Path | None = ENV_FILE) -> Settings:
    """The settings of this process (environment, then ``env_file``). Raises ConfigError, one line per bad
    variable, naming it; warns once (through ``warn``, default the log) about each ``ALERTS_*`` variable
    that no setting has."""
    env = {k.upper(): v for k, v in os.environ.items()}
    for message in unknown_variables([*env, *_dotenv(env_file)]):
        _warn_once(message, warn)
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = [_describe(err, env) for err in exc.errors(include_url=False)]
    except SettingsError as exc:  # pydantic-settings could not read a value at all
        m = re.search(r'field "(\w+)"', str(exc))
        lines = [f"{variable(m.group(1)) if m else 'a setting'}: cannot be read ({exc.__cause__ or exc})"]
    raise ConfigError("\n".join(lines))


def _dotenv(env_file: str | Path | None) -> dict[str, str]:
    if env_file is None or not Path(env_file).is_file():
        return {}
    from dotenv import dotenv_values  # pydantic-settings' own reader of .env files

    return {k.upper(): v or "" for k, v in dotenv_values(env_file).items()}


def unknown_variables(names: Iterable[str]) -> list[str]:
    """A warning for each ``ALERTS_*`` name that is no setting, with the closest setting's name."""
    known = known_variables()
    out = []
    for name in sorted({n.upper() for n in names if n.upper().startswith(PREFIX)
                        and not n.startswith(RULES_VAR_PREFIX)} - known):  # rule files' own variables
        close = difflib.get_close_matches(name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in sorted(known)],
                                          n=1, cutoff=0.6)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else " (README: Settings)"
        out.append(f"{name} is not a setting, ignored{hint}")
    return out


_warned: set[str] = set()


def _warn_once(message: str, warn: Callable[[str], None] | None) -> None:
    if message in _warned:
        return
    _warned.add(message)
    (warn or log.warning)(message)


def print_warning(message: str) -> None:
    """A warning for the person at the terminal: ``alerts: warning: ...`` on stderr."""
    print(f"alerts: warning: {message}", file=sys.stderr, flush=True)
