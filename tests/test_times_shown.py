"""One rule for every time a person reads (README "Times"): in ALERTS_TIMEZONE with its UTC offset,
``2025-03-11 15:04:05 +08:00`` (``alerts.durations.format_time``): ``alerts history``, ``alerts failed``, the
digest, what Slack is told was done, ``rules explain``, ``alerts status``'s digests, the console; text log lines
start with the ISO time and its offset in ALERTS_TIMEZONE."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import redis

from alerts.durations import format_time
from alerts.model import Alert
from alerts.notify.console import ConsoleNotifier
from alerts.notify.notifiers import Notifiers
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import failures
from alerts.store.delivery import DeliveryStore
from alerts.store.keys import Keys
from alerts.targets import parse_target
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules
from workers.cli import main as cli
from workers.logs import TextFormatter
from workers.web.slack_actions import SlackActions

#: A time as format_time shows it, and the offset it ends with.
SHOWN = r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? ([+-]\d\d:\d\d)"
RULES = """
digests:
  - {name: desk-daily, schedule: "0 8 * * 1-5", to: [desk@example.com]}
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    cooldown: 1d
    notify: [console, digest:desk-daily]
"""


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(args)
    got = capsys.readouterr()
    return rc, got.out, got.err


@pytest.fixture(params=["Asia/Shanghai", "America/Chicago"])
def zoned(request: pytest.FixtureRequest, settings: Settings, rules_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Settings:
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"timezone": request.param})
    for k, v in env_for(s, ALERTS_TIMEZONE=request.param).items():
        monkeypatch.setenv(k, v)
    return s


def offsets(text: str) -> set[str]:
    return set(re.findall(SHOWN, text))


def zone_offsets(tz: str) -> set[str]:
    """The offsets ``tz`` has now and half a year from now (daylight saving time)."""
    now = time.time()
    return {format_time(t, tz)[-6:] for t in (now, now + 183 * 86400)}


def test_history_failed_explain_and_status_show_times_in_the_zone_with_its_offset(
        zoned: Settings, client: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    p = Pipeline(client, zoned)
    p.run(quote(452_000, "2025-02-25"))
    capsys.readouterr()
    rc, out, err = _cli(["history"], capsys)
    assert rc == 0, err
    head, *deliveries = out.splitlines()
    assert re.match(SHOWN + "  prnd-450k  ", head), out
    assert any(re.search(r"console\s+delivered " + SHOWN, d) for d in deliveries), out
    assert offsets(out) and offsets(out) <= zone_offsets(zoned.timezone), out
    failures.record(client, Keys(zoned.key_prefix), "f1", {"rule_id": "prnd-450k"}, "slack:#desk", "refused",
                    True)
    rc, out, err = _cli(["failed"], capsys)
    assert rc == 0 and re.match(r"f1  " + SHOWN + "  slack:#desk  prnd-450k  refused: refused", out), out
    assert offsets(out) <= zone_offsets(zoned.timezone)
    rc, out, err = _cli(["rules", "explain", "prnd-450k"], capsys)
    assert rc == 0 and re.search(r"cooldown until " + SHOWN, out), out
    assert offsets(out) <= zone_offsets(zoned.timezone) | {"+08:00", "-06:00", "-05:00"}  # the quote's day
    rc, out, err = _cli(["status"], capsys)
    line = next(x for x in out.splitlines() if "desk-daily: next" in x)
    assert re.search(r"next " + SHOWN + r", 1 alerts waiting, last sent never", line), line


def test_a_time_shown_is_the_same_moment_in_any_zone() -> None:
    ts = 1_741_676_645.0
    assert format_time(ts, "Asia/Shanghai") == "2025-03-11 15:04:05 +08:00"
    assert format_time(ts, "America/Chicago") == "2025-03-11 02:04:05 -05:00"  # CDT: not "CST", which is both


def test_what_slack_is_told_was_done_names_the_zone(settings: Settings, client: redis.Redis,
                                                     rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir, timezone="Asia/Shanghai")
    posted: list[dict[str, object]] = []
    actions = SlackActions(client, settings.model_copy(update={"slack_allowed_users": ["U0ALLOWED"]}),
                           lambda: rules, lambda url, body: posted.append(body), now=lambda: 1_741_676_645.0)
    value = json.dumps({"a": "a1", "r": "prnd-450k", "p": "Pr-Nd oxide"})
    for action in ("alerts_ack", "alerts_snooze_1h"):
        actions.interaction({"type": "block_actions", "user": {"id": "U0ALLOWED", "username": "ann"},
                             "response_url": "https://hooks.slack.com/x",
                             "actions": [{"action_id": action, "block_id": "alerts_actions", "value": value}]})
    texts = [str(b["text"]) for b in posted]
    assert texts[0] == "*Acknowledged* by <@U0ALLOWED> at 2025-03-11 15:04 +08:00", texts
    assert "at 2025-03-11 15:04 +08:00, until 2025-03-11 16:04 +08:00 (silence " in texts[1], texts


def test_the_console_line_starts_with_the_time_and_its_offset(settings: Settings, client: redis.Redis,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    a = Alert(id="a1", rule_id="r", kind="price", condition="above", severity="warning", targets=("console",),
              description="", event_id="e", source="demo", at=0.0, text="Pr-Nd oxide 452,000 CNY/t")
    for tz in ("Asia/Shanghai", "America/Chicago"):
        s = settings.model_copy(update={"timezone": tz})
        notifier = Notifiers(s, DeliveryStore(client, Keys()), dict).for_target(parse_target("console"))
        assert isinstance(notifier, ConsoleNotifier)
        notifier.send(a, parse_target("console"))
        (line,) = capsys.readouterr().out.splitlines()
        m = re.match(SHOWN + " ALERT WARNING", line)
        assert m and m.group(1) in zone_offsets(tz), line


def test_text_log_lines_start_with_an_iso_time_and_its_offset(settings: Settings, tmp_path: Path) -> None:
    record = logging.LogRecord("alerts.test", logging.INFO, __file__, 1, "hello %s", ("desk",), None)
    record.created = 1_741_676_645.123
    assert TextFormatter("Asia/Shanghai").format(record) == "2025-03-11T15:04:05.123+08:00 INFO alerts.test: hello desk"
    assert TextFormatter().format(record).startswith("2025-03-11T07:04:05.123+00:00 INFO")
    # a real process: `alerts worker --role poll` logs what it polls
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  - {name: v, kind: json, url: 'http://127.0.0.1:9/p', every: 1h}\n")
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "poll"],
                            env=env_for(settings, ALERTS_SOURCES_FILE=str(sources), ALERTS_TIMEZONE="America/Chicago"),
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d)) INFO ", line)
    assert m and m.group(2) in zone_offsets("America/Chicago"), line
    assert abs(datetime.fromisoformat(m.group(1)).timestamp() - time.time()) < 120
