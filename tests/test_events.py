from datetime import datetime

import pytest

from alerts.catalog import builtin_catalog
from alerts.errors import EventError
from alerts.events import NewsEvent, PriceEvent, parse_line

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
    ('{"type":"trade"}', "type: expected 'price' or 'news'"),
    ('{"type":"price","product":"unobtainium","price":1,"unit":"CNY/t","as_of":"2025-03-11"}', "unknown product"),
    ('{"type":"price","product":"Dy oxide","price":1,"unit":"USD/kg","as_of":"2025-03-11"}', "different currencies"),
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
    ('{"type":"price","product":"Dy oxide","price":5,"unit":"CNY/kg","as_of":20250311}', "as_of: Input should be"),
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
