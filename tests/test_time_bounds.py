"""Durations and dates have bounds, and no time breaks what shows it: a silence lasts at most 365 days (``--for``,
``--until``, ``/alerts silence``), a rule's cooldown at most 365 days and its windows at most 400 days; for any
duration text parsing either gives a bounded number of seconds or a one-line ValueError, and for any number the
time formatter gives a string; a silence whose end is past any calendar (written by an earlier release) shows as
"(invalid time)" in ``alerts status``, ``silence list``, ``rules explain`` and ``/alerts silences``."""

from __future__ import annotations

import json
import math
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from alerts.durations import (
    INVALID_TIME,
    MAX_COOLDOWN,
    MAX_SILENCE,
    MAX_WINDOW,
    SILENCE_LIMIT,
    format_duration,
    format_time,
    parse_duration,
)
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.silence.model import Matchers, Silence
from alerts.store.keys import Keys
from alerts.store.silences import SilenceError, SilenceStore, build, describe, parse_until
from tests.conftest import env_for
from tests.servers import write_rules
from workers.cli import main as cli
from workers.web.slack_actions import SlackActions

ALLOWED = "U0ALLOWED"
RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [console]
"""
ZONES = st.sampled_from(["Asia/Shanghai", "UTC", "America/Chicago", "Pacific/Kiritimati", "America/St_Johns"])
#: Duration texts: well-formed ones of any size, and anything at all.
DURATION_TEXT = (st.builds(lambda n, u: f"{n}{u}", st.integers(min_value=0, max_value=10**30) | st.floats(0, 1e30),
                           st.sampled_from(["s", "m", "h", "d", "w", " d", "D"]))
                 | st.text(max_size=30) | st.sampled_from(["9" * 400 + "d", "1e9d", "1h30m", "nan", "inf"]))
NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-10**50, max_value=10**50)
NOW = 1_741_676_645.0  # 2025-03-11 15:04:05 in Shanghai


@given(DURATION_TEXT | NUMBERS, st.sampled_from([MAX_SILENCE, MAX_COOLDOWN, MAX_WINDOW, None]))
def test_any_duration_parses_within_its_bound_or_is_one_line_refused(text: str | float, maximum: float | None) -> None:
    try:
        seconds = parse_duration(text, maximum, "a thing lasts at most so long")
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 200
        return
    assert math.isfinite(seconds) and seconds >= 0
    assert maximum is None or seconds <= maximum
    assert format_duration(seconds)


@given(NUMBERS, ZONES, st.booleans())
def test_any_time_formats_with_its_offset_or_as_invalid(ts: float, tz: str, seconds: bool) -> None:
    shown = format_time(ts, tz, seconds=seconds)
    if shown == INVALID_TIME:
        return
    stamp, offset = shown.rsplit(" ", 1)
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    assert offset[0] in "+-" and offset[3] == ":" and len(offset) == 6
    assert isinstance(moment, datetime)


def test_the_time_format() -> None:
    assert format_time(NOW, "Asia/Shanghai") == "2025-03-11 15:04:05 +08:00"
    assert format_time(NOW, "America/Chicago", seconds=False) == "2025-03-11 02:04 -05:00"
    assert format_time(NOW, "UTC") == "2025-03-11 07:04:05 +00:00"
    assert [format_time(v, "UTC") for v in (8.64e15, -1e12, math.inf, math.nan)] == [INVALID_TIME] * 4


@pytest.fixture
def rules_loaded(rules_dir: Path) -> object:
    write_rules(rules_dir, RULES)
    return load_rules(rules_dir, timezone="Asia/Shanghai")


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=DURATION_TEXT)
def test_any_for_makes_a_silence_of_at_most_a_year_or_is_refused(rules_loaded: object, text: str) -> None:
    try:
        s = build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], for_=text, now=NOW)  # type: ignore[arg-type]
    except SilenceError as exc:
        assert "\n" not in str(exc)
        return
    assert s.ends is not None and NOW < s.ends <= NOW + MAX_SILENCE
    assert INVALID_TIME not in describe(s, "Asia/Shanghai", NOW)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40) | st.dates().map(date.isoformat)
       | st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat))
def test_any_until_makes_a_silence_of_at_most_a_year_or_is_refused(rules_loaded: object, text: str) -> None:
    try:
        parse_until(text, "Asia/Shanghai")
        s = build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], until=text, now=NOW)  # type: ignore[arg-type]
    except SilenceError as exc:
        assert "\n" not in str(exc)
        return
    assert s.ends is not None and NOW < s.ends <= NOW + MAX_SILENCE


def test_the_bound_messages(rules_loaded: object) -> None:
    with pytest.raises(SilenceError) as e:
        build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], for_="99999999999d", now=NOW)  # type: ignore[arg-type]
    assert str(e.value) == f"--for: '99999999999d' is too long: {SILENCE_LIMIT}"
    with pytest.raises(SilenceError) as e:
        build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], for_="366d", now=NOW)  # type: ignore[arg-type]
    assert "a silence lasts at most 365 days" in str(e.value)
    with pytest.raises(SilenceError) as e:
        build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], until="2026-03-12", now=NOW)  # type: ignore[arg-type]
    assert str(e.value) == "--until '2026-03-12' is more than a year ahead: a silence lasts at most 365 days"
    s = build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], for_="365d", now=NOW)  # type: ignore[arg-type]
    assert s.ends == NOW + 365 * 86400
    s = build(rules_loaded, author="ann", comment="x", rule=["prnd-450k"], until="2026-03-10", now=NOW)  # type: ignore[arg-type]
    assert s.ends is not None and s.ends < NOW + MAX_SILENCE


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(args)
    got = capsys.readouterr()
    return rc, got.out, got.err


@pytest.fixture
def env(settings: Settings, rules_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    write_rules(rules_dir, RULES)
    for k, v in env_for(settings).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("USER", "ann")
    return settings


def test_the_cli_and_slack_refuse_a_silence_past_a_year(env: Settings, client: redis.Redis,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _cli(["silence", "add", "--rule", "prnd-450k", "--for", "99999999999d", "--comment", "x"], capsys)
    assert rc == 2 and err == f"alerts: --for: '99999999999d' is too long: {SILENCE_LIMIT}\n"
    ahead = (date.today() + timedelta(days=400)).isoformat()
    rc, _, err = _cli(["silence", "add", "--rule", "prnd-450k", "--until", ahead, "--comment", "x"], capsys)
    assert rc == 2 and SILENCE_LIMIT in err and err.count("\n") == 1
    rules = load_rules(env.rules_dir, timezone=env.timezone)
    slack = SlackActions(client, env.model_copy(update={"slack_allowed_users": [ALLOWED]}), lambda: rules,
                         lambda url, body: None)
    answer = slack.command({"text": "silence prnd-450k 99999999999d known", "user_id": ALLOWED})
    assert SILENCE_LIMIT in answer["text"] and "Nothing was changed" in answer["text"]
    assert client.hlen(Keys(env.key_prefix).silences) == 0
    assert _cli(["status"], capsys)[0] in (0, 1)  # and nothing stored breaks what shows silences


def test_a_stored_end_past_any_calendar_shows_as_invalid_everywhere(env: Settings, client: redis.Redis,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """What an earlier release stored (``--for 99999999999d``: an end in the year 273 million)."""
    now = time.time()
    bad = Silence("0bad0end", Matchers(rule=("prnd-450k",)), "ann", "long", now, now + 99999999999 * 86400)
    SilenceStore(client, Keys(env.key_prefix)).save(bad)
    rc, out, err = _cli(["silence", "list"], capsys)
    assert rc == 0 and f"0bad0end  rule=prnd-450k  until {INVALID_TIME}" in out, err
    rc, out, err = _cli(["silence", "list", "--all", "--format", "json"], capsys)
    assert rc == 0 and json.loads(out)[0]["id"] == "0bad0end"
    rc, out, err = _cli(["status"], capsys)
    assert rc in (0, 1) and f"until {INVALID_TIME}" in out, err
    rc, out, err = _cli(["rules", "explain", "prnd-450k"], capsys)
    assert rc == 0 and f"SILENCED by 0bad0end  rule=prnd-450k  until {INVALID_TIME}" in out, err
    rules = load_rules(env.rules_dir, timezone=env.timezone)
    answer = SlackActions(client, env, lambda: rules, lambda url, body: None).command({"text": "silences"})
    assert f"until {INVALID_TIME}" in answer["text"]
    rc, out, err = _cli(["silence", "expire", "0bad0end"], capsys)
    assert rc == 0
    rc, out, err = _cli(["silence", "list", "--all"], capsys)
    assert rc == 0 and "EXPIRED" in out


@pytest.mark.parametrize("snippet,message", [
    ("    price: {product: Dy oxide, above: 1700}\n    cooldown: 366d\n",
     "cooldown: '366d' is too long: a cooldown lasts at most 365 days"),
    ("    price: {product: Dy oxide, change_pct: {over: 401d, above: 5}}\n",
     "price.change_pct.over: '401d' is too long: a window spans at most 400 days"),
    ("    all_of:\n      - price: {product: Dy oxide, above: 1700}\n      - news: {any: [x]}\n    within: 58w\n",
     "within: '58w' is too long: a window spans at most 400 days"),
    ("    stale: {product: Dy oxide, after: 500d}\n", "stale.after: '500d' is too long: a window spans at most 400"),
    ("    stale: {product: Dy oxide, after: 300 business days}\n", "at most 285 business days"),
    ("    price: {product: Dy oxide, above: 1700}\n    expires: 2200-01-01\n",
     "expires: 2200-01-01 is too far ahead: at most 2100-12-31"),
])
def test_rule_durations_have_bounds(rules_dir: Path, snippet: str, message: str) -> None:
    write_rules(rules_dir, "rules:\n  - id: r1\n    notify: [console]\n" + snippet)
    problems = [str(p) for p in load_rules(rules_dir).problems]
    assert any(message in p for p in problems), problems


def test_rule_durations_up_to_their_bounds_load(rules_dir: Path) -> None:
    write_rules(rules_dir, """
rules:
  - id: r1
    price: {product: Dy oxide, change_pct: {over: 400d, above: 5}}
    cooldown: 365d
    expires: 2100-12-31
    notify: [console]
  - id: r2
    stale: {product: Dy oxide, after: 285 business days}
    notify: [console]
""")
    rs = load_rules(rules_dir)
    assert rs.problems == [] and sorted(rs.by_id) == ["r1", "r2"]


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=DURATION_TEXT)
def test_any_rule_duration_is_a_problem_or_within_bounds(rules_dir: Path, text: str) -> None:
    value = json.dumps(text)
    write_rules(rules_dir, f"""
rules:
  - id: r1
    price: {{product: Dy oxide, change_pct: {{over: {value}, above: 5}}}}
    cooldown: {value}
    notify: [console]
  - id: r2
    all_of:
      - price: {{product: Dy oxide, above: 1700}}
      - news: {{any: [x]}}
    within: {value}
    notify: [console]
  - id: r3
    stale: {{product: Dy oxide, after: {value}}}
    notify: [console]
""")
    rs = load_rules(rules_dir)
    for rules in rs.by_id.values():
        for r in rules:
            assert 0 <= r.cooldown <= MAX_COOLDOWN
            for seconds in (getattr(r, "window", 0.0), getattr(r, "within", 0.0), getattr(r, "duration", 0.0)):
                assert seconds is None or 0 <= seconds <= MAX_WINDOW
