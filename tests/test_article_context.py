# ruff: noqa: RUF001  (Chinese punctuation is what these tests are about)
"""Articles read as a desk writes them (issue 17): the date of a title or heading carried to the lines after it,
a line as a sentence, a clause after a semicolon inheriting its sentence's product and date; and the larger
sample set with traps (tests/data/articles_more, hand-written expected quotes): precision 1.0."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.catalog import builtin_catalog
from alerts.ingest.articles import Quote, Skipped, extract
from alerts.units import format_price

MORE = Path(__file__).parent / "data" / "articles_more"
CATALOG = builtin_catalog()
TZ = "Asia/Shanghai"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]

Key = tuple[str, float, str]  # product, price, as_of


def read(text: str, article_date: date | None) -> tuple[list[Quote], list[Skipped]]:
    return extract(text, CATALOG, article_date, TZ)


def keys(quotes: list[Quote]) -> list[Key]:
    return [(q.product, q.price, q.as_of.isoformat()) for q in quotes]


# --- the larger sample set ---------------------------------------------------------------------------------

def more_precision_recall() -> tuple[float, float, int, int, int, list[str]]:
    """Precision and recall on tests/data/articles_more against its expected.json, and the false quotes. A quote
    is right when its product, price and day are expected, and its low and high too when it states them."""
    spec = json.loads((MORE / "expected.json").read_text("utf-8"))
    found = correct = expected = 0
    false: list[str] = []
    for name, item in spec.items():
        if name.startswith("_"):
            continue
        want = {(r[0], float(r[1]), r[2]): (r[3], r[4]) for r in item["quotes"]}
        when = date.fromisoformat(item["date"]) if item["date"] else None
        quotes, _ = read((MORE / name).read_text("utf-8"), when)
        for q in quotes:
            k = (q.product, q.price, q.as_of.isoformat())
            if k in want and ((q.low is None and q.high is None) or (q.low, q.high) == want[k]):
                correct += 1
            else:
                false.append(f"{name}: {k} low {q.low} high {q.high} from {q.sentence!r}")
        found += len(quotes)
        expected += len(want)
    return (correct / found if found else 0.0), correct / expected, correct, found, expected, false


def test_more_samples_precision_and_recall() -> None:
    spec = json.loads((MORE / "expected.json").read_text("utf-8"))
    assert sorted(n for n in spec if not n.startswith("_")) == sorted(p.name for p in MORE.iterdir()
                                                                      if p.name != "expected.json")
    precision, recall, correct, found, expected, false = more_precision_recall()
    print(f"\narticles_more: precision {precision:.3f} ({correct}/{found}), recall {recall:.3f} ({correct}/{expected})")
    assert not false
    assert precision == 1.0
    assert recall >= 0.95  # 89 of 91 when written (45 of 91 before issue 17, with 5 false quotes)


# --- a date in a title or a heading applies to the lines after it ------------------------------------------

def test_a_title_date_dates_the_list_under_it_with_the_year_of_the_date_option() -> None:
    text = "Fastmarkets rare earth quotes, 23 July\nGd oxide averaged 181,500 yuan/t\nHo oxide was 528,000 yuan/t\n"
    q, _ = read(text, date(2024, 7, 24))
    assert keys(q) == [("gadolinium oxide", 181500, "2024-07-23"), ("holmium oxide", 528000, "2024-07-23")]
    q, skipped = read(text, None)  # no year anywhere: said, not guessed
    assert q == [] and all("give --date" in s.why for s in skipped)


def test_a_later_heading_takes_over_and_one_that_dates_nothing_drops_the_date() -> None:
    text = ("Minor rare earths\nPublished 3 March 2025\n\nQuotes for February 27\nLa oxide 3,950 yuan/t\n\n"
            "Quotes for February 28\nLa oxide 4,000 yuan/t\n\nMonthly averages\nLa oxide 3,900 yuan/t\n")
    q, _ = read(text, None)
    assert keys(q) == [("lanthanum oxide", 3950, "2025-02-27"), ("lanthanum oxide", 4000, "2025-02-28")]


def test_chinese_heading_dates_and_a_relative_heading() -> None:
    text = ("稀土日报\n2025年9月2日\n\n9月1日报价\n金属钕 均价 61.5万元/吨\n氧化钆 17.8万元/吨\n\n"
            "上月均价\n金属钕 均价 60.1万元/吨\n")
    q, _ = read(text, None)
    assert keys(q) == [("neodymium metal", 615000, "2025-09-01"), ("gadolinium oxide", 178000, "2025-09-01")]


@pytest.mark.parametrize("line", [
    "Nd metal averaged 612,000 yuan/t in August",
    "The 2024 average of Nd metal was 612,000 yuan/t",
    "H1 average: Nd metal 612,000 yuan/t",
    "Nd metal was 612,000 yuan/t last week",
    "Nd metal averaged 612,000 yuan/t in the week to September 5",
    "8月金属钕月均价61.2万元/吨",
    "上周金属钕均价61.2万元/吨",
    "Analysts expect Nd metal at 612,000 yuan/t",
])
def test_a_line_with_its_own_period_or_relative_day_does_not_take_the_heading_date(line: str) -> None:
    q, _ = read(f"Rare earth prices, September 9\n{line}\nTb metal 8,800 yuan/kg\n", date(2025, 9, 10))
    assert keys(q) == [("terbium metal", 8800, "2025-09-09")]


@pytest.mark.parametrize("byline", ["Published 9 September 2025", "Date: 2025-09-09", "September 9, 2025",
                                    "2025年9月9日", "Updated Sep 9, 2025 08:00"])
def test_a_byline_is_not_a_heading(byline: str) -> None:
    q, skipped = read(f"Rare earth report\n{byline}\n\nTb metal 8,800 yuan/kg\n", None)
    assert q == [] and "no date" in skipped[0].why
    q, _ = read("稀土周报（2025年9月9日）\n\n氧化钬价格为52万元/吨。\n", None)  # a report's date is not its prices'
    assert q == []


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(CATALOG.products)), st.dates(date(2020, 1, 1), date(2030, 12, 31)),
       st.sampled_from(["{v} prices, {m} {d}", "Prices on {m} {d}", "{d} {m} assessments", "{cm}月{d}日价格"]))
def test_any_product_under_any_dated_heading(key: str, day: date, heading: str) -> None:
    """For any catalog product, day and heading style, a price line under a dated heading is dated by it."""
    product = CATALOG.products[key]
    price = product.typical[0] * 2 if product.typical else 1000.0
    unit = "yuan/t" if product.unit.mass == "t" else "yuan/kg"
    title = heading.format(v="Vendor", m=MONTHS[day.month - 1], d=day.day, cm=day.month)
    text = f"{title}\n{product.name} averaged {format_price(price)} {unit}\n"
    q, _ = read(text, day)
    assert keys(q) == [(product.name, price, day.isoformat())]


# --- a line is a sentence ---------------------------------------------------------------------------------

def test_lines_without_end_punctuation_are_sentences() -> None:
    zh = "稀土快讯\n\n8月4日氧化钬均价52.5万元/吨\n预计下周氧化钬将升至55万元/吨\n8月4日金属铽报价8,350元/公斤\n"
    q, _ = read(zh, date(2025, 8, 5))  # the forecast on its own line forecasts nothing on the others
    assert keys(q) == [("holmium oxide", 525000, "2025-08-04"), ("terbium metal", 8350, "2025-08-04")]
    en = ("Note\n\nHo oxide was 525,000 yuan/t on August 4\nHo oxide may reach 550,000 yuan/t soon\n"
          "Tb metal closed at 8,350 yuan/kg on August 4\n")
    q, _ = read(en, date(2025, 8, 5))
    assert keys(q) == [("holmium oxide", 525000, "2025-08-04"), ("terbium metal", 8350, "2025-08-04")]


def test_wrapped_prose_is_still_one_sentence() -> None:
    text = ("Note\n\nMagnet makers held back from buying although holmium oxide was quoted at\n528,000 yuan/t on "
            "August 4, and the market expects gadolinium oxide to\nreach 190,000 yuan/t. Analysts forecast\n"
            "Ho oxide at 560,000 yuan/t in the fourth quarter of the year, traders said.\n")
    q, _ = read(text, date(2025, 8, 5))
    assert keys(q) == [("holmium oxide", 528000, "2025-08-04")]


# --- a clause after a semicolon inherits its sentence's product and date -----------------------------------

def test_semicolon_clauses_inherit_product_and_date() -> None:
    q, _ = read("日报\n\n7月30日，氧化钆报17.6万元/吨；氧化钬50.2万元/吨；8月1日报50.8万元/吨。", date(2025, 8, 2))
    assert keys(q) == [("gadolinium oxide", 176000, "2025-07-30"), ("holmium oxide", 502000, "2025-07-30"),
                       ("holmium oxide", 508000, "2025-08-01")]
    q, _ = read("R\n\nOn July 30 Gd oxide was 176,000 yuan/t, 2,000 yuan/t lower than last week; Ho oxide "
                "502,000 yuan/t.", date(2025, 8, 2))
    assert keys(q) == [("gadolinium oxide", 176000, "2025-07-30"), ("holmium oxide", 502000, "2025-07-30")]


def test_a_forecast_or_respectively_stays_in_its_clause() -> None:
    q, _ = read("日报\n\n7月30日，预计氧化钆将升至18万元/吨；氧化钬报50.2万元/吨。", date(2025, 8, 2))
    assert keys(q) == [("holmium oxide", 502000, "2025-07-30")]
    q, _ = read("R\n\nOn July 30 Gd oxide and Ho oxide were 176,000 yuan/t and 502,000 yuan/t respectively; "
                "Tb metal 8,300 yuan/kg.", date(2025, 8, 2))
    assert keys(q) == [("terbium metal", 8300, "2025-07-30")]


# --- ranges, signed columns and 千元/吨 --------------------------------------------------------------------

@pytest.mark.parametrize("sentence", [
    "On July 30 Ho oxide ranged from 495,000 to 505,000 yuan/t.",
    "On July 30 Ho oxide traded at 495,000 to 505,000 yuan/t.",
    "7月30日，氧化钬报49.5万-50.5万元/吨。",
    "7月30日，氧化钬报49.5万至50.5万元/吨。",
])
def test_the_high_end_of_a_range_is_not_a_price(sentence: str) -> None:
    q, skipped = read("R\n\n" + sentence, date(2025, 8, 2))
    assert q == [] and "range without its average" in skipped[0].why


def test_a_change_then_a_from_to_is_a_change_and_a_price() -> None:
    q, _ = read("R\n\nOn July 30 Ho oxide rose 7,000 to 505,000 yuan/t.", date(2025, 8, 2))
    assert keys(q) == [("holmium oxide", 505000, "2025-07-30")]  # "rose 7,000": a change, then the price
    q, _ = read("R\n\nHo oxide rose from 498,000 to 505,000 yuan/t on July 30.", date(2025, 8, 2))
    assert keys(q) == [("holmium oxide", 505000, "2025-07-30")]


def test_table_rows_with_a_signed_change_column_and_kilo_yuan() -> None:
    text = "价格表（7月30日）\n\n氧化钬 49.8-50.6万元/吨 50.2万元/吨 +0.4万元/吨\n氧化镧 4.1千元/吨 -0.1千元/吨\n"
    q, _ = read(text, date(2025, 8, 2))
    assert [(q_.product, q_.price, q_.as_of.isoformat(), q_.low, q_.high) for q_ in q] == [
        ("holmium oxide", 502000, "2025-07-30", 498000, 506000), ("lanthanum oxide", 4100, "2025-07-30", None, None)]
