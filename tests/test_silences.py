"""Silences end to end, against a real Redis, the real pipeline (evaluator, dispatcher, rq delivery worker) and
a Slack stand-in: a silenced rule that fires is not delivered and ``alerts history`` names the silence; once
the silence is expired or its end passes, the next alert is delivered; matchers combine; until-resolved ends
when the rule re-arms; the CLI refuses in one line."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore, end_resolved
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, write_rules
from workers.cli import main as cli

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [slack:#desk]
  - id: oxides-high
    price: {products: [Pr-Nd oxide, Nd oxide], above: 450000 CNY/t}
    notify: [slack:#oxides]
  - id: prnd-resolving
    price: {product: Pr-Nd oxide, above: 460000 CNY/t}
    resolve: true
    notify: [slack:#resolving]
  - id: licences
    news: {any: [export licen*]}
    notify: [slack:#news]
"""


@pytest.fixture
def p(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path,
      monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    write_rules(rules_dir, RULES)
    s = settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                    "delivery_retry_intervals_seconds": [0, 0]})
    for k, v in env_for(s).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("USER", "ann")
    return Pipeline(client, s)


def alerts(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(args)
    got = capsys.readouterr()
    return rc, got.out, got.err


def silence(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    rc, out, err = alerts(["silence", "add", *args], capsys)
    assert rc == 0, err
    assert out.startswith("silence ")
    return out.split()[1]


def sent_to(slack: SlackServer, channel: str) -> list[str]:
    return [m["text"] for m in slack.messages if m["channel"] == channel]


def history(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    rc, out, _ = alerts(["history", "--format", "json", *args], capsys)
    assert rc == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_a_silenced_rule_is_not_delivered_until_the_silence_is_expired(p: Pipeline, slack: SlackServer,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    sid = silence(capsys, "--rule", "prnd-450k", "--for", "2h", "--comment", "known: Baotou restocking")
    p.run(quote(451_000, "2025-03-10"))
    assert sent_to(slack, "#desk") == [] and len(sent_to(slack, "#oxides")) == 1  # only that rule is silenced
    (row,) = history(capsys, "--rule", "prnd-450k")
    (d,) = row["deliveries"]
    assert d["status"] == "silenced" and d["reason"] == f"silence {sid}"
    rc, out, _ = alerts(["history", "--rule", "prnd-450k"], capsys)
    assert f"slack:#desk                  silenced (silence {sid}) 20" in out
    rc, out, _ = alerts(["silence", "list"], capsys)
    assert out.startswith(f"{sid}  rule=prnd-450k  until ") and "by ann" in out and "Baotou restocking" in out
    rc, out, _ = alerts(["silence", "expire", sid, "--author", "bob"], capsys)
    assert rc == 0 and f"silence {sid} expired by bob" in out
    assert alerts(["silence", "list"], capsys)[1] == "no active silences\n"
    rc, out, _ = alerts(["silence", "list", "--all", "--format", "json"], capsys)
    (kept,) = json.loads(out)
    assert kept["active"] is False and kept["expired_by"] == "bob" and kept["author"] == "ann"
    assert kept["comment"] == "known: Baotou restocking" and kept["matchers"] == {"rule": ["prnd-450k"]}
    p.run(quote(449_000, "2025-03-11"), quote(452_000, "2025-03-12"))
    assert len(sent_to(slack, "#desk")) == 1  # nothing silenced is replayed; the new alert is delivered
    assert "452,000" in sent_to(slack, "#desk")[0]
    rc, out, err = alerts(["silence", "expire", sid], capsys)
    assert rc == 2 and err.count("\n") == 1 and "has ended already (expired by bob" in err


def test_a_silence_ends_by_itself(p: Pipeline, slack: SlackServer, capsys: pytest.CaptureFixture[str]) -> None:
    silence(capsys, "--product", "PrNd oxide", "--for", "1s", "--comment", "a second")  # any alias
    p.run(quote(451_000, "2025-03-10"))
    assert sent_to(slack, "#desk") == [] and sent_to(slack, "#oxides") == []
    time.sleep(1.1)
    assert alerts(["silence", "list"], capsys)[1] == "no active silences\n"
    assert "ENDED" in alerts(["silence", "list", "--all"], capsys)[1]
    p.run(quote(449_000, "2025-03-11"), quote(452_000, "2025-03-12"))
    assert len(sent_to(slack, "#desk")) == 1 and len(sent_to(slack, "#oxides")) == 1


def test_matchers_combine(p: Pipeline, slack: SlackServer, capsys: pytest.CaptureFixture[str]) -> None:
    until = (date.today() + timedelta(days=200)).isoformat()  # a silence ends within a year
    sid = silence(capsys, "--rule", "oxides-high", "--product", "NdPr oxide", "--until", until,
                  "--comment", "Pr-Nd only")
    p.run(quote(451_000, "2025-03-10"), quote(451_000, "2025-03-10", product="Nd oxide"))
    (nd,) = sent_to(slack, "#oxides")  # the same rule on another product is delivered
    assert "neodymium oxide" in nd
    assert len(sent_to(slack, "#desk")) == 1  # another rule on the same product too
    rc, out, _ = alerts(["rules", "explain", "oxides-high"], capsys)
    assert f"SILENCED by {sid}  rule=oxides-high product=Pr-Nd oxide  until {until} 00:00 +08:00" in out
    assert "SILENCED" not in alerts(["rules", "explain", "licences"], capsys)[1]
    rc, out, _ = alerts(["status", "--format", "json"], capsys)
    (shown,) = json.loads(out)["silences"]
    assert shown["id"] == sid and shown["active"] is True
    rc, out, _ = alerts(["status"], capsys)
    assert rc in (0, 1)  # no service process runs here: unhealthy, and the silences still shown
    assert "ok    silences    1 active" in out and f"ok    silences    {sid}  rule=oxides-high" in out


def test_until_resolved_ends_when_the_rule_fires_again(p: Pipeline, slack: SlackServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    p.run(quote(451_000, "2025-03-10"))
    assert len(sent_to(slack, "#desk")) == 1
    sid = silence(capsys, "--rule", "prnd-450k", "--until-resolved", "--comment", "we know, until it is back")
    p.run(quote(455_000, "2025-03-11"))  # still above: nothing fires, nothing ends
    keys = Keys(p.settings.key_prefix)
    assert end_resolved(p.client, keys, p.rules) == []
    p.run(quote(449_000, "2025-03-12"), quote(452_000, "2025-03-13"))  # back below (re-armed), then above again
    assert len(sent_to(slack, "#desk")) == 2  # the second firing is delivered
    s = SilenceStore(p.client, keys).get(sid)
    assert s is not None and s.expired_by == "resolved" and "re-armed and fired again" in (s.expired_why or "")


def test_until_resolved_ends_at_the_periodic_check_when_the_rule_re_arms(p: Pipeline, slack: SlackServer,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    p.run(quote(451_000, "2025-03-10"))
    sid = silence(capsys, "--rule", "prnd-450k", "--until-resolved", "--comment", "until back")
    keys = Keys(p.settings.key_prefix)
    p.run(quote(449_000, "2025-03-11"))  # re-armed, nothing fires
    (ended,) = end_resolved(p.client, keys, p.rules)
    assert ended.id == sid and ended.expired_by == "resolved"
    rc, out, _ = alerts(["silence", "list", "--all"], capsys)
    assert rc == 0 and f"{sid}  rule=prnd-450k  EXPIRED" in out and "by resolved (prnd-450k re-armed" in out


@pytest.mark.parametrize("notify_resolved", [False, True], ids=["silenced", "notify-resolved"])
def test_a_resolved_notice_ends_until_resolved_and_is_sent_only_when_asked(
        p: Pipeline, slack: SlackServer, capsys: pytest.CaptureFixture[str], notify_resolved: bool) -> None:
    p.run(quote(461_000, "2025-03-10"))
    assert len(sent_to(slack, "#resolving")) == 1
    sid = silence(capsys, "--rule", "prnd-resolving", "--until-resolved", "--comment", "until back",
                  *(["--notify-resolved"] if notify_resolved else []))
    p.run(quote(458_000, "2025-03-11"))  # the condition stops holding: a resolved alert
    assert len(sent_to(slack, "#resolving")) == (2 if notify_resolved else 1)
    (resolved, _) = history(capsys, "--rule", "prnd-resolving")
    assert resolved["status"] == "resolved"
    (d,) = resolved["deliveries"]
    assert d["status"] == ("delivered" if notify_resolved else "silenced")
    s = SilenceStore(p.client, Keys(p.settings.key_prefix)).get(sid)
    assert s is not None and s.expired_by == "resolved" and "a resolved alert of prnd-resolving" in (s.expired_why
                                                                                                     or "")
    p.run(quote(462_000, "2025-03-12"))
    assert len(sent_to(slack, "#resolving")) == (3 if notify_resolved else 2)


@pytest.mark.parametrize(("args", "says"), [
    (["--for", "2h", "--comment", "x"], "at least one of --rule, --product, --label, --target, --severity"),
    (["--rule", "prnd-450k", "--for", "2h"], "a comment is required"),
    (["--rule", "prnd-45k", "--for", "2h", "--comment", "x"], "no rule 'prnd-45k' in the rule files (did you mean "
                                                             "'prnd-450k'?)"),
    (["--product", "Pr-Nd oxid", "--for", "2h", "--comment", "x"], "unknown product 'Pr-Nd oxid' (did you mean"),
    (["--rule", "prnd-450k", "--comment", "x"], "one of --for DURATION, --until TIME, --until-resolved"),
    (["--rule", "prnd-450k", "--for", "2h", "--until", "2099-01-01", "--comment", "x"], "one of --for"),
    (["--rule", "prnd-450k", "--for", "soon", "--comment", "x"], "--for: 'soon' is not a duration"),
    (["--rule", "prnd-450k", "--until", "2020-01-01", "--comment", "x"], "--until '2020-01-01' is in the past"),
    (["--rule", "prnd-450k", "--until", "tomorrow", "--comment", "x"], "--until 'tomorrow': not a date"),
    (["--label", "desk", "--for", "2h", "--comment", "x"], "--label 'desk': write key=value"),
    (["--target", "slack:desk", "--for", "2h", "--comment", "x"], "--target: 'slack:desk': a Slack channel is"),
    (["--product", "Pr-Nd oxide", "--until-resolved", "--comment", "x"], "--until-resolved needs --rule"),
    (["--rule", "licences", "--until-resolved", "--comment", "x"], "licences is not a price or spread rule"),
    (["--rule", "prnd-450k", "--until-resolved", "--comment", "x"], "prnd-450k is not firing now"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_the_cli_refuses_in_one_line(p: Pipeline, capsys: pytest.CaptureFixture[str], args: list[str],
                                     says: str) -> None:
    rc, out, err = alerts(["silence", "add", *args], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("alerts: "), err
    assert says in err, err
    assert SilenceStore(p.client, Keys(p.settings.key_prefix)).all() == []


def test_expiring_an_unknown_silence_is_one_line(p: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = alerts(["silence", "expire", "nope"], capsys)
    assert rc == 2 and err == "alerts: no silence 'nope' (alerts silence list --all)\n"


def test_ended_silences_are_purged_after_the_retention(p: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    from alerts.store.retention import apply_retention

    store = SilenceStore(p.client, Keys(p.settings.key_prefix))
    old = store.get(silence(capsys, "--severity", "info", "--for", "1h", "--comment", "x"))
    assert old is not None
    store.save(replace(old, created=old.created - 92 * 86400, ends=old.created - 91 * 86400))  # ended 91 days ago
    kept = silence(capsys, "--severity", "info", "--for", "1h", "--comment", "y")
    got = apply_retention(p.client, Keys(p.settings.key_prefix), shards=4, event_days=30, alert_days=90,
                          quote_days=365, max_window=0)
    assert got.silences == 1 and [s.id for s in store.all()] == [kept]


def test_until_resolved_on_a_spread_ends_when_the_spread_re_arms(client: redis.Redis, settings: Settings,
                                                                 rules_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    write_rules(rules_dir, """
rules:
  - id: alloy-premium
    spread: {of: Pr-Nd alloy, minus: PrNd oxide, above: "110,000 CNY/t"}
    notify: [console]
""")
    for k, v in env_for(settings).items():
        monkeypatch.setenv(k, v)
    p = Pipeline(client, settings)
    (a,) = p.run(quote(546_500, "2025-03-03", product="Pr-Nd alloy"), quote(434_000, "2025-03-03"))
    sid = silence(capsys, "--rule", "alloy-premium", "--until-resolved", "--comment", "premium known")
    keys = Keys(settings.key_prefix)
    s = SilenceStore(client, keys).get(sid)
    assert s is not None and s.seen_up_to == a.at  # the newest evaluation the rule had seen
    p.run(quote(433_000, "2025-03-04"), quote(546_500, "2025-03-04", product="Pr-Nd alloy"))  # 113,500: holds
    assert end_resolved(client, keys, p.rules) == []
    p.run(quote(440_000, "2025-03-05"), quote(546_500, "2025-03-05", product="Pr-Nd alloy"))  # 106,500: re-armed
    (ended,) = end_resolved(client, keys, p.rules)
    assert ended.id == sid and ended.expired_by == "resolved"
