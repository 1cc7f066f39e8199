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
from tests.pipeline import Pipeline, quote, stream_alerts
from tests.servers import write_rules
from workers.roles.periodic import check_stale

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

#: ALERTS_FX_MAX_AGE_DAYS as Settings has it, in seconds.
FX_MAX_AGE = Settings.model_fields["fx_max_age_days"].default * 86400


def run(tmp_path: Path, body: str, events: list[dict[str, object]]) -> list[Alert]:
    (tmp_path / "r.yaml").write_text(body)
    rules = load_rules(tmp_path)
    assert not rules.errors, rules.errors
    return Session(rules, fx_max_age=FX_MAX_AGE).run(parse_event(e, rules.catalog, TZ) for e in events)


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
    assert a.text.startswith("dysprosium oxide: last quote 2025-09-26, 11 days ago (1,705 CNY/kg); stale after 3 "
                             "business days"), a.text
    assert check_stale(client, settings, rules, at("2025-10-08T09:00")) == []  # told once
    p.run(quote(1_710, "2025-10-10", product="Dy oxide", unit="CNY/kg"))  # the feed is back ...
    assert check_stale(client, settings, rules, at("2025-10-14T09:00")) == []
    assert len(check_stale(client, settings, rules, at("2025-10-16T09:00"))) == 1  # ... and stopped again
    stream = stream_alerts(client)
    assert [s["kind"] for s in stream] == ["stale", "stale"]


def test_spread_across_shards_live_in_event_time(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, SPREAD)
    p = Pipeline(client, settings)
    # the oxide's quote of 03-03 waits for the alloy's quote of that day: its shard may simply be behind
    assert p.run(quote(546_500, "2025-02-28", product="Pr-Nd alloy"), quote(444_000, "2025-02-28"),
                 quote(434_000, "2025-03-03")) == []
    (a,) = p.run(quote(546_500, "2025-03-03", product="Pr-Nd alloy"))  # 546,500 - 434,000
    assert (a.rule_id, a.price, a.as_of) == ("alloy-premium", 112_500, "2025-03-03")
    assert a.text.endswith("(Pr-Nd alloy 546,500 on 2025-03-03, Pr-Nd oxide 434,000 on 2025-03-03)")
    assert p.run(quote(433_000, "2025-03-04")) == []
    assert p.flush() == []  # the state was kept in Redis: 113,500 is still above, no second alert
    assert [x["price"] for x in stream_alerts(client)] == [112_500]


def test_a_lagging_leg_is_waited_for_up_to_the_grace(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    import time

    write_rules(rules_dir, SPREAD)
    p = Pipeline(client, settings)
    # the grace runs from the oxide quote's arrival (the evaluator's clock), somewhere in [before, after]: the
    # steps' clocks are set from those bounds, not from the clock at the step (a loaded machine, or a delivery
    # worker slow to stop, may take any time between the two)
    before = time.time()
    assert p.run(quote(546_500, "2025-02-28", product="Pr-Nd alloy"), quote(444_000, "2025-02-28"),
                 quote(434_000, "2025-03-03")) == []
    after = time.time()
    grace = settings.composite_grace_seconds
    assert p.composer.step(now=before + grace - 1) == []  # still waiting for the alloy
    (a,) = p.composer.step(now=after + grace)  # evaluated with what is known: the alloy of 02-28
    assert (a.price, a.as_of) == (112_500, "2025-03-03") and "Pr-Nd alloy 546,500 on 2025-02-28" in a.text
    # the alloy's quote of 03-02 arrives after the grace, behind the stage: it is not evaluated at its
    # own time, but it is the alloy's latest quote for what comes after
    assert p.run(quote(540_000, "2025-03-02", product="Pr-Nd alloy")) == []
    assert p.run(quote(434_000, "2025-03-05")) == []  # waits for the alloy again ...
    (b,) = p.flush()  # ... up to the grace: evaluated with the alloy of 03-02, which came late
    assert (b.status, b.price) == ("resolved", 106_000) and "Pr-Nd alloy 540,000 on 2025-03-02" in b.text


def test_a_spread_edit_keeps_the_legs(tmp_path: Path) -> None:
    import math

    from alerts.evaluate.eventtime import advance_spread, composite_rules, start

    (tmp_path / "r.yaml").write_text(SPREAD)
    rules = load_rules(tmp_path)
    session = Session(rules, fx_max_age=FX_MAX_AGE)
    session.run(parse_event(e, rules.catalog, TZ) for e in [quote(546_500, "2025-02-28", product="Pr-Nd alloy"),
                                                             quote(444_000, "2025-02-28")])
    ((spread,), _) = composite_rules(rules)
    legs = {pk: [p for k, p in session.legs if k == pk] for pk in (spread.of.key, spread.minus.key)}
    _, state = advance_spread(spread, start(-math.inf), legs[spread.of.key], legs[spread.minus.key], math.inf)
    (tmp_path / "r.yaml").write_text(SPREAD.replace("110,000", "100,000"))
    edited = load_rules(tmp_path)
    later = Session(edited, fx_max_age=FX_MAX_AGE)
    later.apply(parse_event(quote(547_000, "2025-03-03", product="Pr-Nd alloy"), edited.catalog, TZ))
    ((spread2,), _) = composite_rules(edited)
    out, _ = advance_spread(spread2, state, [p for _, p in later.legs], [], math.inf)
    assert [a.price for a in out] == [103_000]  # the oxide leg was kept; the edited rule started armed


def test_a_stale_feed_says_how_old_its_last_quote_really_is(client: redis.Redis, settings: Settings,
                                                             rules_dir: Path) -> None:
    write_rules(rules_dir, """
rules:
  - id: tb-feed
    stale: {product: terbium oxide, after: 3 business days}
    notify: [console]
""")
    p = Pipeline(client, settings)
    p.run(quote(7_000, "2024-03-11", product="Tb oxide", unit="CNY/kg"))
    now = datetime(2025, 11, 20, 9, tzinfo=ZoneInfo(TZ)).timestamp()
    (a,) = check_stale(client, settings, p.rules, now)
    assert a.text.startswith("terbium oxide: last quote 2024-03-11, 20 months ago (7,000 CNY/kg); stale after 3 "
                             "business days"), a.text
