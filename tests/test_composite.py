"""Spreads, all_of and stale feeds: pure evaluation through the session, and across shards live."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

from alerts.evaluate.composite import business_days_between
from alerts.evaluate.session import Session
from alerts.events import parse_event
from alerts.model import Alert
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.batch import BatchCommit
from alerts.store.streams import read_group
from tests.pipeline import Pipeline, quote, stream_alerts
from tests.servers import write_rules
from workers.periodic import check_stale

TZ = "Asia/Shanghai"

SPREAD = """
rules:
  - id: alloy-premium
    spread: {of: Pr-Nd alloy, minus: PrNd oxide, above: "110,000 CNY/t"}
    resolve: true
    notify: [console]
"""

ALL_OF = """
rules:
  - id: tb-up-and-controls
    all_of:
      - price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}
      - news: {any: [export control*]}
    within: 3d
    notify: [console]
"""


def run(tmp_path: Path, body: str, events: list[dict[str, object]]) -> list[Alert]:
    (tmp_path / "r.yaml").write_text(body)
    rules = load_rules(tmp_path)
    assert not rules.errors, rules.errors
    return Session(rules).run(parse_event(e, rules.catalog, TZ) for e in events)


def test_spread_fires_when_either_leg_moves(tmp_path: Path) -> None:
    out = run(tmp_path, SPREAD, [
        quote(546_500, "2025-02-28", product="Pr-Nd alloy"),
        quote(444_000, "2025-02-28"),  # 102,500
        quote(434_000, "2025-03-03"),  # 112,500: fires on the oxide leg
        quote(435_000, "2025-03-04"),  # 111,500: still above, nothing
        quote(544_000, "2025-03-05", product="Pr-Nd alloy"),  # 109,000: resolved, on the alloy leg
        quote(433_000, "2025-02-20"),  # older than the oxide leg's latest: ignored
    ])
    assert [(a.status, a.as_of, a.price) for a in out] == [("firing", "2025-03-03", 112_500),
                                                          ("resolved", "2025-03-05", 109_000)]
    assert out[0].text == ("Pr-Nd alloy minus Pr-Nd oxide: 112,500 CNY/t on 2025-03-03, above 110,000 CNY/t "
                           "(Pr-Nd alloy 546,500 on 2025-02-28, Pr-Nd oxide 434,000 on 2025-03-03)")


def test_spread_legs_in_different_units(tmp_path: Path) -> None:
    out = run(tmp_path, """
rules:
  - id: tb-vs-dy
    spread: {of: terbium oxide, minus: Dy oxide, crosses_above: 5000}
    notify: [console]
""", [quote(6_500, "2025-03-03", product="Tb oxide", unit="CNY/kg"),
      quote(1_700_000, "2025-03-03", product="Dy oxide", unit="CNY/t"),  # 1,700 CNY/kg: spread 4,800
      quote(6_800, "2025-03-04", product="Tb oxide", unit="CNY/kg")])  # 5,100
    assert [a.price for a in out] == [5_100]


def news(headline: str, when: str) -> dict[str, object]:
    return {"type": "news", "headline": headline, "published_at": when}


def test_all_of_needs_both_within_the_window(tmp_path: Path) -> None:
    base = [quote(5_940, "2025-01-27", product="Tb oxide", unit="CNY/kg")]
    far = run(tmp_path, ALL_OF, [*base, news("New export controls on rare earths", "2025-02-20T10:00:00+08:00"),
                                 quote(6_475, "2025-02-28", product="Tb oxide", unit="CNY/kg")])
    assert far == []  # the news is 8 days before the price move
    near = run(tmp_path, ALL_OF, [*base, quote(6_475, "2025-02-28", product="Tb oxide", unit="CNY/kg"),
                                  news("New export controls on rare earths", "2025-03-02T10:00:00+08:00"),
                                  news("More export controls", "2025-03-02T12:00:00+08:00")])
    (a,) = near  # the second article pairs with the same price move: one alert per pairing
    assert a.kind == "all_of" and "terbium oxide 6,475 CNY/kg on 2025-02-28" in a.text
    assert "news on 2025-03-02: New export controls on rare earths" in a.text


def test_business_days_skip_weekends_and_holidays() -> None:
    fri = date(2025, 9, 26)
    assert business_days_between(fri, date(2025, 9, 29), frozenset()) == 0  # Saturday and Sunday
    assert business_days_between(fri, date(2025, 10, 2), frozenset()) == 3  # Mon, Tue, Wed
    golden_week = frozenset(date(2025, 10, d) for d in range(1, 9))
    assert business_days_between(fri, date(2025, 10, 10), golden_week) == 3  # 29th, 30th, 9th


def test_stale_feed_fires_once_per_outage(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, """
rules:
  - id: dy-feed
    stale: {product: dysprosium oxide, after: 3 business days}
    notify: [console]
holidays: [2025-10-01, 2025-10-02, 2025-10-03]
""")
    p = Pipeline(client, settings)
    rules = p.rules

    def at(day: str) -> float:
        return datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(TZ)).timestamp()

    assert check_stale(client, settings, rules, at("2025-09-29T09:00")) == []  # never quoted: nothing to go stale
    p.run(quote(1_705, "2025-09-26", product="Dy oxide", unit="CNY/kg"))  # a Friday
    assert check_stale(client, settings, rules, at("2025-10-01T09:00")) == []  # Mon 29th, Tue 30th missing: 2
    assert check_stale(client, settings, rules, at("2025-10-06T09:00")) == []  # holidays and the weekend: still 2
    (a,) = check_stale(client, settings, rules, at("2025-10-07T09:00"))  # and Mon 6th: 3
    assert "dysprosium oxide: no quote for 3 business days (last 1,705 CNY/kg on 2025-09-26)" in a.text
    assert check_stale(client, settings, rules, at("2025-10-08T09:00")) == []  # told once
    p.run(quote(1_710, "2025-10-10", product="Dy oxide", unit="CNY/kg"))  # the feed is back ...
    assert check_stale(client, settings, rules, at("2025-10-14T09:00")) == []
    assert len(check_stale(client, settings, rules, at("2025-10-16T09:00"))) == 1  # ... and stopped again
    stream = stream_alerts(client)
    assert [s["kind"] for s in stream] == ["stale", "stale"]


def test_spread_across_shards_live(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, SPREAD)
    p = Pipeline(client, settings)
    alerts = p.run(quote(546_500, "2025-02-28", product="Pr-Nd alloy"), quote(444_000, "2025-02-28"),
                   quote(434_000, "2025-03-03"))
    assert [a.rule_id for a in alerts] == ["alloy-premium"]
    assert p.run(quote(433_000, "2025-03-04")) == []  # the spread state was kept in Redis


def test_a_spread_edit_keeps_the_legs(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(SPREAD)
    rules = load_rules(tmp_path)
    session = Session(rules)
    session.run(parse_event(e, rules.catalog, TZ) for e in [quote(546_500, "2025-02-28", product="Pr-Nd alloy"),
                                                             quote(444_000, "2025-02-28")])
    (tmp_path / "r.yaml").write_text(SPREAD.replace("110,000", "100,000"))
    edited = load_rules(tmp_path)
    later = Session(edited, shared=session.shared)
    out = later.run([parse_event(quote(547_000, "2025-03-03", product="Pr-Nd alloy"), edited.catalog, TZ)])
    assert [a.price for a in out] == [103_000]  # the oxide leg was kept; the edited rule started armed


def _read_batch(client: redis.Redis, p: Pipeline, settings: Settings) -> list[tuple[int, bytes, dict[bytes, bytes]]]:
    """The evaluator's next batch, read as its step() reads it."""
    p.evaluator.maintain_leases(force=True)
    streams = {f"alerts:events:{s}": ">" for s in range(settings.stream_shards)}
    entries = read_group(client, "evaluators", p.evaluator.name, streams, count=100)
    return [(int(name.decode().rsplit(":", 1)[1]), mid, fields) for name, msgs in entries for mid, fields in msgs]


def test_a_batch_whose_shared_state_moved_is_not_committed(client: redis.Redis, settings: Settings,
                                                           rules_dir: Path) -> None:
    import pytest

    write_rules(rules_dir, SPREAD)
    p = Pipeline(client, settings)
    p.run(quote(546_500, "2025-02-28", product="Pr-Nd alloy"))
    (key,) = [k.decode() for k in client.scan_iter("alerts:shared:*")]
    read_then = client.get(key)
    p.run(quote(444_000, "2025-02-28"))
    p.publish(quote(434_000, "2025-03-03"))  # would fire: 112,500
    batch = _read_batch(client, p, settings)
    assert len(batch) == 1
    prepared = p.evaluator.prepare(p.evaluator.decode(batch))
    assert [a.price for a in prepared.verdict.alerts] == [112_500]
    assert read_then is not None
    client.set(key, read_then)  # another shard's evaluator moves the shared state between the read and the commit
    with pytest.raises(redis.WatchError):
        p.evaluator.commit(prepared)
    assert stream_alerts(client) == []  # nothing of the batch was written ...
    assert client.xpending("alerts:events:0", "evaluators")["pending"] + sum(
        client.xpending(f"alerts:events:{s}", "evaluators")["pending"] for s in range(1, settings.stream_shards)) == 1


def test_a_conflicting_batch_is_evaluated_again_from_a_fresh_read(client: redis.Redis, settings: Settings,
                                                                  rules_dir: Path) -> None:
    """The WatchError loop of Evaluator.process: a commit that conflicts is read and evaluated again."""
    import json

    from workers.evaluator import Decoded, Evaluator

    write_rules(rules_dir, SPREAD)
    p = Pipeline(client, settings)
    p.run(quote(546_500, "2025-02-28", product="Pr-Nd alloy"), quote(444_000, "2025-02-28"))  # 102,500
    (key,) = [k.decode() for k in client.scan_iter("alerts:shared:*")]
    fp = key.rsplit(":", 1)[1]
    # what the evaluator of the alloy's shard commits meanwhile: the alloy at 552,000 on 03-03 (108,000)
    other = Session(p.rules, shared={fp: json.loads(client.get(key) or b"{}")})
    assert other.apply(parse_event(quote(552_000, "2025-03-03", product="Pr-Nd alloy"), p.rules.catalog, TZ)) == []
    moved = json.dumps(other.shared[fp])
    reads: list[int] = []

    class Racing(Evaluator):
        def prepare(self, decoded: Decoded) -> BatchCommit:
            commit = super().prepare(decoded)
            if not reads:
                client.set(key, moved)  # lands between this read and this commit
            reads.append(len(commit.verdict.alerts))
            return commit

    p.evaluator.release_all()
    racing = Racing(client, settings, lambda: p.rules)
    racing.maintain_leases(force=True)
    p.publish(quote(440_000, "2025-03-03"))  # 106,500 against the alloy it read; 112,000 against the alloy now
    got = [a for _ in range(20) for a in racing.step().alerts]
    assert reads == [0, 1]  # evaluated twice: first from the stale read (nothing), then from the fresh one
    assert [(a.status, a.price, a.as_of) for a in got] == [("firing", 112_000, "2025-03-03")]
    assert "Pr-Nd alloy 552,000 on 2025-03-03" in got[0].text
    assert [a["price"] for a in stream_alerts(client)] == [112_000]
