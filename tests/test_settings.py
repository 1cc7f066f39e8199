"""Settings (issue 8): a value that cannot work is one line naming its variable; a variable that is no setting
is warned about once, with the closest name; the documents name only real settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import alerts.settings as settings_module
from alerts.errors import ConfigError
from alerts.settings import Settings, known_variables, load_settings, unknown_variables

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env of the developer's, and the once-only warnings start afresh."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings_module, "_warned", set())


@pytest.mark.parametrize("name,value,line", [
    ("ALERTS_STREAM_SHARDS", "abc", "ALERTS_STREAM_SHARDS='abc': must be a whole number"),
    ("ALERTS_STREAM_SHARDS", "0", "ALERTS_STREAM_SHARDS='0': must be at least 1"),
    ("ALERTS_STREAM_SHARDS", "1000", "ALERTS_STREAM_SHARDS='1000': must be at most 256"),
    ("ALERTS_BATCH_SIZE", "-5", "ALERTS_BATCH_SIZE='-5': must be at least 1"),
    ("ALERTS_LEASE_SECONDS", "ten", "ALERTS_LEASE_SECONDS='ten': must be a number"),
    ("ALERTS_LEASE_SECONDS", "0", "ALERTS_LEASE_SECONDS='0': must be more than 0"),
    ("ALERTS_SMTP_STARTTLS", "maybe", "ALERTS_SMTP_STARTTLS='maybe': must be true or false"),
    ("ALERTS_SMTP_PORT", "70000", "ALERTS_SMTP_PORT='70000': must be at most 65535"),
    ("ALERTS_MAX_FUTURE_DAYS", "-1", "ALERTS_MAX_FUTURE_DAYS='-1': must be at least 0"),
    ("ALERTS_EVENT_RETENTION_DAYS", "0", "ALERTS_EVENT_RETENTION_DAYS='0': must be more than 0"),
    ("ALERTS_TIMEZONE", "Asia/Shanghia", "ALERTS_TIMEZONE='Asia/Shanghia': unknown time zone; did you mean "
                                         "Asia/Shanghai?"),
    ("ALERTS_TIMEZONE", "Mars/Olympus", "ALERTS_TIMEZONE='Mars/Olympus': unknown time zone; use an IANA name such "
                                        "as Asia/Shanghai or UTC"),
    ("ALERTS_TIMEZONE", "../../etc/passwd", "ALERTS_TIMEZONE='../../etc/passwd': unknown time zone; use an IANA "
                                            "name such as Asia/Shanghai or UTC"),
    ("ALERTS_TIMEZONE", "", "ALERTS_TIMEZONE='': unknown time zone; use an IANA name such as Asia/Shanghai or UTC"),
    ("ALERTS_KEY_PREFIX", "", "ALERTS_KEY_PREFIX='': must not be empty"),
    ("ALERTS_SLACK_API_URL", "slack.com/api", "ALERTS_SLACK_API_URL='slack.com/api': has white space or is not of "
                                              "the expected form"),
    ("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", "5,x", "ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS: item 2 must be a "
                                                      "whole number"),
    ("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", "[5,-1]", "ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS: item 2 must not "
                                                          "be negative"),
    ("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", "[5,", "ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS='[5,': not a list of "
                                                       "seconds such as [5,30,120] or 5,30,120"),
    ("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", "", "ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS: must not be empty"),
    ("ALERTS_REDIS_URL", "hunter2@localhost:6379", "ALERTS_REDIS_URL: must start with redis://, rediss:// or "
                                                    "unix:// (value not shown: it may hold a password)"),
    ("ALERTS_BLOCK_MS", "20000", "ALERTS_BLOCK_MS (20000) must be below ALERTS_SOCKET_TIMEOUT_SECONDS (10 s): a "
                                 "blocked read would time out"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                     line: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert str(exc.value) == line


def test_each_bad_variable_has_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTS_STREAM_SHARDS", "abc")
    monkeypatch.setenv("ALERTS_TIMEZONE", "Nowhere")
    monkeypatch.setenv("ALERTS_BATCH_SIZE", "-1")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    lines = str(exc.value).splitlines()
    assert [line.split("=")[0] for line in lines] == ["ALERTS_TIMEZONE", "ALERTS_STREAM_SHARDS", "ALERTS_BATCH_SIZE"]


def test_a_bad_value_in_the_env_file_says_so(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ALERTS_BATCH_SIZE=0\n")
    with pytest.raises(ConfigError, match=r"^ALERTS_BATCH_SIZE='0' \(in \.env\): must be at least 1$"):
        load_settings()


def test_good_values_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALERTS_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", " 1, 2 ,3")
    (tmp_path / ".env").write_text("ALERTS_MAX_FUTURE_DAYS=2.5\nalerts_stream_shards=16\n")
    s = load_settings()
    assert (s.timezone, s.delivery_retry_intervals_seconds, s.max_future_days, s.stream_shards) == (
        "Europe/Berlin", [1, 2, 3], 2.5, 16)
    monkeypatch.setenv("ALERTS_DELIVERY_RETRY_INTERVALS_SECONDS", "[10, 20]")
    assert load_settings().delivery_retry_intervals_seconds == [10, 20]
    assert Settings(_env_file=None).max_future_days == 1.0  # type: ignore[call-arg]


def test_the_time_zone_is_checked_by_the_settings_themselves() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(_env_file=None, timezone="Asia/Atlantis")  # type: ignore[call-arg]


def test_a_secret_value_is_never_shown() -> None:
    assert "SecretStr" in repr(Settings.model_fields["smtp_password"].annotation)
    assert {"redis_url", "slack_bot_token", "smtp_password"} <= settings_module._SECRET
    line = settings_module._describe({"type": "string_type", "loc": ("smtp_password",), "msg": "Input should be a "
                                      "valid string", "input": "hunter2"}, {"ALERTS_SMTP_PASSWORD": "hunter2"})
    assert "hunter2" not in line and line.startswith("ALERTS_SMTP_PASSWORD:")


def test_unknown_variables_are_warned_about_once_with_the_closest_name(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("ALERTS_STREAM_SHARD", "4")
    monkeypatch.setenv("alerts_slack_token", "x")  # names are case-insensitive, as the settings are
    monkeypatch.setenv("ALERTS_WIBBLE", "1")
    monkeypatch.setenv("NOT_OURS_TIMEZONE", "UTC")
    (tmp_path / ".env").write_text("ALERTS_TIMEZOME=UTC\nOTHER_APP=1\n")
    warned: list[str] = []
    settings = load_settings(warn=warned.append)
    load_settings(warn=warned.append)  # once per process, however often they are read
    assert settings.stream_shards == 8
    assert warned == [
        "ALERTS_SLACK_TOKEN is not a setting, ignored; did you mean ALERTS_SLACK_BOT_TOKEN?",
        "ALERTS_STREAM_SHARD is not a setting, ignored; did you mean ALERTS_STREAM_SHARDS?",
        "ALERTS_TIMEZOME is not a setting, ignored; did you mean ALERTS_TIMEZONE?",
        "ALERTS_WIBBLE is not a setting, ignored (README: Settings)",
    ]


def test_every_setting_is_known_and_nothing_else() -> None:
    assert unknown_variables([f"alerts_{name}" for name in Settings.model_fields]) == []
    assert "ALERTS_MAX_FUTURE_DAYS" in known_variables()


@pytest.mark.parametrize("doc", ["README.md", "deploy/alerts.env.example", "deploy/README.md"])
def test_the_documents_name_only_real_settings(doc: str) -> None:
    text = re.sub(r"ALERTS_\w+ is\s+not a setting", "", (REPO / doc).read_text("utf-8"))  # the warning's example
    names = set(re.findall(r"\bALERTS_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert names, doc
    assert sorted(names - known_variables()) == [], doc


def test_the_event_defaults_are_the_settings_defaults() -> None:
    """One home for a default: the events' fallbacks (for callers without settings) are Settings' own."""
    from alerts.events.limits import DEFAULT_FX_MAX_AGE_DAYS, DEFAULT_MAX_FUTURE_DAYS

    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (DEFAULT_FX_MAX_AGE_DAYS, DEFAULT_MAX_FUTURE_DAYS) == (s.fx_max_age_days, s.max_future_days)
