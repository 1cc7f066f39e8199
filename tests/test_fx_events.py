"""FX events at the edge (issue 8, "Currencies"): parsing exchange rates, their shard, quotes in another
currency converted at publish with the latest rate before them (or refused with a way forward), and
backtests that replay the rates, from a file and from the stored history."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from alerts.catalog import builtin_catalog
from alerts.errors import EventError
from alerts.evaluate.backtest import read_events, run_backtest
from alerts.evaluate.eventtime import decode_point
from alerts.events import (
    LIMITS,
    MAX_PAIR,
    FxEvent,
    PriceEvent,
    RateBook,
    decode_wire,
    encode_wire,
    event_time,
    fx_rate,
    parse_event,
    parse_lines,
    parse_pair,
)
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.history import stored_events
from alerts.store.keys import EVALUATOR_GROUP, Keys
from alerts.store.publish import Publisher
from alerts.store.streams import NEWS_SHARD, ensure_group, shard_of
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules
from tests.streams import stream_entries

TZ = "Asia/Shanghai"
CAT = builtin_catalog()
NOW = datetime.fromisoformat("2025-03-11T12:00:00+08:00").timestamp()
DAY = 86400.0


def ts(day: str) -> float:
    return datetime.fromisoformat(f"{day}T00:00:00+08:00").timestamp()


def fx(pair: Any = "USD/CNY", rate: Any = 7.1, as_of: Any = "2025-03-10", **kw: Any) -> dict[str, Any]:
    return {"type": "fx", "pair": pair, "rate": rate, "as_of": as_of, "source": "pboc", **kw}


def usd_quote(price: float = 63, as_of: str = "2025-03-11", product: str = "Pr-Nd oxide", unit: str = "USD/kg",
              **kw: Any) -> dict[str, Any]:
    return {"type": "price", "product": product, "price": price, "unit": unit, "as_of": as_of, "source": "smm", **kw}


def parse(obj: object, **kw: Any) -> Any:
    return parse_event(obj, CAT, TZ, **kw)


def reason_of(obj: object, **kw: Any) -> str:
    with pytest.raises(EventError) as exc:
        parse(obj, **kw)
    return str(exc.value)


def book(*events: dict[str, Any]) -> RateBook:
    rates = RateBook()
    for obj in events:
        ev = parse(obj)
        assert isinstance(ev, FxEvent)
        rates.add(ev)
    return rates


# --- parsing ------------------------------------------------------------------------------------------------

def test_fx_event_from_the_contract() -> None:
    ev = parse(fx())
    assert isinstance(ev, FxEvent)
    assert (ev.pair, ev.rate, ev.as_of, ev.as_of_date, ev.source) == ("USD/CNY", 7.1, ts("2025-03-10"),
                                                                      "2025-03-10", "pboc")
    assert ev.series == "fx:USD/CNY"
    assert decode_wire(encode_wire(ev)) == ev
    at = parse(fx(as_of="2025-03-10T20:00:00-05:00"))
    assert isinstance(at, FxEvent) and at.as_of_date == "2025-03-11"  # that moment's day in ALERTS_TIMEZONE


@pytest.mark.parametrize("written,pair", [
    ("USD/CNY", "USD/CNY"), ("usd/yuan", "USD/CNY"), ("$/RMB", "USD/CNY"), (" US$ / 元 ", "USD/CNY"),
    ("CNY/USD", "CNY/USD"), ("EUR/CNY", "EUR/CNY"), ("eur/usd", "EUR/USD"),
])
def test_pairs_are_normalised(written: str, pair: str) -> None:
    assert parse_pair(written) == pair
    ev = parse(fx(pair=written))
    assert isinstance(ev, FxEvent) and ev.pair == pair


def test_fx_ids_are_stable_and_an_explicit_id_wins() -> None:
    a, b = parse(fx(pair="usd/yuan")), parse(fx())
    assert a.id == b.id and a.id.startswith("x-")  # the same rate written two ways is one event
    assert parse(fx(rate=7.2)).id != a.id and parse(fx(source="boc")).id != a.id
    assert parse(fx(as_of="2025-03-09")).id != a.id and parse(fx(pair="CNY/USD")).id != a.id
    assert parse(fx(id="r-1")).id == "r-1"
    assert "source" not in (no_source := {k: v for k, v in fx().items() if k != "source"})
    assert parse(no_source).source == "manual"


@pytest.mark.parametrize("obj,reason", [
    (fx(rate=True), "rate: must be a number, not true"),
    (fx(rate="7.1"), "rate: must be a number, not the text '7.1'"),
    (fx(rate=0), "rate: must be a positive number"),
    (fx(rate=-7.1), "rate: must be a positive number"),
    (fx(rate=math.inf), "rate: must be a positive number"),
    (fx(rate=math.nan), "rate: must be a positive number"),
    (fx(pair="USDCNY"), "pair: 'USDCNY' is not two currencies separated by '/', such as USD/CNY"),
    (fx(pair="USD/CNY/EUR"), "pair: 'USD/CNY/EUR' is not two currencies separated by '/', such as USD/CNY"),
    (fx(pair="US/CNY"), "pair: unknown currency 'US' in 'US/CNY': a currency is a 3-letter code such as USD, "
                        "CNY or EUR (or yuan, RMB, $)"),
    (fx(pair="USD/"), "pair: unknown currency '' in 'USD/'"),
    (fx(pair="U$D/CNY"), "pair: unknown currency 'U$D'"),
    (fx(pair="USD/USD"), "pair: 'USD/USD' names USD twice; a pair converts between two currencies, such as USD/CNY"),
    (fx(pair="yuan/RMB"), "pair: 'yuan/RMB' names CNY twice"),
    (fx(pair="X" * (MAX_PAIR + 1)), f"pair: {MAX_PAIR + 1} characters; the limit is {MAX_PAIR}"),
    (fx(pair=7), "pair: must be text (a JSON string), not the number 7"),
    ({k: v for k, v in fx().items() if k != "pair"}, "pair: Field required"),
    ({k: v for k, v in fx().items() if k != "rate"}, "rate: Field required"),
    ({k: v for k, v in fx().items() if k != "as_of"}, "as_of: Field required"),
    (fx(as_of="10/03/2025"), "as_of: '10/03/2025' is not an ISO date or datetime"),
    (fx(as_of="2025-03-10T10:00:00"), "no UTC offset"),
    (fx(as_of=20250310), 'as_of: must be an ISO date or datetime in a string, such as "2025-03-11"'),
    (fx(id="i" * 201), "id: 201 characters; the limit is 200"),
    ({**fx(), "rat": 7.1}, "rat: unknown field (did you mean 'rate'?)"),
    ({**fx(), "pairs": "USD/CNY"}, "pairs: unknown field (did you mean 'pair'?)"),
    ({"type": "fix"}, "type: expected 'price', 'news', 'fx' or 'notice', got 'fix' (did you mean 'fx'?)"),
    ({"type": "FX"}, "type: expected 'price', 'news', 'fx' or 'notice', got 'FX' (did you mean 'fx'?)"),
    ({"pair": "USD/CNY"}, 'type: Field required ("price", "news", "fx" or "notice")'),
])
def test_bad_fx_events_say_why(obj: dict[str, Any], reason: str) -> None:
    assert reason in reason_of(obj)


def test_the_pair_limit_is_in_the_limits() -> None:
    assert LIMITS["pair"] == MAX_PAIR
    assert f"| pair | {MAX_PAIR:,} |" in (Path(__file__).parent.parent / "README.md").read_text()


def test_a_rate_dated_in_the_future_is_refused() -> None:
    assert parse(fx(as_of="2025-03-12"), now=NOW, max_future_days=1).as_of_date == "2025-03-12"  # tomorrow: fine
    reason = reason_of(fx(as_of="2025-03-14"), now=NOW, max_future_days=1)
    assert reason.startswith("as_of: 2025-03-14 is in the future, more than 1 day after now (2025-03-11 12:00")
    assert "ALERTS_MAX_FUTURE_DAYS" in reason


def test_fx_events_go_to_one_shard() -> None:
    events = [parse(fx(pair=p, as_of=d)) for p in ("USD/CNY", "CNY/USD", "EUR/USD") for d in ("2025-03-09",
                                                                                              "2025-03-10")]
    for shards in (1, 4, 8, 16):
        assert {shard_of(ev, shards) for ev in events} == {NEWS_SHARD}


# --- converting a quote in another currency (pure) -------------------------------------------------------------

def test_a_quote_in_another_currency_is_converted_with_the_latest_rate_before_it() -> None:
    rates = book(fx(rate=7.0, as_of="2025-03-05"), fx(rate=7.1, as_of="2025-03-10"), fx(rate=9.9, as_of="2025-03-12"))
    ev = parse(usd_quote(low=62, high=64), rates=rates)
    assert isinstance(ev, PriceEvent)
    assert (ev.product, ev.unit, ev.as_of_date) == ("Pr-Nd oxide", "CNY/t", "2025-03-11")
    assert ev.price == pytest.approx(63 * 7.1 * 1000)  # USD/kg -> CNY/kg -> CNY/t, at the rate of the 10th
    assert ev.low == pytest.approx(62 * 7100) and ev.high == pytest.approx(64 * 7100)
    # per tonne to per kilogram: the mass converted as for any quote
    dy = parse(usd_quote(price=240_000, product="Dy oxide", unit="USD/t"), rates=rates)
    assert dy.unit == "CNY/kg" and dy.price == pytest.approx(240 * 7.1)
    # a rate of the quote's own time counts; a rate dated after the quote does not
    assert parse(usd_quote(as_of="2025-03-12"), rates=rates).price == pytest.approx(63 * 9.9 * 1000)
    assert parse(usd_quote(as_of="2025-03-09"), rates=rates).price == pytest.approx(63 * 7.0 * 1000)


def test_the_inverse_pair_converts_with_one_over_its_rate() -> None:
    ev = parse(usd_quote(), rates=book(fx(pair="CNY/USD", rate=0.14)))
    assert ev.price == pytest.approx(63 / 0.14 * 1000)
    # both pairs known: the later rate wins, whichever way round it is written
    both = book(fx(pair="CNY/USD", rate=0.14, as_of="2025-03-09"), fx(rate=7.2, as_of="2025-03-10"))
    assert parse(usd_quote(), rates=both).price == pytest.approx(63 * 7.2 * 1000)
    both.add(parse(fx(pair="CNY/USD", rate=0.125, as_of="2025-03-11")))
    assert parse(usd_quote(), rates=both).price == pytest.approx(63 * 8 * 1000)
    # a CNY quote of a product quoted in... CNY needs no rate; the other way round uses the same pair
    assert fx_rate("CNY", "USD", ts("2025-03-11"), both) == (0.125, "CNY/USD", 0.125, ts("2025-03-11"))


def test_the_same_time_twice_the_later_arrival_wins() -> None:
    rates = book(fx(rate=7.1), fx(rate=7.3))
    assert rates("USD/CNY", ts("2025-03-11")) == (7.3, ts("2025-03-10"))
    stored = RateBook(stored=lambda pair, t: (7.5, ts("2025-03-10")) if pair == "USD/CNY" and t >= ts("2025-03-10")
                      else None)
    assert stored("USD/CNY", ts("2025-03-11")) == (7.5, ts("2025-03-10"))
    stored.add(parse(fx(rate=7.2)))  # seen in this call: arrived after anything stored at that time
    assert stored("USD/CNY", ts("2025-03-11")) == (7.2, ts("2025-03-10"))
    stored.add(parse(fx(rate=7.0, as_of="2025-03-01")))  # older than the stored one: the stored one stays
    assert stored("USD/CNY", ts("2025-03-11")) == (7.2, ts("2025-03-10"))
    assert stored("USD/CNY", ts("2025-03-05")) == (7.0, ts("2025-03-01"))


HOW_TO_FIX = ('publish an fx event for USD/CNY before this quote, such as {"type": "fx", "pair": "USD/CNY", '
              '"rate": ..., "as_of": "2025-03-11", "source": ...}, or quote it as a separate product in USD '
              "(a products: entry such as {name: Pr-Nd oxide FOB, unit: USD/kg})")


def test_no_rate_refuses_the_quote_and_says_how_to_fix_it() -> None:
    expected = ("unit: 63 USD/kg is in USD but Pr-Nd oxide is quoted in CNY/t, and no USD/CNY rate is known at or "
                "before 2025-03-11; " + HOW_TO_FIX)
    assert reason_of(usd_quote()) == expected  # no rates at all (a caller that has none)
    assert reason_of(usd_quote(), rates=RateBook()) == expected
    assert reason_of(usd_quote(), rates=book(fx(as_of="2025-03-12"))) == expected  # only a later rate
    assert reason_of(usd_quote(), rates=book(fx(pair="EUR/CNY"))) == expected  # another pair


def test_a_rate_too_old_refuses_the_quote() -> None:
    rates = book(fx(rate=7.1, as_of="2025-03-01"))
    assert parse(usd_quote(as_of="2025-03-08"), rates=rates).price == pytest.approx(63 * 7100)  # 7 days: fine
    assert reason_of(usd_quote(as_of="2025-03-11"), rates=rates) == (
        "unit: 63 USD/kg is in USD but Pr-Nd oxide is quoted in CNY/t; the latest USD/CNY rate before it (7.1 on "
        "2025-03-01) is more than 7 days older than the quote (ALERTS_FX_MAX_AGE_DAYS); " + HOW_TO_FIX)
    assert parse(usd_quote(), rates=rates, fx_max_age_days=30).price == pytest.approx(63 * 7100)
    inverse = book(fx(pair="CNY/USD", rate=0.14, as_of="2025-03-01"))
    assert "the latest CNY/USD rate before it (0.14 on 2025-03-01)" in reason_of(usd_quote(), rates=inverse)


def test_a_converted_quote_keeps_its_id_whatever_the_rate() -> None:
    a = parse(usd_quote(), rates=book(fx(rate=7.1)))
    b = parse(usd_quote(), rates=book(fx(rate=7.2)))
    assert a.id == b.id and a.price != b.price
    assert parse(usd_quote(price=64), rates=book(fx())).id != a.id
    assert parse(usd_quote(id="q-1"), rates=book(fx())).id == "q-1"


def test_a_converted_price_out_of_range_is_refused() -> None:
    assert "out of range" in reason_of(usd_quote(price=1e300), rates=book(fx(pair="CNY/USD", rate=1e-300)))


def test_lines_convert_with_the_fx_lines_before_them() -> None:
    lines = [json.dumps(usd_quote(as_of="2025-03-10")), json.dumps(fx()), json.dumps(usd_quote()),
             json.dumps(fx(pair="CNY/USD", rate=0.125, as_of="2025-03-11")), json.dumps(usd_quote(price=64))]
    errors: list[tuple[int, str]] = []
    events = list(parse_lines(lines, CAT, TZ, errors))
    assert [n for n, _ in events] == [2, 3, 4, 5]
    assert [n for n, _ in errors] == [1] and "no USD/CNY rate is known" in errors[0][1]  # the rate comes after it
    prices = [ev.price for _, ev in events if isinstance(ev, PriceEvent)]
    assert prices == [pytest.approx(63 * 7100), pytest.approx(64 * 8000)]


# --- publish: the rates stored in Redis, published earlier, in the same call ----------------------------------

def stream_prices(client: redis.Redis, shards: int) -> list[PriceEvent]:
    out = []
    for s in range(shards):
        for _, fields in stream_entries(client, f"alerts:events:{s}"):
            ev = decode_wire(fields[b"w"])
            if isinstance(ev, PriceEvent):
                out.append(ev)
    return out


def test_a_rate_committed_by_an_earlier_publish_converts(client: redis.Redis, settings: Settings) -> None:
    pipe = Pipeline(client, settings)
    pipe.publish(fx(rate=7.0, as_of="2025-03-01"), fx(rate=7.1), fx(rate=7.4, as_of="2025-03-12"))
    pipe.evaluate()  # the evaluator commits the rates: a series in event time
    stored = [decode_point(m) for m in cast(list[bytes], client.zrange(Keys().legs("fx:USD/CNY"), 0, -1))]
    assert sorted(p.price for p in stored) == [7.0, 7.1, 7.4]
    assert not client.xpending(f"alerts:events:{NEWS_SHARD}", EVALUATOR_GROUP)["pending"]
    report = pipe.publisher.publish(usd_quote())
    assert report.ok, report.errors
    [ev] = stream_prices(client, settings.stream_shards)
    assert ev.price == pytest.approx(63 * 7100) and ev.unit == "CNY/t"
    pipe.evaluate()
    history = cast(list[bytes], client.zrange(Keys().history("prndoxide", "smm"), 0, -1))
    assert len(history) == 1 and json.loads(history[0])[1] == pytest.approx(63 * 7100)  # kept converted


def test_a_rate_published_but_not_evaluated_yet_converts(client: redis.Redis, settings: Settings) -> None:
    pub = Publisher(client, CAT, TZ, settings.stream_shards)
    assert pub.publish(fx(rate=7.1)).ok  # no evaluator ran: only on the stream
    assert pub.publish(usd_quote()).ok
    # read by an evaluator but not committed (pending): still found
    assert pub.publish(fx(rate=7.3, as_of="2025-03-11")).ok
    stream = f"alerts:events:{NEWS_SHARD}"
    ensure_group(client, stream, EVALUATOR_GROUP)
    client.xreadgroup(EVALUATOR_GROUP, "someone", {stream: ">"})
    assert client.xpending(stream, EVALUATOR_GROUP)["pending"] == 2
    assert pub.publish(usd_quote(price=64)).ok
    # and the entries after the group's position, with nothing pending
    client.xack(stream, EVALUATOR_GROUP, *[i for i, _ in stream_entries(client, stream)])
    assert pub.publish(fx(rate=7.5, as_of="2025-03-11")).ok
    assert pub.publish(usd_quote(price=65)).ok
    prices = sorted(ev.price for ev in stream_prices(client, settings.stream_shards))
    assert prices == [pytest.approx(63 * 7100), pytest.approx(64 * 7300), pytest.approx(65 * 7500)]


def test_a_rate_earlier_in_the_same_file_converts(client: redis.Redis, settings: Settings) -> None:
    pub = Publisher(client, CAT, TZ, settings.stream_shards)
    report = pub.publish_lines([json.dumps(usd_quote(as_of="2025-03-10")), json.dumps(fx(pair="CNY/USD", rate=0.125)),
                                json.dumps(usd_quote())])
    assert report.published == 2 and [n for n, _ in report.errors] == [1]
    assert [ev.price for ev in stream_prices(client, settings.stream_shards)] == [pytest.approx(63 * 8000)]
    # the Python API, one call: the same
    report = pub.publish(fx(rate=7.2, as_of="2025-03-11", source="boc"), usd_quote(price=64))
    assert report.ok
    assert [ev.price for ev in stream_prices(client, settings.stream_shards)] == [pytest.approx(63 * 8000),
                                                                               pytest.approx(64 * 7200)]


def test_publish_refuses_a_quote_with_no_recent_rate(client: redis.Redis, settings: Settings) -> None:
    pipe = Pipeline(client, settings)
    pipe.publish(fx(rate=7.1, as_of="2025-02-01"))
    pipe.evaluate()
    report = pipe.publisher.publish(usd_quote(), usd_quote(product="Dy oxide", price=240, as_of="2025-02-03"))
    assert report.published == 1
    [(n, reason)] = report.errors
    assert n == 1 and reason == ("unit: 63 USD/kg is in USD but Pr-Nd oxide is quoted in CNY/t; the latest USD/CNY "
                                 "rate before it (7.1 on 2025-02-01) is more than 7 days older than the quote "
                                 "(ALERTS_FX_MAX_AGE_DAYS); " + HOW_TO_FIX)
    lenient = Publisher(client, CAT, TZ, settings.stream_shards, fx_max_age_days=60)
    assert lenient.publish(usd_quote()).ok


def test_cli_publishes_rates_and_converted_quotes(client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    f.write_text("\n".join(json.dumps(o) for o in [
        usd_quote(as_of="2025-03-10"), fx(), usd_quote(), fx(pair="USD/USD"), usd_quote(as_of="2025-03-30")]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)],
                          env=env_for(settings, ALERTS_FX_MAX_AGE_DAYS="14"), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert [e.split(": ", 1)[0] for e in errors] == [f"{f}:1", f"{f}:4", f"{f}:5"]
    assert "no USD/CNY rate is known at or before 2025-03-10" in errors[0]
    assert "names USD twice" in errors[1]
    assert "more than 14 days older than the quote (ALERTS_FX_MAX_AGE_DAYS)" in errors[2]
    assert "published 2 events" in proc.stdout
    assert [ev.price for ev in stream_prices(client, settings.stream_shards)] == [pytest.approx(63 * 7100)]


# --- backtests replay the rates ------------------------------------------------------------------------------

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [console]
"""


def feed() -> list[dict[str, Any]]:
    return [
        fx(rate=7.0, as_of="2025-03-03"),
        {"type": "price", "product": "Pr-Nd oxide", "price": 440_000, "unit": "CNY/t", "as_of": "2025-03-04",
         "source": "smm"},
        usd_quote(price=63, as_of="2025-03-05"),  # 441,000 CNY/t
        fx(pair="CNY/USD", rate=0.14, as_of="2025-03-06"),
        usd_quote(price=64, as_of="2025-03-06"),  # 457,143 CNY/t: fires
        fx(rate=7.2, as_of="2025-03-07"),
        usd_quote(price=60, as_of="2025-03-07"),  # 432,000
        usd_quote(price=63, as_of="2025-03-10"),  # 453,600: fires again (rearmed below 450,000)
    ]


def test_backtest_of_a_file_replays_fx(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    rules = load_rules(rules_dir, timezone=settings.timezone)
    lines = [json.dumps(o) for o in feed()]
    events, errors = read_events(lines, rules.catalog, settings.timezone, fx_max_age_days=settings.fx_max_age_days)
    assert errors == []
    assert [type(ev).__name__ for ev in events] == ["FxEvent", "PriceEvent", "PriceEvent", "FxEvent", "PriceEvent",
                                                    "FxEvent", "PriceEvent", "PriceEvent"]
    assert [round(ev.price) for ev in events if isinstance(ev, PriceEvent)] == [440_000, 441_000, 457_143, 432_000,
                                                                                 453_600]
    result = run_backtest(rules, events, fx_max_age_days=settings.fx_max_age_days)
    assert [(a.rule_id, a.as_of) for a in result.alerts] == [("prnd-450k", "2025-03-06"), ("prnd-450k", "2025-03-10")]
    # a quote before any rate is a reported line, as publish reports it
    events, errors = read_events(lines[1:], rules.catalog, settings.timezone, fx_max_age_days=settings.fx_max_age_days)
    assert [n for n, _ in errors] == [2] and "no USD/CNY rate is known" in errors[0][1]
    _, errors = read_events(lines, rules.catalog, settings.timezone, fx_max_age_days=1)
    assert [n for n, _ in errors] == [3, 8]  # two days after the rate of the 3rd, three after that of the 7th


def test_cli_backtest_of_a_file_converts_with_its_fx_lines(settings: Settings, rules_dir: Path,
                                                           tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    f = tmp_path / "events.jsonl"
    f.write_text("\n".join(json.dumps(o) for o in feed()) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "backtest", "--events", str(f), "--format", "json"],
                          env=env_for(settings), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["events"] == 8 and doc["counts"] == {"prnd-450k": 2}
    assert [round(a["price"]) for a in doc["alerts"]] == [457_143, 453_600]


def test_backtest_of_the_stored_history_replays_fx(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    live = Pipeline(client, settings)
    for obj in feed():  # one publish each: the rates come from Redis, committed or not
        live.publish(obj)
    live.evaluate()
    live_alerts = [(a["id"], a["text"]) for a in live.alert_stream()]
    assert len(live_alerts) == 2

    rules = load_rules(rules_dir, timezone=settings.timezone)
    stored = stored_events(client, Keys(), rules.catalog, settings.timezone)
    rates = [ev for ev in stored if isinstance(ev, FxEvent)]
    from_file, _ = read_events([json.dumps(o) for o in feed()], rules.catalog, settings.timezone,
                               fx_max_age_days=settings.fx_max_age_days)
    assert rates == [ev for ev in from_file if isinstance(ev, FxEvent)]  # every field, in arrival order
    prices = [ev for ev in stored if isinstance(ev, PriceEvent)]
    assert [round(ev.price) for ev in prices] == [440_000, 441_000, 457_143, 432_000, 453_600]
    # in arrival order among the other events (by stream entry time: across shards, within a millisecond, the
    # order is not known; the quotes are stored converted already, so it changes nothing)
    assert [ev.id for ev in stored if not isinstance(ev, FxEvent)] == [ev.id for ev in prices]
    replayed = run_backtest(rules, stored, fx_max_age_days=settings.fx_max_age_days)
    assert {(a.id, a.text) for a in replayed.alerts} == set(live_alerts)
    assert stored_events(client, Keys(), rules.catalog, settings.timezone, until=ts("2025-03-05")) == [
        ev for ev in stored if event_time(ev) <= ts("2025-03-05")]


def test_stored_rates_of_another_prefix_or_a_bad_member_are_skipped(client: redis.Redis, settings: Settings) -> None:
    pipe = Pipeline(client, settings)
    pipe.publish(fx())
    pipe.evaluate()
    client.zadd(Keys().legs("fx:USD/CNY"), {b"not a point": 1.0})
    client.zadd(Keys("other").legs("fx:EUR/USD"), {b"[1,\"x\",1.1,\"d\",\"s\",\"e\"]": 1.0})
    stored = stored_events(client, Keys(), CAT, TZ)
    assert [(ev.pair, ev.rate) for ev in stored if isinstance(ev, FxEvent)] == [("USD/CNY", 7.1)]
