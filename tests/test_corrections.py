"""Corrections (issue 17): a vendor re-publishes a day's quote with another price. Evaluated in the session (pure),
followed up on the targets of the alerts based on the superseded price (in Slack: in the thread of the original
message, which is updated), recorded and shown by ``alerts history``; a backtest of the stored history gives the
same follow-ups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from alerts.catalog import Catalog
from alerts.evaluate.backtest import run_backtest
from alerts.evaluate.session import Session
from alerts.events import PriceEvent, parse_event
from alerts.model import Alert
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.corrections import stored_corrections
from alerts.store.history import stored_events
from alerts.store.keys import Keys
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, write_rules
from workers.cli import main as cli

TZ = "Asia/Shanghai"
RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [slack:#desk, console]
  - id: prnd-crosses-451k
    price: {product: Pr-Nd oxide, crosses_below: "451,000 CNY/t"}
    notify: [console]
  - id: prnd-up-2pct
    price: {product: Pr-Nd oxide, change_pct: {over: 1d, above: 2}}
    notify: [console]
"""


def ruleset(tmp_path: Path, text: str = RULES) -> RuleSet:
    write_rules(tmp_path, text)
    rs = load_rules(tmp_path, timezone=TZ)
    assert not rs.errors, rs.errors
    return rs


def price(catalog: Catalog, p: float, day: str, **kw: Any) -> PriceEvent:
    ev = parse_event(quote(p, day, **kw), catalog, TZ)
    assert isinstance(ev, PriceEvent)
    return ev


def test_a_correction_follows_up_the_alerts_of_the_superseded_price(tmp_path: Path) -> None:
    rs = ruleset(tmp_path)
    s = Session(rs, fx_max_age=7 * 86400)
    assert s.apply(price(rs.catalog, 440_000, "2025-03-10")) == []
    fired = s.apply(price(rs.catalog, 452_000, "2025-03-11", id="first"))
    assert sorted(a.rule_id for a in fired) == ["prnd-450k", "prnd-up-2pct"]
    out = s.apply(price(rs.catalog, 448_000, "2025-03-11", id="fixed"))
    by_rule = {a.rule_id: a for a in out}
    # above 450,000 no longer holds; 448,000 is +1.8% (not above 2%); 452,000 -> 448,000 is no crossing (same day)
    assert sorted(by_rule) == ["prnd-450k", "prnd-up-2pct"]
    f = by_rule["prnd-450k"]
    original = next(a for a in fired if a.rule_id == "prnd-450k")
    assert (f.kind, f.corrects, f.still_holds, f.superseded, f.price) == ("correction", original.id, False,
                                                                          452_000, 448_000)
    assert f.targets == original.targets
    assert f.text == ("smm corrected Pr-Nd oxide on 2025-03-11 from 452,000 to 448,000 CNY/t: the alert "
                      f"\"{original.text}\" was based on the superseded price; with the corrected price the "
                      "condition no longer holds")
    (c,) = s.corrections
    assert (c.old_price, c.new_price, c.old_id, c.new_id, c.day) == (452_000, 448_000, "first", "fixed", "2025-03-11")
    assert set(c.followups) == {a.id for a in out}
    # the rule re-armed as if 452,000 had never come: the next day above fires (+1.6% on the corrected 448,000)
    assert [a.rule_id for a in s.apply(price(rs.catalog, 455_000, "2025-03-12"))] == ["prnd-450k"]


def test_a_correction_that_still_holds_says_so_without_a_second_alert(tmp_path: Path) -> None:
    rs = ruleset(tmp_path)
    s = Session(rs, fx_max_age=7 * 86400)
    s.apply(price(rs.catalog, 449_000, "2025-03-10"))
    (first,) = s.apply(price(rs.catalog, 452_000, "2025-03-11", id="a"))
    (f,) = s.apply(price(rs.catalog, 456_000, "2025-03-11", id="b"))
    assert (f.kind, f.corrects, f.still_holds) == ("correction", first.id, True)
    assert "condition still holds" in f.text
    (again,) = s.apply(price(rs.catalog, 446_000, "2025-03-11", id="c"))  # a second correction: the same original
    assert (again.corrects, again.superseded, again.still_holds) == (first.id, 456_000, False)
    assert s.apply(price(rs.catalog, 452_000, "2025-03-11", id="a")) == []  # the superseded one again: a duplicate
    assert s.apply(price(rs.catalog, 446_000, "2025-03-11", id="d")) == []  # the same price again: nothing


def test_a_correction_can_fire_what_the_superseded_price_did_not(tmp_path: Path) -> None:
    rs = ruleset(tmp_path)
    s = Session(rs, fx_max_age=7 * 86400)
    s.apply(price(rs.catalog, 452_000, "2025-03-10"))
    s.apply(price(rs.catalog, 453_000, "2025-03-11", id="a"))
    (crossed,) = s.apply(price(rs.catalog, 449_000, "2025-03-11", id="b"))  # crossed below 451,000 from the 10th
    assert (crossed.kind, crossed.rule_id, crossed.previous) == ("price", "prnd-crosses-451k", 452_000)


WINDOW = """
rules:
  - id: prnd-up-2pct-2d
    price: {product: Pr-Nd oxide, change_pct: {over: 2d, above: 2}}
    notify: [console]
"""


def test_a_late_correction_fires_nothing_but_moves_the_windows(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, WINDOW)
    s = Session(rs, fx_max_age=7 * 86400)
    for ev in (price(rs.catalog, 440_000, "2025-03-10"), price(rs.catalog, 445_000, "2025-03-11"),
               price(rs.catalog, 446_000, "2025-03-12"), price(rs.catalog, 430_000, "2025-03-11", id="late-fix")):
        assert s.apply(ev) == []
    assert s.prices[-1][1] is True  # kept in the history, as late
    (up,) = s.apply(price(rs.catalog, 440_000, "2025-03-13"))  # +2.3% on the corrected 430,000 of 2 days before
    assert (up.previous, up.previous_as_of) == (430_000, "2025-03-11")


def test_live_a_late_correction_is_recorded(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, WINDOW)
    p = Pipeline(client, settings)
    p.run(quote(440_000, "2025-03-10", id="a"), quote(445_000, "2025-03-11", id="b"), quote(446_000, "2025-03-12"))
    assert p.run(quote(430_000, "2025-03-11", id="b-fix")) == []
    (_, c), = stored_corrections(client, Keys())
    assert (c.late, c.old_price, c.new_price, c.old_id, c.new_id, c.followups) == (True, 445_000, 430_000, "b",
                                                                                   "b-fix", ())


@pytest.fixture
def slack_settings(settings: Settings, slack: SlackServer, rules_dir: Path) -> Settings:
    write_rules(rules_dir, RULES)
    return settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                       "delivery_retry_intervals_seconds": [0, 0], "slack_burst": 100})


def test_live_a_correction_replies_in_the_thread_updates_the_original_and_shows_in_history(
        client: redis.Redis, slack_settings: Settings, slack: SlackServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    p = Pipeline(client, slack_settings)
    p.run(quote(449_000, "2025-03-10", source="SMM"), quote(452_000, "2025-03-11", source="SMM", id="smm-0311"))
    (original,) = slack.messages
    assert original["channel"] == "#desk" and "452,000" in original["text"]
    fired = p.run(quote(448_000, "2025-03-11", source="SMM", id="smm-0311-fix"))
    assert [(a.kind, a.rule_id) for a in fired] == [("correction", "prnd-450k")]
    assert len(slack.messages) == 2
    reply = slack.messages[1]
    assert reply["thread_ts"] == original["ts"]  # in the thread of the original message
    assert reply["channel"] == SlackServer.channel_id("#desk")
    assert "SMM corrected Pr-Nd oxide on 2025-03-11 from 452,000 to 448,000 CNY/t" in reply["text"]
    (update,) = slack.updates
    assert update["ts"] == original["ts"]
    notes = [e["text"] for b in slack.message(original["ts"])["blocks"] if b["type"] == "context"
             for e in b["elements"]]
    assert any("Based on a price SMM corrected from 452,000 to 448,000 CNY/t" in n for n in notes), notes
    assert slack.message(original["ts"])["blocks"][-1]["type"] == "actions"  # the buttons stay last
    # the delivery again (rq's retry of it, say): no second reply, the same update
    p.deliver()
    assert len(slack.messages) == 2

    for k, v in env_for(slack_settings).items():
        monkeypatch.setenv(k, v)
    capsys.readouterr()
    assert cli.main(["history", "--product", "PrNd oxide"]) == 0
    text = capsys.readouterr().out
    assert "correction  SMM corrected Pr-Nd oxide on 2025-03-11 from 452,000 to 448,000 CNY/t, first published" in text
    assert f"prnd-450k (follow-up of {fired[0].corrects})" in text
    assert cli.main(["history", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    (c,) = [r for r in rows if r["type"] == "correction"]
    assert (c["old_price"], c["new_price"], c["old_id"], c["new_id"]) == (452_000, 448_000, "smm-0311", "smm-0311-fix")
    assert c["first_arrived"] <= c["written_at"] and c["followups"] == [fired[0].id]
    assert [r["type"] for r in rows].count("alert") == 2
    assert cli.main(["history", "--product", "Dy oxide", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    # a backtest of the stored history: the same follow-up
    rules = load_rules(slack_settings.rules_dir, timezone=slack_settings.timezone)
    replay = run_backtest(rules, stored_events(client, Keys(), rules.catalog, rules.timezone),
                          fx_max_age_days=slack_settings.fx_max_age_days).alerts
    live = [Alert.from_wire(a) for a in p.alert_stream()]
    assert [(a.id, a.kind, a.text) for a in replay] == [(a.id, a.kind, a.text) for a in live]


def test_an_update_slack_fails_is_retried_without_a_second_reply(client: redis.Redis, slack_settings: Settings,
                                                                 slack: SlackServer) -> None:
    p = Pipeline(client, slack_settings)
    p.run(quote(449_000, "2025-03-10"), quote(452_000, "2025-03-11", id="a"))
    (original,) = slack.messages
    slack.update_script = [("500", None)]
    p.run(quote(453_000, "2025-03-11", id="b"))  # rq retries the delivery (intervals of 0 s here)
    (reply,) = slack.thread(original["ts"])
    assert "the condition still holds" in reply["text"]
    assert len(slack.messages) == 2 and len(slack.updates) == 1
    (line,) = [e["text"] for b in slack.message(original["ts"])["blocks"] if b["type"] == "context"
               for e in b["elements"]]
    assert "corrected from 452,000 to 453,000 CNY/t (2025-03-11): the condition still holds" in line
    p.run(quote(447_000, "2025-03-11", id="c"))  # a second correction: a second line, a second reply
    assert len(slack.thread(original["ts"])) == 2
    lines = [e["text"] for b in slack.message(original["ts"])["blocks"] if b["type"] == "context"
             for e in b["elements"]]
    assert len(lines) == 2 and "from 453,000 to 447,000" in lines[1] and "no longer holds" in lines[1]


def test_a_follow_up_whose_original_was_not_posted_goes_as_a_message_of_its_own(
        client: redis.Redis, slack_settings: Settings, slack: SlackServer) -> None:
    p = Pipeline(client, slack_settings)
    slack.script = [("error", "not_in_channel")]  # the original alert is refused
    p.run(quote(449_000, "2025-03-10"), quote(452_000, "2025-03-11", id="a"))
    assert slack.messages == []
    p.run(quote(448_000, "2025-03-11", id="b"))
    (msg,) = slack.messages
    assert "thread_ts" not in msg and msg["channel"] == "#desk"
    assert "the condition no longer holds" in msg["text"] and not slack.updates


def test_what_a_correction_needs_survives_redis(tmp_path: Path) -> None:
    """The quote before, the alerts fired and the state changed are kept in Redis with the quote state: an
    evaluator that takes the shard over (its cache empty) follows up as the first would have."""
    from alerts.store.state import decode_state, encode_state

    rs = ruleset(tmp_path, RULES + WINDOW.replace("rules:\n", ""))
    s = Session(rs, fx_max_age=7 * 86400)
    for ev in (price(rs.catalog, 440_000, "2025-03-09"), price(rs.catalog, 440_000, "2025-03-10"),
               price(rs.catalog, 452_000, "2025-03-11", id="a")):
        s.apply(ev)
    (st,) = s.changed.values()
    (q,) = st.quotes.values()
    assert q.prior is not None and q.fired and q.undo_fired and q.undo_rules
    raw = {k.encode(): v.encode() for k, v in encode_state(st).items()}
    assert decode_state(raw) == st
    fresh = Session(rs, {k: decode_state({a.encode(): b.encode() for a, b in encode_state(v).items()})
                         for k, v in s.changed.items()}, fx_max_age=7 * 86400)
    again = Session(rs, dict(s.changed), fx_max_age=7 * 86400)
    fix = price(rs.catalog, 448_000, "2025-03-11", id="b")
    assert [(a.id, a.text) for a in fresh.apply(fix)] == [(a.id, a.text) for a in again.apply(fix)] != []


def test_a_webhook_gets_the_follow_up_with_what_it_corrects(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from alerts.notify.webhook import WebhookNotifier
    from alerts.rules.compiled import WebhookConfig
    from alerts.targets import parse_target

    got: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    rs = ruleset(tmp_path)
    s = Session(rs, fx_max_age=7 * 86400)
    s.apply(price(rs.catalog, 449_000, "2025-03-10"))
    (first,) = s.apply(price(rs.catalog, 452_000, "2025-03-11", id="a"))
    (f,) = s.apply(price(rs.catalog, 448_000, "2025-03-11", id="b"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        WebhookNotifier(WebhookConfig("book", url, SecretStr("s"))).send(f, parse_target("webhook:book"))
    finally:
        server.shutdown()
        server.server_close()
    (body,) = got
    assert (body["kind"], body["corrects"], body["superseded"], body["price"], body["still_holds"]) == (
        "correction", first.id, 452_000, 448_000, False)
