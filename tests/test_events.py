import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from alerts.catalog import builtin_catalog
from alerts.errors import EventError
from alerts.events import (
    LIMITS,
    MAX_BODY,
    MAX_DEPTH,
    MAX_HEADLINE,
    MAX_ID,
    MAX_LINE_BYTES,
    MAX_PAIR,
    MAX_PRODUCT,
    MAX_SOURCE,
    MAX_TAG,
    MAX_TAGS,
    MAX_TIME,
    MAX_UNIT,
    MAX_URL,
    NewsEvent,
    PriceEvent,
    decode_wire,
    encode_wire,
    json_lines,
    parse_event,
    parse_line,
    parse_lines,
    parse_objects,
    read_lines,
)

TZ = "Asia/Shanghai"
CAT = builtin_catalog()


def price(line: str) -> PriceEvent:
    ev = parse_line(line, CAT, TZ)
    assert isinstance(ev, PriceEvent)
    return ev


def test_price_event_from_the_contract() -> None:
    ev = price('{"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", '
               '"as_of": "2025-03-11", "source": "smm"}')
    assert (ev.product, ev.price, ev.unit, ev.as_of_date, ev.source) == ("Pr-Nd oxide", 444000, "CNY/t",
                                                                        "2025-03-11", "smm")
    # a date is that day in the service time zone
    assert ev.as_of == datetime.fromisoformat("2025-03-11T00:00:00+08:00").timestamp()


def test_alias_unit_conversion_and_defaults() -> None:
    ev = price('{"type":"price","product":"prnd oxide","price":444,"unit":"yuan/kg","as_of":"2025-03-11"}')
    assert ev.price == 444_000 and ev.unit == "CNY/t" and ev.source == "manual"
    ev2 = price('{"type":"price","product":"Dy oxide","price":1705000,"unit":"RMB/mt","as_of":"2025-03-11",'
                '"low":1700000,"high":1710000}')
    assert (ev2.price, ev2.low, ev2.high, ev2.unit) == (1705, 1700, 1710, "CNY/kg")


def test_datetime_with_offset_gives_local_date() -> None:
    ev = price('{"type":"price","product":"Tb oxide","price":6525,"unit":"CNY/kg",'
               '"as_of":"2025-03-10T20:00:00-05:00"}')
    assert ev.as_of_date == "2025-03-11"  # 09:00 on the 11th in Shanghai


def test_same_content_same_id_and_explicit_id_wins() -> None:
    line = '{"type":"price","product":"Tb oxide","price":6525,"unit":"CNY/kg","as_of":"2025-03-11"}'
    assert price(line).id == price(line).id
    assert price(line.replace("}", ',"id":"q-1"}')).id == "q-1"
    assert price(line).id != price(line.replace("6525", "6526")).id


def test_news_event() -> None:
    ev = parse_line('{"type":"news","headline":"Large magnet makers obtain export licences",'
                    '"url":"https://x.test/a","published_at":"2025-05-29T10:00:00+08:00","source":"smm"}', CAT, TZ)
    assert isinstance(ev, NewsEvent) and ev.source == "smm" and ev.body == ""
    assert len(ev.article_keys) == 2
    now = parse_line('{"type":"news","headline":"h"}', CAT, TZ, now=1234.0)
    assert isinstance(now, NewsEvent) and now.published_at == 1234.0


@pytest.mark.parametrize("line,reason", [
    ("not json", "not valid JSON"),
    ("[1,2]", "expected a JSON object"),
    ('{"type":"trade"}', "type: expected 'price', 'news', 'fx' or 'notice'"),
    ('{"type":"price","product":"unobtainium","price":1,"unit":"CNY/t","as_of":"2025-03-11"}', "unknown product"),
    ('{"type":"price","product":"Dy oxide","price":1,"unit":"USD/kg","as_of":"2025-03-11"}',
     "no USD/CNY rate is known at or before 2025-03-11; publish an fx event for USD/CNY before this quote"),
    ('{"type":"price","product":"Dy oxide","price":-5,"unit":"CNY/kg","as_of":"2025-03-11"}', "price: "),
    ('{"type":"price","product":"Dy oxide","price":"abc","unit":"CNY/kg","as_of":"2025-03-11"}', "price: "),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg"}', "as_of: Field required"),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":"11/03/2025"}', "not an ISO date"),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":"2025-03-11T10:00:00"}', "no UTC offset"),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":"2025-03-11","prise":1}',
     "prise: unknown field"),
    ('{"type":"news","body":"no headline"}', "headline: Field required"),
])
def test_bad_events_say_why(line: str, reason: str) -> None:
    with pytest.raises(EventError, match=None) as exc:
        parse_line(line, CAT, TZ)
    assert reason in str(exc.value)


@pytest.mark.parametrize("line,reason", [
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":20250311}',
     'as_of: must be an ISO date or datetime in a string, such as "2025-03-11", not the number 20250311'),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":"0001-01-01T00:00:00+14:00"}',
     "out of range"),
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":"9999-12-31T23:00:00-10:00"}',
     "out of range"),
    ('{"type":"price","product":"Pr-Nd oxide","price":1e306,"unit":"CNY/kg","as_of":"2025-03-11"}', "out of range"),
])
def test_out_of_range_values_are_event_errors(line: str, reason: str) -> None:
    with pytest.raises(EventError) as exc:
        parse_line(line, CAT, TZ)
    assert reason in str(exc.value)


# --- mistakes caught at once (issue 8): numbers, ranges, dates in the future, limits, did-you-mean ---------

NOW = datetime.fromisoformat("2025-03-11T12:00:00+08:00").timestamp()


def quote(**fields: object) -> dict[str, object]:
    obj: dict[str, object] = {"type": "price", "product": "Dy oxide", "price": 1705, "unit": "CNY/kg",
                              "as_of": "2025-03-11", "source": "smm"}
    obj.update(fields)
    return obj


def reason_of(obj: object, **kwargs: Any) -> str:
    with pytest.raises(EventError) as exc:
        parse_event(obj, CAT, TZ, **kwargs)
    return str(exc.value)


@pytest.mark.parametrize("fields,reason", [
    ({"price": True}, "price: must be a number, not true"),
    ({"price": False}, "price: must be a number, not false"),
    ({"price": "1705"}, "price: must be a number, not the text '1705'"),
    ({"price": None}, "price: must be a number, not null"),
    ({"low": True}, "low: must be a number, not true"),
    ({"high": [1]}, "high: must be a number, not an array"),
    ({"price": 10**400}, "price: out of range"),
])
def test_numbers_must_be_numbers(fields: dict[str, object], reason: str) -> None:
    assert reason_of(quote(**fields)) == reason


def test_a_json_integer_is_a_number() -> None:
    ev = parse_event(quote(price=1705, low=1700, high=1710), CAT, TZ)
    assert isinstance(ev, PriceEvent) and (ev.price, ev.low, ev.high) == (1705.0, 1700.0, 1710.0)


@pytest.mark.parametrize("fields,reason", [
    ({"low": 1710, "high": 1700}, "low: 1,710 is above high 1,700"),
    ({"low": 1706, "high": 1710}, "price: 1,705 is outside its low..high range 1,706..1,710"),
    ({"low": 1690, "high": 1704.5}, "price: 1,705 is outside its low..high range 1,690..1,704.5"),
    ({"low": 1706}, "price: 1,705 is outside its low..high range 1,706.."),
    ({"high": 1700}, "price: 1,705 is outside its low..high range ..1,700"),
])
def test_low_high_must_bracket_the_price(fields: dict[str, object], reason: str) -> None:
    assert reason_of(quote(**fields)) == reason


def test_a_price_on_its_low_or_high_is_valid() -> None:
    ev = parse_event(quote(price=1705, low=1705, high=1705), CAT, TZ)
    assert isinstance(ev, PriceEvent) and ev.low == ev.high == 1705


@pytest.mark.parametrize("as_of,accepted", [
    ("2025-03-11", True),                   # today in Shanghai
    ("2025-03-12", True),                   # tomorrow: within a day of now
    ("2025-03-13", False),                  # the day after
    ("2030-01-01", False),
    ("2025-03-12T11:59:00+08:00", True),    # 23 h 59 min ahead
    ("2025-03-12T12:01:00+08:00", False),   # a day and a minute ahead
    ("2025-03-11T23:30:00-05:00", False),   # 2025-03-12 12:30 in Shanghai: ahead by more than a day
])
def test_a_quote_dated_in_the_future_is_refused(as_of: str, accepted: bool) -> None:
    obj = quote(as_of=as_of)
    if accepted:
        assert isinstance(parse_event(obj, CAT, TZ, NOW, max_future_days=1), PriceEvent)
    else:
        assert reason_of(obj, now=NOW, max_future_days=1) == (
            f"as_of: {as_of} is in the future, more than 1 day after now (2025-03-11 12:00 Asia/Shanghai); "
            "date an event when it happened (limit: ALERTS_MAX_FUTURE_DAYS)")


def test_the_future_tolerance_is_a_parameter_and_off_without_one() -> None:
    tomorrow = quote(as_of="2025-03-12")
    assert "more than 0 days after now" in reason_of(tomorrow, now=NOW, max_future_days=0)
    assert isinstance(parse_event(quote(as_of="2025-03-14"), CAT, TZ, NOW, max_future_days=3), PriceEvent)
    # rule tests replay their own time: no check unless asked
    assert isinstance(parse_event(quote(as_of="2030-01-01"), CAT, TZ, NOW), PriceEvent)


def test_the_future_is_measured_from_the_clock_without_now() -> None:
    assert "is in the future" in reason_of(quote(as_of="2999-01-01"), max_future_days=1)
    assert isinstance(parse_event(quote(as_of="2025-03-11"), CAT, TZ, max_future_days=1), PriceEvent)


def test_news_published_in_the_future_is_refused() -> None:
    item = {"type": "news", "headline": "h", "published_at": "2025-03-20T10:00:00+08:00"}
    assert reason_of(item, now=NOW, max_future_days=1).startswith(
        "published_at: 2025-03-20T10:00:00+08:00 is in the future, more than 1 day after now")
    undated = parse_event({"type": "news", "headline": "h"}, CAT, TZ, NOW, max_future_days=1)
    assert isinstance(undated, NewsEvent) and undated.published_at == NOW


FIELD_LIMITS = [  # (kind, field, limit): text fields, characters after stripping
    ("price", "id", MAX_ID), ("price", "source", MAX_SOURCE), ("price", "product", MAX_PRODUCT),
    ("price", "unit", MAX_UNIT), ("price", "as_of", MAX_TIME), ("news", "headline", MAX_HEADLINE),
    ("news", "body", MAX_BODY), ("news", "url", MAX_URL), ("news", "id", MAX_ID), ("news", "source", MAX_SOURCE),
    ("news", "published_at", MAX_TIME), ("fx", "pair", MAX_PAIR), ("fx", "id", MAX_ID), ("fx", "source", MAX_SOURCE),
    ("fx", "as_of", MAX_TIME),
]
BASES: dict[str, dict[str, object]] = {
    "news": {"type": "news", "headline": "h"},
    "fx": {"type": "fx", "pair": "USD/CNY", "rate": 7.1, "as_of": "2025-03-11"},
}


@pytest.mark.parametrize("kind,field,limit", FIELD_LIMITS)
def test_each_text_field_has_a_limit(kind: str, field: str, limit: int) -> None:
    base: dict[str, object] = quote() if kind == "price" else BASES[kind]
    reason = reason_of({**base, field: "x" * (limit + 1)})
    assert reason == f"{field}: {limit + 1:,} characters; the limit is {limit:,}"
    if field in ("id", "source", "headline", "body", "url"):  # at the limit: accepted
        parse_event({**base, field: "x" * limit}, CAT, TZ)


def test_the_issues_examples_a_huge_id_and_a_1_mb_headline() -> None:
    assert reason_of(quote(id="q" * 100_000)) == "id: 100,000 characters; the limit is 200"
    assert reason_of({"type": "news", "headline": "h" * 1_000_000}) == (
        "headline: 1,000,000 characters; the limit is 1,000")


def test_tags_are_limited_in_number_and_length() -> None:
    news = {"type": "news", "headline": "h"}
    assert reason_of({**news, "tags": ["t"] * (MAX_TAGS + 1)}) == f"tags: {MAX_TAGS + 1} items; the limit is {MAX_TAGS}"
    assert reason_of({**news, "tags": ["ok", "t" * (MAX_TAG + 1)]}) == (
        f"tags[1]: {MAX_TAG + 1} characters; the limit is {MAX_TAG}")
    assert reason_of({**news, "tags": "magnets"}) == "tags: must be an array of texts, not the text 'magnets'"
    assert reason_of({**news, "tags": [1]}) == "tags[0]: must be text (a JSON string), not the number 1"
    ok = parse_event({**news, "tags": ["t" * MAX_TAG] * MAX_TAGS}, CAT, TZ)
    assert isinstance(ok, NewsEvent) and len(ok.tags) == MAX_TAGS


def test_text_that_cannot_go_on_the_wire_is_refused() -> None:
    """From Python, a str can hold a lone surrogate; it would fail later, on the wire."""
    assert reason_of({"type": "news", "headline": "bad \ud800"}) == (
        "headline: contains characters that are not Unicode text (lone surrogates)")


@pytest.mark.parametrize("obj,reason", [
    (quote(product="Pr-Nd oxid"), "product: unknown product 'Pr-Nd oxid' (did you mean 'Pr-Nd oxide'?)"),
    (quote(product="dysprosium oxyde"),
     "product: unknown product 'dysprosium oxyde' (did you mean 'dysprosium oxide'?)"),
    (quote(product="unobtainium"), "product: unknown product 'unobtainium' (not in the catalog or a products: list)"),
    ({**quote(), "prise": 1}, "prise: unknown field (did you mean 'price'?)"),
    ({**quote(), "As_Of2": 1}, "As_Of2: unknown field (did you mean 'as_of'?)"),
    ({**quote(), "colour": "red"}, "colour: unknown field"),
    ({"type": "news", "headline": "h", "tag": ["x"]}, "tag: unknown field (did you mean 'tags'?)"),
    ({"type": "news", "headlin": "h"}, "headline: Field required; headlin: unknown field (did you mean 'headline'?)"),
    ({"type": "prices"}, "type: expected 'price', 'news', 'fx' or 'notice', got 'prices' (did you mean 'price'?)"),
    ({"type": 1}, "type: expected 'price', 'news', 'fx' or 'notice', got 1"),
    ({"product": "Dy oxide"}, 'type: Field required ("price", "news", "fx" or "notice")'),
    ([quote()], "expected a JSON object, got an array"),
])
def test_did_you_mean(obj: object, reason: str) -> None:
    assert reason_of(obj) == reason


def test_a_long_unknown_field_name_is_cut_in_the_message() -> None:
    reason = reason_of({**quote(), "k" * 10_000: 1})
    assert reason == "k" * 55 + "...: unknown field" and len(reason) < 100


# --- decoding lines: size and depth limits, one bad line never stops the rest --------------------------

GOOD = '{"type":"price","product":"Tb oxide","price":6525,"unit":"CNY/kg","as_of":"2025-03-11"}'


def decode(lines: list[str | bytes], **kwargs: int) -> tuple[list[int], list[tuple[int, str]]]:
    errors: list[tuple[int, str]] = []
    read = [n for n, _ in json_lines(lines, errors, **kwargs)]
    return read, errors


@pytest.mark.parametrize("bad,reason", [
    ("[" * 5000, f"nested more than {MAX_DEPTH} levels deep"),
    ("[" * 5000 + "]" * 5000, f"nested more than {MAX_DEPTH} levels deep"),
    ('{"a":' * 5000 + "1" + "}" * 5000, f"nested more than {MAX_DEPTH} levels deep"),
    ("[" * 100_000, f"nested more than {MAX_DEPTH} levels deep"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    ('{"type": "news", "tags": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", f"nested more than {MAX_DEPTH} levels"),
    (b"\xff\xfe{}", "not UTF-8 text: invalid start byte at byte 0"),
    (b'{"headline": "\xc3"}', "not UTF-8 text"),
    ('{"price": 1e400}', "a number is out of range"),
    ('{"price": NaN}', "not valid JSON"),
    ('{"a": "\\ud800"}', "not valid JSON"),  # a lone surrogate escape
    ("{not json", "not valid JSON"),
    ('{"a": 1} {"b": 2}', "not valid JSON: JSON is malformed: trailing characters"),
    ("\ud800", "not UTF-8 text"),  # a str line from Python
])
def test_bad_lines_are_reported_and_the_next_still_read(bad: str | bytes, reason: str) -> None:
    read, errors = decode([GOOD, bad, GOOD])
    assert read == [1, 3]
    assert len(errors) == 1 and errors[0][0] == 2 and reason in errors[0][1], errors


def test_nesting_up_to_the_limit_is_decoded() -> None:
    read, errors = decode(["[" * MAX_DEPTH + "]" * MAX_DEPTH, '{"a":' * (MAX_DEPTH - 1) + "{}" + "}" * (MAX_DEPTH - 1)])
    assert (read, errors) == ([1, 2], [])


def test_line_size_limit_in_bytes() -> None:
    at_limit = GOOD + " " * (MAX_LINE_BYTES - len(GOOD))
    read, errors = decode([at_limit + "\n", at_limit + " ", GOOD])
    assert read == [1, 3]
    assert errors == [(2, f"line longer than {MAX_LINE_BYTES:,} bytes; an event must be smaller (README: Limits)")]
    # bytes, not characters: 3-byte characters reach the limit at a third of the length
    wide = '{"type": "news", "headline": "' + "稀" * (MAX_LINE_BYTES // 3) + '"}'
    assert len(wide) < MAX_LINE_BYTES and decode([wide])[1][0][1].startswith("line longer than")


def test_blank_comment_and_bom_lines() -> None:
    read, errors = decode(["\ufeff" + GOOD, "", "   ", "# a comment", b"# \xff not text, but a comment", GOOD])
    assert (read, errors) == ([1, 6], [])


def test_read_lines_never_holds_a_huge_line(tmp_path: Path) -> None:
    f = tmp_path / "huge.jsonl"
    f.write_bytes(GOOD.encode() + b"\n" + b"x" * 5_000_000 + b"\n" + GOOD.encode() + b"\r\n" + b"y" * 1000)
    with f.open("rb") as fh:
        lines = list(read_lines(fh, max_bytes=100))
    assert [len(line) for line in lines] == [len(GOOD) + 1, 102, len(GOOD) + 2, 102]
    read, errors = decode(list(lines), max_bytes=100)
    assert read == [1, 3] and [n for n, _ in errors] == [2, 4]
    with f.open(encoding="utf-8") as text:  # a text file reads the same way
        assert [len(line) for line in read_lines(text, max_bytes=100)] == [len(GOOD) + 1, 102, len(GOOD) + 1, 102]


def test_parse_lines_reports_each_bad_line_once_in_line_order() -> None:
    future = GOOD.replace("2025-03-11", "2030-03-11")
    lines = [GOOD, "[" * 5000, GOOD.replace("6525", "true"), "", future, "not json", GOOD]
    errors: list[tuple[int, str]] = []
    events = list(parse_lines(lines, CAT, TZ, errors, now=NOW, max_future_days=1))
    assert [n for n, _ in events] == [1, 7]
    assert [n for n, _ in errors] == [2, 3, 5, 6]
    assert errors[1] == (3, "price: must be a number, not true")
    assert errors[2][1].startswith("as_of: 2030-03-11 is in the future")


def test_an_unexpected_failure_is_reported_for_its_line_only() -> None:
    class Hostile(dict[str, object]):
        def get(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("boom")

    errors: list[tuple[int, str]] = []
    items: list[tuple[int, object]] = [(1, json.loads(GOOD)), (2, Hostile()), (3, json.loads(GOOD))]
    assert [n for n, _ in parse_objects(items, CAT, TZ, errors)] == [1, 3]
    assert errors == [(2, "cannot read this event (RuntimeError: 'boom')")]


def test_limits_table_is_what_the_readme_states() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    for what, limit in LIMITS.items():
        assert f"| {what} | {limit:,} |" in readme, what


# --- any line at all: decoded, parsed or reported, never an exception ------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELD_VALUES = JSON_VALUES | st.sampled_from(["Pr-Nd oxide", "Dy oxide", "CNY/t", "yuan/kg", "USD/kg", "2025-03-11",
                                              "2030-01-01", "2025-03-11T10:00:00+08:00", "9999-12-31T23:59:59-12:00",
                                              "x" * 300, "price", "news"])
EVENTISH = st.fixed_dictionaries(
    {"type": st.sampled_from(["price", "news", "trade"])},
    optional={k: FIELD_VALUES for k in ("product", "price", "unit", "as_of", "source", "id", "low", "high", "headline",
                                         "body", "url", "published_at", "tags", "prise")},
)
ANY_LINE = (st.binary(max_size=200) | st.text(max_size=200) | JSON_VALUES.map(json.dumps)
            | EVENTISH.map(json.dumps) | st.integers(1, 3000).map(lambda n: "[" * n + "]" * (n // 2)))


@examples(max_examples=400, deadline=None)
@given(st.lists(ANY_LINE, max_size=8))
def test_any_line_is_an_event_or_reported_once(lines: list[str | bytes]) -> None:
    lines = [line.replace("\n", " ") if isinstance(line, str) else line.replace(b"\n", b" ") for line in lines]
    errors: list[tuple[int, str]] = []
    events = list(parse_lines(lines, CAT, TZ, errors, now=NOW, max_future_days=1))
    numbers = [n for n, _ in events] + [n for n, _ in errors]
    assert len(numbers) == len(set(numbers))  # no line both published and reported, or reported twice
    for n, line in enumerate(lines, 1):
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if n not in numbers:  # only blank lines and comments are neither
            assert not text.strip(" \t\r\f\v\ufeff") or text.lstrip().startswith("#"), (n, line)
    # every reason is a checked one: the safety net for the unforeseen is never used
    assert not [r for _, r in errors if r.startswith("cannot read this event")], errors
    for _, ev in events:
        assert decode_wire(encode_wire(ev)) == ev
