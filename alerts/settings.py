"""All runtime configuration, read from ``ALERTS_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for every setting. Secrets are ``SecretStr``: their repr is ``'**********'``."""

    model_config = SettingsConfigDict(env_prefix="ALERTS_", env_file=".env", extra="ignore")

    # --- where things live ---------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis to use. Unset: a private redis-server is started with its data in data_dir. "
        "A SecretStr because the URL may carry a password.",
    )
    data_dir: Path = Path("./.alerts")
    rules_dir: Path = Path("./rules")
    timezone: str = "Asia/Shanghai"
    key_prefix: str = Field(default="alerts", description="Prefix of every Redis key this service writes.")

    # --- Slack ------------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_rate_per_second: float = Field(default=1.0, gt=0, description="Messages per second per Slack channel.")
    slack_burst: int = Field(default=3, ge=1, description="Messages a quiet Slack channel takes at once.")

    ops_slack_channel: str | None = Field(
        default=None, description="Slack channel told once about every delivery that failed for good.")

    # --- email: email targets and digests -------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = 587
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
    socket_timeout_seconds: float = 10.0
    event_retention_days: float = Field(default=7.0, description="Evaluated events are trimmed after this.")
    alert_retention_days: float = Field(default=90.0, description="Alert history is trimmed after this.")

    composite_grace_seconds: float = Field(
        default=7200.0, ge=0, description="Spreads and all_of rules are evaluated in event time: a time waits "
        "for the other legs' quotes up to this long, then is evaluated with what is known.")

    breaker_max_alerts: int = Field(
        default=20, ge=1, description="Circuit breaker: a rule that fires more than this many times within "
        "breaker_window_seconds is paused until `alerts rules resume ID`.")
    breaker_window_seconds: float = Field(default=600.0, gt=0, description="Circuit breaker window.")

    # --- delivery ---------------------------------------------------------------------------------
    queue_name: str = "alerts-notify"
    delivery_result_ttl_seconds: int = 3600
    delivery_retry_intervals_seconds: list[int] = [5, 30, 120, 600, 1800]
