"""``alerts status``: data freshness is not service health. A product without a stale-feed rule is stale after
``STALE_DEFAULT_BUSINESS_DAYS`` business days without a quote (weekends and the rule files' ``holidays:`` not
counted), and stale data has its own exit status (4), distinct from an unhealthy service's (1)."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import heartbeats
from alerts.store.keys import Keys
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules
from workers.cli import main as cli
from workers.cli.status import (
    EXIT_HEALTHY,
    EXIT_STALE,
    EXIT_UNHEALTHY,
    STALE_DEFAULT_BUSINESS_DAYS,
    collect,
    render,
    stale_by_default,
)

TZ = "Asia/Shanghai"
RULES = """
rules:
  - id: tb-stale
    stale: {product: terbium oxide, after: 3 business days}
    notify: [console]
"""


def at(day: str, hhmm: str = "09:00") -> float:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=ZoneInfo(TZ)).timestamp()


def quote(product: str, as_of: str, price: float = 440_000, unit: str = "CNY/t") -> dict[str, object]:
    return {"type": "price", "product": product, "price": price, "unit": unit, "as_of": as_of}


def line_of(text: str, product: str) -> str:
    (line,) = [ln for ln in text.splitlines() if f"quotes      {product}:" in ln]
    return line


def live(client: redis.Redis, now: float) -> None:
    heartbeats.beat(client, Keys(), "h:1", host="h", pid=1, roles=["evaluate", "dispatch"], started=now - 60,
                    doing={}, now=now)


def test_a_friday_quote_is_fresh_over_the_weekend_and_a_week_old_one_is_stale(settings: Settings,
                                                                              client: redis.Redis,
                                                                              rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    Pipeline(client, settings).run(quote("Pr-Nd oxide", "2025-03-07"),  # a Friday
                                   quote("dysprosium oxide", "2025-03-03", 1_700, "CNY/kg"))  # the Monday before
    for when in (at("2025-03-10", "00:05"), at("2025-03-10", "23:59"), at("2025-03-11", "10:00")):
        live(client, when)
        s = collect(client, settings, now=when)
        text = render(s)
        assert line_of(text, "Pr-Nd oxide").startswith("ok    quotes      Pr-Nd oxide: 440,000 CNY/t as of 2025-03-07")
        dy = line_of(text, "dysprosium oxide")
        assert dy.startswith("STALE quotes      dysprosium oxide: 1,700 CNY/kg as of 2025-03-03"), text
        assert "no stale-feed rule: 3 business days without a quote, weekends not counted" in dy
        assert s.healthy and s.fresh is False and s.exit_status == EXIT_STALE, text
        assert text.splitlines()[-1] == "healthy (1 warning); data STALE: 1 product (exit status 4)"
    when = at("2025-03-12")  # Mon and Tue without a quote: 2 business days, still fresh
    live(client, when)
    assert line_of(render(collect(client, settings, now=when)), "Pr-Nd oxide").startswith("ok ")
    when = at("2025-03-13")  # Mon, Tue, Wed: stale
    live(client, when)
    assert line_of(render(collect(client, settings, now=when)), "Pr-Nd oxide").startswith("STALE ")


def test_the_rule_files_holidays_are_not_counted(settings: Settings, client: redis.Redis, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES + "holidays: [2025-03-10]\n")
    Pipeline(client, settings).run(quote("Pr-Nd oxide", "2025-03-07"))
    when = at("2025-03-13")  # Tue and Wed were due; Monday was a holiday
    live(client, when)
    text = render(collect(client, settings, now=when))
    assert line_of(text, "Pr-Nd oxide").startswith("ok "), text
    write_rules(rules_dir, RULES)  # without it: Mon, Tue, Wed
    text = render(collect(client, settings, now=when, rules=load_rules(rules_dir, timezone=TZ)))
    assert line_of(text, "Pr-Nd oxide").startswith("STALE "), text
    write_rules(rules_dir, RULES + "holidays: [2025-03-10, 2025-03-11, 2025-03-12]\n")
    text = render(collect(client, settings, now=at("2025-03-19"), rules=load_rules(rules_dir, timezone=TZ)))
    assert "weekends and the rule files' holidays not counted" in line_of(text, "Pr-Nd oxide"), text


def test_stale_data_exits_4_and_a_dead_process_exits_1(settings: Settings, client: redis.Redis, rules_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Through the command, on today's clock: a week-old quote with a healthy service is 4; a dead process
    whose role nobody runs is 1 whatever the data; a fresh quote and a live process are 0."""
    write_rules(rules_dir, RULES)
    today = date.today()
    pipeline = Pipeline(client, settings)
    pipeline.run(quote("Pr-Nd oxide", (today - timedelta(days=7)).isoformat()))
    for k, v in env_for(settings).items():
        monkeypatch.setenv(k, v)
    live(client, time.time())
    capsys.readouterr()
    assert cli.main(["status"]) == EXIT_STALE == 4
    out = capsys.readouterr().out
    assert "STALE quotes      Pr-Nd oxide" in out and not [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert cli.main(["status", "--format", "json"]) == 4
    doc = json.loads(capsys.readouterr().out)
    assert (doc["healthy"], doc["fresh"], doc["exit_status"]) == (True, False, 4)
    assert doc["freshness"] == {"fresh": False, "stale": 1} and doc["service"]["failures"] == 0
    assert [c["section"] for c in doc["checks"] if c["area"] == "quotes"] == ["data"]
    heartbeats.beat(client, Keys(), "h:2", host="h", pid=2, roles=["deliver"], started=time.time() - 600,
                    doing={}, now=time.time() - heartbeats.DEAD_AFTER_SECONDS - 30)
    assert cli.main(["status", "--format", "json"]) == EXIT_UNHEALTHY == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["healthy"], doc["fresh"], doc["exit_status"]) == (False, False, 1)
    client.delete(heartbeats.proc_key(Keys(), "h:2"))
    client.zrem(heartbeats.procs_key(Keys()), "h:2")
    pipeline.run(quote("Pr-Nd oxide", today.isoformat()))
    live(client, time.time())
    assert cli.main(["status"]) == EXIT_HEALTHY == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("; data fresh (exit status 0)")


def test_the_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["status", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 healthy and fresh; 1 the service is unhealthy" in text and "4 the service is healthy but some data is " \
        "stale" in text


days = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1))
times = st.integers(min_value=0, max_value=86399)
holiday_sets = st.frozensets(st.dates(min_value=date(1999, 12, 1), max_value=date(2100, 2, 1)), max_size=20)


def _moment(day: date, second: int) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).timestamp() + second


@given(days, times, holiday_sets)
def test_for_any_friday_the_weekend_and_the_monday_after_are_fresh(day: date, second: int,
                                                                   holidays: frozenset[date]) -> None:
    friday = day + timedelta(days=(4 - day.weekday()) % 7)
    for later in range(4):  # Friday itself, Saturday, Sunday, Monday
        assert not stale_by_default(friday, _moment(friday + timedelta(days=later), second), TZ, holidays)


@given(days, times, st.integers(min_value=7, max_value=400))
def test_for_any_day_a_week_or_more_later_is_stale_without_holidays(day: date, second: int, after: int) -> None:
    assert stale_by_default(day, _moment(day + timedelta(days=after), second), TZ)


@given(days, times, st.integers(min_value=0, max_value=60), holiday_sets)
def test_holidays_only_ever_make_a_quote_fresher(day: date, second: int, after: int,
                                                 holidays: frozenset[date]) -> None:
    now = _moment(day + timedelta(days=after), second)
    if stale_by_default(day, now, TZ, holidays):
        assert stale_by_default(day, now, TZ)
    due = sum(1 for n in range(1, after) if (day + timedelta(days=n)).weekday() < 5)
    assert stale_by_default(day, now, TZ) == (due >= STALE_DEFAULT_BUSINESS_DAYS)
