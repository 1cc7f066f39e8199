"""CSV history import (``alerts import``): rows checked as events are, bad rows reported by line, quotes kept as
history (windows, backtests) without live alerts, and a second import adding nothing."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import msgspec
import pytest
import redis
from hypothesis import example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from redis.connection import Connection

from alerts.catalog import Product, builtin_catalog
from alerts.errors import EventError
from alerts.evaluate.backtest import run_backtest
from alerts.events import (
    FxEvent,
    PriceEvent,
    PriceRows,
    RateBook,
    decode_wire,
    encode_wire,
    parse_event,
    parse_time,
    price_from_fields,
)
from alerts.events.times import read_time
from alerts.ingest.csv_import import _LINES, CsvError, import_file, parse_map, read_rows
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.history import stored_events
from alerts.store.imports import SEP, StreamAppender
from alerts.store.keys import Keys
from alerts.store.streams import WIRE_FIELD
from tests.conftest import env_for
from tests.pipeline import Pipeline
from tests.servers import write_rules

TZ = "Asia/Shanghai"
CATALOG = builtin_catalog()

RULES = """
rules:
  - id: tb-up-5pct
    price: {product: terbium oxide, change_pct: {over: 30d, above: 5}}
    notify: [console]
  - id: tb-above-7000
    price: {product: terbium oxide, above: 7000 CNY/kg}
    notify: [console]
"""


def rows(text: str, **kw: object) -> tuple[list[tuple[int, PriceEvent]], list[tuple[int, str]]]:
    errors: list[tuple[int, str]] = []
    got = list(read_rows(io.StringIO(text, newline=""), CATALOG, TZ, errors, max_future_days=1.0,
                         **{"fx_max_age_days": 7.0, **kw}))  # type: ignore[arg-type]
    return got, errors


def test_rows_become_the_events_publish_makes() -> None:
    got, errors = rows("Product,Price,Unit,Date,Source,Low,High\n"
                       "prnd oxide,444,yuan/kg,2025-03-11,smm,440,445\n")
    assert errors == []
    [(line, ev)] = got
    same = parse_event({"type": "price", "product": "prnd oxide", "price": 444, "unit": "yuan/kg",
                        "as_of": "2025-03-11", "source": "smm", "low": 440, "high": 445}, CATALOG, TZ)
    assert line == 2 and ev.history
    assert (ev.id, ev.product, ev.price, ev.unit, ev.as_of, ev.low, ev.high) == (
        same.id, "Pr-Nd oxide", 444_000, "CNY/t", same.as_of, 440_000, 445_000)  # type: ignore[union-attr]


def test_bad_rows_are_reported_by_line_and_the_others_kept() -> None:
    future = (date.today() + timedelta(days=30)).isoformat()
    text = ("\ufeffproduct,price,unit,as_of\n"  # a BOM
            "Tb oxide,6525,CNY/kg,2025-03-11\n"
            "Tb oxide,abc,CNY/kg,2025-03-11\n"
            "Tb oxyde,6525,CNY/kg,2025-03-11\n"
            "\n"
            "Tb oxide,6525,CNY/kg,2025-13-40\n"
            f"Tb oxide,6525,CNY/kg,{future}\n"
            "Tb oxide,6525,CNY/bucket,2025-03-11\n"
            "Tb oxide,6525,CNY/kg\n"
            '"Pr-Nd oxide","444,000",CNY/t,2025-03-12\n'
            "Tb oxide,-5,CNY/kg,2025-03-11\n"
            "Tb oxide,nan,CNY/kg,2025-03-11\n"
            "Tb oxide,,CNY/kg,2025-03-11\n"
            "   ,  ,  ,  \n"
            "Tb oxide,6,500,CNY/kg,2025-03-11\n")
    got, errors = rows(text)
    assert [(n, ev.product, ev.price) for n, ev in got] == [(2, "terbium oxide", 6525), (10, "Pr-Nd oxide", 444_000)]
    reasons = dict(errors)
    assert reasons[3] == "price: must be a number, not 'abc'"
    assert reasons[4] == "product: unknown product 'Tb oxyde' (did you mean 'Tb oxide'?)"
    assert reasons[6] == "as_of: '2025-13-40' is not an ISO date or datetime"
    assert reasons[7].startswith(f"as_of: {future} is in the future")
    assert reasons[8].startswith("unit: ")
    assert reasons[9] == "3 fields, but the header has 4"
    assert reasons[11] == "price: must be a positive number"
    assert reasons[12] == "price: must be a number, not 'nan'"
    assert reasons[13] == "price: empty; every row needs one"
    assert reasons[15] == "5 fields, but the header has 4"
    assert sorted(reasons) == [3, 4, 6, 7, 8, 9, 11, 12, 13, 15]


def test_a_line_that_is_not_csv_costs_only_itself() -> None:
    got, errors = rows("product,price,unit,as_of\nTb oxide,65\x0025,CNY/kg,2025-03-11\n"
                       "Tb oxide,6525,CNY/kg,2025-03-11\n")
    assert [n for n, _ in got] == [3]
    assert len(errors) == 1 and errors[0][0] == 2


def test_unit_of_another_currency_needs_a_rate() -> None:
    _, errors = rows("product,price,unit,as_of\nTb oxide,900,USD/kg,2025-03-11\n")
    assert errors and errors[0][1].startswith("unit: 900 USD/kg is in USD but terbium oxide is quoted in CNY/kg")


def test_missing_columns_and_map() -> None:
    with pytest.raises(CsvError) as exc:
        rows("product,avg,unit,day\nTb oxide,6525,CNY/kg,2025-03-11\n")
    assert exc.value.line == 1 and "missing columns price, as_of" in exc.value.reason
    got, errors = rows("name,avg,unit,day,lo\nTb oxide,6525,CNY/kg,2025-03-11,6500\n",
                       mapping=parse_map("product=Name,price=avg,as_of=DAY,low=lo"))
    assert errors == [] and [(ev.price, ev.low) for _, ev in got] == [(6525, 6500)]
    with pytest.raises(CsvError, match="no column 'average'"):
        rows("product,avg,unit,day\n", mapping=parse_map("price=average,as_of=day"))
    with pytest.raises(CsvError, match="unknown column 'prize'"):
        parse_map("prize=avg")


def test_source_for_rows_without_one_and_quoted_fields() -> None:
    got, errors = rows('product,price,unit,as_of,source,id\n'
                       '"Tb oxide","6,525.5",CNY/kg,2025-03-11,,"a,1"\n'
                       'Tb oxide,6530,CNY/kg,2025-03-12,smm,\n', source="vendor")
    assert errors == []
    assert [(ev.source, ev.id, ev.price) for _, ev in got] == [("vendor", "a,1", 6525.5),
                                                               ("smm", got[1][1].id, 6530)]
    assert got[1][1].id.startswith("p-")


def history_csv(path: Path, start: date, prices: list[float]) -> Path:
    lines = ["product,price,unit,date,source"]
    lines += [f"Tb oxide,{p},CNY/kg,{start + timedelta(days=i)},smm" for i, p in enumerate(prices)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_import(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "import", *args], env=env_for(settings),
                          capture_output=True, text=True, timeout=60)


def history_size(client: redis.Redis) -> int:
    return sum(int(client.zcard(k)) for k in client.scan_iter(match="alerts:history:*"))


def stream_size(client: redis.Redis, settings: Settings) -> int:
    return sum(int(client.xlen(f"alerts:events:{s}")) for s in range(settings.stream_shards))


def test_imported_history_feeds_windows_and_backtests_but_fires_nothing(
        client: redis.Redis, settings: Settings, rules_dir: Path, tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    start = date.today() - timedelta(days=40)
    prices = [7100.0 if i == 10 else 6000.0 for i in range(36)]  # flat but for one day above 7,000
    csv_file = history_csv(tmp_path / "tb.csv", start, prices)
    proc = run_import(settings, str(csv_file))
    assert proc.returncode == 0, proc.stderr
    assert "36 rows: 36 quotes imported as history, 0 already stored, 0 bad rows" in proc.stdout
    pipe = Pipeline(client, settings)
    assert pipe.evaluate() == []  # history: no alert
    assert history_size(client) == 36

    # a second import adds nothing, before or after the evaluators read the first
    again = run_import(settings, str(csv_file))
    assert again.returncode == 0 and "0 quotes imported as history, 36 already stored" in again.stdout
    assert stream_size(client, settings) == 36
    assert pipe.evaluate() == [] and history_size(client) == 36

    # the imported quotes are the change window of the next live quote
    alerts = pipe.run({"type": "price", "product": "Tb oxide", "price": 6400, "unit": "CNY/kg",
                       "as_of": (start + timedelta(days=36)).isoformat(), "source": "smm"})
    assert [a.rule_id for a in alerts] == ["tb-up-5pct"]  # 6,400 is 6.7% above the quote 30 days before

    # and a backtest of the stored history sees them
    rules = load_rules(rules_dir, timezone=settings.timezone)
    result = run_backtest(rules, stored_events(client, Keys(), rules.catalog, settings.timezone),
                          fx_max_age_days=settings.fx_max_age_days)
    assert {a.rule_id for a in result.alerts} == {"tb-up-5pct", "tb-above-7000"}


def test_live_import_fires_and_bad_rows_are_reported(client: redis.Redis, settings: Settings, rules_dir: Path,
                                                      tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    csv_file = tmp_path / "live.csv"
    csv_file.write_text("product,price,unit,as_of\n"
                        f"Tb oxide,6900,CNY/kg,{date.today() - timedelta(days=2)}\n"
                        "Tb oxyde,6525,CNY/kg,2025-03-11\n"
                        f"Tb oxide,7100,CNY/kg,{date.today() - timedelta(days=1)}\n")
    proc = run_import(settings, str(csv_file), "--live", "--source", "desk")
    assert proc.returncode == 1
    assert f"{csv_file}:3: product: unknown product 'Tb oxyde' (did you mean 'Tb oxide'?)" in proc.stderr
    assert "3 rows: 2 quotes published live, 0 already stored, 1 bad rows" in proc.stdout
    alerts = Pipeline(client, settings).evaluate()
    assert [(a.rule_id, a.source) for a in alerts] == [("tb-above-7000", "desk")]


def test_missing_column_stops_the_import(settings: Settings, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("product,price,as_of\nTb oxide,6525,2025-03-11\n")
    proc = run_import(settings, str(csv_file))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{csv_file}:1: missing column unit")


def test_rows_out_of_time_order_are_sent_in_order(client: redis.Redis, settings: Settings,
                                                   tmp_path: Path) -> None:
    start = date.today() - timedelta(days=10)
    lines = ["product,price,unit,date"] + [f"Tb oxide,{6000 + i},CNY/kg,{start + timedelta(days=i)}"
                                           for i in range(9, -1, -1)]  # newest first
    report = import_file(io.StringIO("\n".join(lines), newline=""), client, CATALOG, TZ, settings.stream_shards,
                         Keys(), rates=None, max_future_days=1.0, fx_max_age_days=settings.fx_max_age_days)
    assert (report.rows, report.imported, report.late, report.out_of_order) == (10, 10, 0, 3)
    Pipeline(client, settings).evaluate()
    [key] = list(client.scan_iter(match="alerts:history:*"))
    members = client.zrange(key, 0, -1)
    assert len(members) == 10 and all(b",0," in m for m in members)  # none late


def test_import_speed(client: redis.Redis, settings: Settings) -> None:
    n = 20_000
    start = date(2020, 1, 1)
    names = [p.name for p in CATALOG.products.values()]
    units = {p.name: p.unit_text for p in CATALOG.products.values()}
    k = len(names)
    text = "product,price,unit,date\n" + "".join(
        f"{names[i % k]},{1000 + i % 97},{units[names[i % k]]},{start + timedelta(days=i // k)}\n"
        for i in range(n))
    t = time.perf_counter()
    report = import_file(io.StringIO(text, newline=""), client, CATALOG, TZ, settings.stream_shards, Keys(),
                         rates=None, max_future_days=1.0, fx_max_age_days=settings.fx_max_age_days)
    assert report.imported == n and not report.errors
    assert n / (time.perf_counter() - t) > 20_000  # a smoke floor on a busy machine; the bench measures it


def test_imported_spread_legs_are_kept_but_fire_nothing(client: redis.Redis, settings: Settings, rules_dir: Path,
                                                        tmp_path: Path) -> None:
    write_rules(rules_dir, """
rules:
  - id: tb-dy
    spread: {of: terbium oxide, minus: Dy oxide, above: 5000}
    notify: [console]
""")
    day = date.today() - timedelta(days=5)
    csv_file = tmp_path / "legs.csv"
    csv_file.write_text("product,price,unit,as_of\n"
                        f"Tb oxide,7000,CNY/kg,{day}\nDy oxide,1700,CNY/kg,{day}\n")
    assert run_import(settings, str(csv_file)).returncode == 0
    pipe = Pipeline(client, settings)
    assert pipe.evaluate() == [] and pipe.flush() == []  # 5,300 above 5,000, but history
    legs = [CATALOG.find(name).key for name in ("Tb oxide", "Dy oxide")]  # type: ignore[union-attr]
    assert [client.zcard(Keys().legs(k)) for k in legs] == [1, 1]  # the legs of live spreads to come
    rules = load_rules(rules_dir, timezone=settings.timezone)
    result = run_backtest(rules, stored_events(client, Keys(), rules.catalog, settings.timezone),
                          fx_max_age_days=settings.fx_max_age_days)
    assert [a.rule_id for a in result.alerts] == ["tb-dy"]  # a backtest of the stored history sees the spread


# --- the fast path of the rows (PriceRows, a cache per text as written) gives what the slow path gives ---------

ZONES = ("Asia/Shanghai", "UTC", "America/New_York", "Pacific/Chatham", "Asia/Kathmandu", "Europe/Dublin")
NOW = datetime(2025, 3, 11, 12, tzinfo=UTC).timestamp()
RATES = RateBook()
RATES.add(FxEvent("x-1", "USD/CNY", 7.1, datetime(2025, 3, 5, tzinfo=UTC).timestamp(), "2025-03-05", "m"))

def mostly(valid: list[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values three times in four (so most rows take the fast path), else anything ``other`` makes."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), st.sampled_from(valid), other)


#: The catalog of the property tests: the built-in one and names beyond the limit of a product field.
LONG = CATALOG.copy()
LONG.add(Product("x" * 101, CATALOG.find("Tb oxide").unit, ("y" * 100,)))  # type: ignore[union-attr]
PRODUCTS = mostly(["Tb oxide", " terbium oxide ", "TB-OXIDE", "prnd oxide", "Pr-Nd oxide", "PrNd oxide"],
                  st.sampled_from(["Tb oxyde", "", "   ", "x" * 101, " " + "y" * 100 + " "]) | st.text(max_size=6))
UNITS = mostly(["CNY/kg", "yuan/t", " RMB / kg ", "cny/t"],
               st.sampled_from(["CNY/bucket", "USD/kg", "usd/t", "$/t", "", " ", "c" * 33, "CNY" + " " * 30 + "/kg"])
               | st.text(max_size=6))
TIMES = mostly(["2025-03-11", " 2025-03-11 ", "2025-03-12", "2025-03-13", "2025-03-11T09:00:00+08:00",
                "2025-03-10T23:30:00+00:00", "2025-03-11T16:00:00-07:00", "2025-03-01T00:00:00+12:45",
                "0001-01-01T00:00:00+14:00", "0001-01-01"],
               st.sampled_from(["2025-03-11T00:00:00", "2025-13-40", "", " ", "9999-12-31T23:59:59-23:59",
                                "9999-12-31", "t" * 65]) | st.builds(
    lambda dt, minutes: dt.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 3, 14)), st.integers(-14 * 60, 14 * 60)))
PRICES = mostly([6525.0, 444.0, 6500.0, 6530.0, 1e-300, 5e-324, 1e306],
                st.sampled_from([0.0, -5.0, math.nan, math.inf, 1e308]) | st.floats())
BOUNDS = st.none() | st.none() | PRICES
SOURCES = st.sampled_from([None, "", " ", "smm", " smm ", "s" * 100, " " + "s" * 100 + " ", "s" * 101])
IDS = st.sampled_from([None, "", " ", "a1", " a1 ", "i" * 200, "i" * 201, " " + "i" * 200, " " * 201])
ROWS = st.lists(st.tuples(PRODUCTS, PRICES, UNITS, TIMES, SOURCES, IDS, BOUNDS, BOUNDS), min_size=1, max_size=12)


def outcome(make: Callable[..., object], *args: Any, **kwargs: Any) -> tuple[str, object]:
    try:
        return "event", make(*args, **kwargs)
    except EventError as exc:
        return "error", str(exc)
    except Exception as exc:  # compared, not hidden
        return type(exc).__name__, str(exc)


@examples(max_examples=300, deadline=None)
@given(ROWS, st.sampled_from(ZONES), st.sampled_from([None, 1.0, 0.0]), st.booleans())
@example([("prnd oxide", 1e306, "CNY/kg", "2025-03-11", None, None, None, None),  # beyond any float once converted
          ("prnd oxide", 444.0, "CNY/kg", "2025-03-11", None, None, 1e306, None),
          ("prnd oxide", 444.0, "CNY/kg", "2025-03-11", None, None, None, 1e306),
          ("Tb oxide", 6525.0, "CNY/kg", "2025-03-11", " s ", " a1 ", 6500.0, 6530.0),
          ("Tb oxide", 6525.0, "CNY/kg", "2025-03-11", "s" * 101, None, 6530.0, None),
          ("Tb oxide", 6525.0, "CNY/kg", "2025-03-11", None, "i" * 201, None, 6500.0),
          ("x" * 101, 6525.0, "CNY/kg", "2025-03-11", None, None, None, None),
          (" " + "y" * 100 + " ", 6525.0, "CNY/kg", "2025-03-11", None, None, None, None),
          ("Tb oxide", 6525.0, "CNY" + " " * 30 + "/kg", "2025-03-11", None, None, None, None),
          ("Tb oxide", 6525.0, "USD/kg", "2025-03-11", None, None, None, None),  # converted: the slow path
          ("Tb oxide", 6525.0, "CNY/kg", "2025-03-13", None, None, None, None)], "Asia/Shanghai", 1.0, True)
def test_fast_rows_are_the_slow_path_for_any_input(rows_: list[tuple[Any, ...]], tz: str,
                                                    max_future: float | None, history: bool) -> None:
    """Every row (rows repeat texts, so the caches are hit) gives the event or the error price_from_fields gives,
    and, where the fields are the equivalent JSON object's, the event parse_event gives."""
    fast = PriceRows(LONG, tz, now=NOW, max_future_days=max_future, rates=RATES, history=history)
    for product, price, unit, as_of, source, id_, low, high in rows_ + rows_:
        got = outcome(fast, product, price, unit, as_of, source, id_, low, high)
        slow = outcome(price_from_fields, product, price, unit, as_of, LONG, tz, source=source, id=id_, low=low,
                       high=high, now=NOW, max_future_days=max_future, rates=RATES, history=history)
        assert got == slow
        obj: dict[str, object] = {"type": "price", "product": product, "price": price, "unit": unit, "as_of": as_of}
        obj |= {"source": source} if source and source.strip() else {}
        obj |= {"id": id_} if id_ and id_.strip() else {}
        obj |= {k: v for k, v in (("low", low), ("high", high)) if v is not None}
        edge = outcome(parse_event, obj, LONG, tz, NOW, max_future_days=max_future, rates=RATES)
        assert got[0] == edge[0] or "error" in (got[0], edge[0])
        if got[0] == "event" or edge[0] == "event":
            assert got[0] == edge[0], (got, edge)
            assert msgspec.structs.replace(got[1], history=False) == edge[1]  # type: ignore[type-var]


@examples(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(-23 * 3600 - 3599, 23 * 3600 + 3599), st.sampled_from(ZONES))
def test_quote_times_are_read_as_before(dt: datetime, offset: int, tz: str) -> None:
    """The local date of a quote time (a date cached per day ordinal) is the date astimezone gives."""
    aware = dt.replace(tzinfo=timezone(timedelta(seconds=offset)))
    try:
        expected: object = (aware.timestamp(), aware.astimezone(ZoneInfo(tz)).date().isoformat())
    except OverflowError:
        expected = OverflowError
    try:
        got: object = read_time(aware.isoformat(), tz, "as_of")
    except OverflowError:
        got = OverflowError
    assert got == expected
    assert read_time(dt.date().isoformat(), tz, "as_of") == parse_time(dt.date(), tz, "as_of")


@examples(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
       st.sampled_from((*ZONES, "No/Such_Zone")))
def test_quote_times_of_the_fast_path_are_read_time(dt: datetime, offset: timedelta, tz: str) -> None:
    """PriceRows works out a quote time's epoch without ``timestamp()``: the same float, for any time and offset
    (with seconds and microseconds too), or the slow path for what read_time refuses."""
    text = dt.replace(tzinfo=timezone(offset)).isoformat()
    expected = outcome(read_time, text, tz, "as_of")
    got = PriceRows(CATALOG, tz)._time(text)
    assert got == (expected[1] if expected[0] == "event" else False)
    assert PriceRows(CATALOG, tz)._time(dt.isoformat()) is False  # no offset: the slow path says so


def test_a_cached_time_is_not_reused_across_zones_or_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caches are one reader's (one zone, one catalog); the future check is made per row, with the clock of
    that row when there is no fixed ``now``; an alias resolves as the catalog resolves it."""
    day = "2025-03-11"
    east = PriceRows(CATALOG, "Asia/Shanghai")
    west = PriceRows(CATALOG, "America/New_York")
    a, b = east("Tb oxide", 6525, "CNY/kg", day), west("Tb oxide", 6525, "CNY/kg", day)
    assert a.as_of == parse_time(day, "Asia/Shanghai", "as_of")[0]
    assert b.as_of == parse_time(day, "America/New_York", "as_of")[0] == a.as_of + 12 * 3600
    assert a.id != b.id
    clock = [datetime(2025, 3, 11, tzinfo=UTC).timestamp()]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    rows_ = PriceRows(CATALOG, "UTC", max_future_days=1.0)
    assert rows_("Tb oxide", 6525, "CNY/kg", "2025-03-12").as_of == clock[0] + 86400  # one day ahead: allowed
    clock[0] -= 1
    with pytest.raises(EventError, match="as_of: 2025-03-12 is in the future, more than 1 day after now"):
        rows_("Tb oxide", 6525, "CNY/kg", "2025-03-12")
    for alias in ("terbium oxide", " TB-OXIDE ", "Tb oxide", "tb_oxide"):
        assert east(alias, 6525, "yuan/t", day) == price_from_fields(alias, 6525, "yuan/t", day, CATALOG,
                                                                      "Asia/Shanghai")
    catalog = CATALOG.copy()
    catalog.add(Product("terbium oxide", CATALOG.find("Tb oxide").unit, ("terbia",)))  # type: ignore[union-attr]
    assert PriceRows(catalog, TZ)("terbia", 6525, "CNY/kg", day).product == "terbium oxide"
    with pytest.raises(EventError, match="unknown product 'terbia'"):
        PriceRows(CATALOG, TZ)("terbia", 6525, "CNY/kg", day)


def test_chunks_are_encoded_as_encode_wire_encodes_each_quote(client: redis.Redis) -> None:
    got, errors = rows("product,price,unit,as_of,source,low,high\n"
                       "Tb oxide,6525,CNY/kg,2025-03-11,smm,6500,6530\n"
                       'Dy oxide,1700,CNY/kg,2025-03-11T10:00:00+08:00,"a ""quoted"" source",,\n'
                       "prnd oxide,444,yuan/kg,2025-03-12,\u5b89\u6cf0,,\n")
    events = [ev for _, ev in got]
    assert errors == [] and len(events) == 3
    assert _LINES.encode_lines(events) == b"".join(encode_wire(ev) + SEP for ev in events)
    appender = StreamAppender(client, Keys())
    appender.send([(0, _LINES.encode_lines(events[:2])), (1, b""), (2, _LINES.encode_lines(events[2:]))])
    assert appender.send([(0, _LINES.encode_lines(events))]) == 3  # the count of the call before
    assert appender.wait() == 0 and appender.wait() == 0  # each quote at most once
    assert appender.append(3, [encode_wire(ev) for ev in events]) == 0
    assert [client.xlen(Keys().events(s)) for s in range(4)] == [2, 0, 1, 0]
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys().events(0)))
    assert [decode_wire(fields[WIRE_FIELD.encode()]) for _, fields in entries] == events[:2]


def test_a_chunk_whose_connection_fails_is_sent_again_and_appended_once(client: redis.Redis,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    got, _ = rows("product,price,unit,as_of\nTb oxide,6525,CNY/kg,2025-03-11\nTb oxide,6530,CNY/kg,2025-03-12\n")
    events = [ev for _, ev in got]
    appender = StreamAppender(client, Keys())
    appender.send([(0, _LINES.encode_lines(events[:1]))])
    assert appender._conn is not None
    appender._conn.disconnect()  # the link drops before the reply: the call goes again, the ledger keeps it once
    assert appender.wait() in (0, 1)

    real = Connection.send_command
    failures = [redis.ConnectionError("link down")]

    def flaky(self: Connection, *args: Any, **kwargs: Any) -> None:
        if failures and args[0] == "EVAL":
            raise failures.pop()
        real(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_command", flaky)
    assert appender.send([(0, _LINES.encode_lines(events))]) == 1  # sent again at once, through the client
    assert not failures and appender.wait() == 0
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys().events(0)))
    assert [decode_wire(fields[WIRE_FIELD.encode()]) for _, fields in entries] == events
