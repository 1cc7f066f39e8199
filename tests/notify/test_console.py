"""The console target: one line per alert, naming every target printed there."""

from __future__ import annotations

import pytest

from alerts.model import Alert
from alerts.notify.console import ConsoleNotifier
from alerts.targets import Target, parse_target


def stands_in(t: Target) -> str | None:
    return {"console": "", "slack": "Slack not configured"}.get(t.kind)


def alert(*targets: str) -> Alert:
    return Alert(id="a1", rule_id="r", kind="price", condition="above", severity="warning", targets=targets,
                 description="", event_id="e", source="demo", at=0.0, text="Pr-Nd oxide 452,000 CNY/t")


def test_an_alert_to_slack_and_console_is_printed_once_naming_both(capsys: pytest.CaptureFixture[str]) -> None:
    a = alert("slack:#rare-earths", "console", "webhook:desk")
    n = ConsoleNotifier(stands_in)
    for t in a.targets:
        if stands_in(parse_target(t)) is not None:  # each target is its own delivery job
            n.send(a, parse_target(t))
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith(" ALERT WARNING [r] Pr-Nd oxide 452,000 CNY/t (source: demo) "
                         "-> slack:#rare-earths (Slack not configured), console")


def test_targets_with_other_quiet_hours_get_their_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    a = alert("slack:#desk?quiet=22:00-07:00", "console")
    n = ConsoleNotifier(stands_in)
    n.send(a, parse_target("console"))
    n.send(a, parse_target("slack:#desk?quiet=22:00-07:00"))
    lines = capsys.readouterr().out.splitlines()
    assert [x.rsplit(" -> ", 1)[1] for x in lines] == ["console",
                                                      "slack:#desk?quiet=22:00-07:00 (Slack not configured)"]


def test_a_target_the_alert_does_not_name_is_printed_alone(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleNotifier().send(alert("slack:#desk"), parse_target("console"))
    assert capsys.readouterr().out.rstrip().endswith("-> console")
