"""`alerts publish` and the Python API: valid lines go out, each bad line is named, nothing valid is lost."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from alerts.catalog import builtin_catalog
from alerts.errors import ConfigError
from alerts.events.batch import MAX_PROBLEMS
from alerts.settings import Settings
from alerts.store.publish import Publisher
from tests.conftest import env_for
from tests.streams import stream_entries

GOOD = ('{"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", "as_of": "2025-03-11", '
        '"source": "smm"}')
NEWS = '{"type": "news", "headline": "Large magnet makers obtain export licences", "source": "smm"}'


def stream_total(client: redis.Redis, shards: int) -> int:
    return sum(client.xlen(f"alerts:events:{s}") for s in range(shards))


def test_cli_reports_bad_lines_and_publishes_the_rest(client: redis.Redis, settings: Settings,
                                                      tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    f.write_text("\n".join([
        GOOD,
        "",
        '{"type": "price", "product": "unobtainium", "price": 1, "unit": "CNY/t", "as_of": "2025-03-11"}',
        "{not json",
        NEWS,
        '{"type": "price", "product": "Dy oxide", "price": 1705, "unit": "USD/kg", "as_of": "2025-03-11"}',
    ]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert errors[0] == f"{f}:3: product: unknown product 'unobtainium' (not in the catalog or a products: list)"
    assert errors[1].startswith(f"{f}:4: not valid JSON")
    assert errors[2].startswith(f"{f}:6: unit: 1,705 USD/kg is in USD but dysprosium oxide is quoted in CNY/kg, "
                                "and no USD/CNY rate is known at or before 2025-03-11; publish an fx event")
    assert len(errors) == 3
    assert "published 2 events" in proc.stdout
    assert stream_total(client, settings.stream_shards) == 2


def test_cli_reads_stdin(client: redis.Redis, settings: Settings) -> None:
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], env=env_for(settings),
                          input=GOOD + "\n" + NEWS + "\n", capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert stream_total(client, settings.stream_shards) == 2


def test_python_api(client: redis.Redis) -> None:
    pub = Publisher(client, builtin_catalog(), "Asia/Shanghai", shards=8)
    report = pub.publish(json.loads(GOOD), {"type": "price"}, json.loads(NEWS))
    assert report.published == 2
    assert [n for n, _ in report.errors] == [2]
    # one product always goes to one shard, with the event id and publish time fixed on the wire
    pub.publish(json.loads(GOOD))
    shards = [s for s in range(8) if client.xlen(f"alerts:events:{s}")]
    news_shard = [s for s in shards if b"news" in stream_entries(client, f"alerts:events:{s}")[0][1][b"w"]]
    price_entries = [e for s in shards for _, e in stream_entries(client, f"alerts:events:{s}") if b"price" in e[b"w"]]
    assert len(price_entries) == 2 and len({json.loads(e[b"w"])["id"] for e in price_entries}) == 1
    news_entry = json.loads(stream_entries(client, f"alerts:events:{news_shard[0]}")[0][1][b"w"])
    assert news_entry["published_at"] and news_entry["id"].startswith("n-")


def test_module_functions_use_the_settings(client: redis.Redis, settings: Settings) -> None:
    from alerts.publish import publish_events, publish_lines  # the documented Python API

    report = publish_lines([GOOD, "{broken", NEWS], settings)
    assert (report.published, [n for n, _ in report.errors]) == (2, [2])
    assert publish_events([json.loads(GOOD)], settings).published == 1
    assert stream_total(client, settings.stream_shards) == 3


# --- a file of garbage among valid lines (issue 8): exactly the valid ones go out, each bad line is named once --

PRODUCTS = ["Pr-Nd oxide", "Dy oxide", "Tb oxide", "PrNd metal", "dysprosium oxide"]
#: Each product's level in CNY/t: valid quotes stay within 5% of it, so the quote sanity check lets them through.
LEVELS = {"Pr-Nd oxide": 440_000, "Dy oxide": 1_700_000, "Tb oxide": 7_000_000, "PrNd metal": 540_000,
          "dysprosium oxide": 1_700_000}


def valid_line(rng: random.Random, i: int) -> bytes:
    if i % 5 == 4:
        obj: dict[str, object] = {"type": "news", "id": f"ok-{i}", "headline": f"Export licences, item {i}",
                                  "published_at": "2025-05-29T10:00:00+08:00", "tags": ["magnets"]}
    else:
        product = rng.choice(PRODUCTS)
        price = round(LEVELS[product] * rng.uniform(0.95, 1.05))
        obj = {"type": "price", "id": f"ok-{i}", "product": product, "price": price,
               "low": price - 10, "high": price + 10, "unit": "CNY/t" if rng.random() < 0.5 else "yuan/mt",
               "as_of": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "source": "feed"}
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()


def garbage_line(rng: random.Random, i: int, good: bytes) -> bytes:
    """One line that is not a valid event, of one of many kinds; never blank, never a # comment."""
    event = json.loads(good)
    kind = i % 24
    if kind == 0:  # random bytes
        return bytes([rng.choice(b"~!x{[")]) + rng.randbytes(rng.randint(0, 300)).replace(b"\n", b" ")
    if kind == 1:
        return b"[" * rng.choice([1_000, 5_000, 100_000])
    if kind == 2:
        return b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    if kind == 3 and i < 200:  # a few huge lines, beyond the line limit
        return b'{"type": "news", "headline": "' + b"h" * 3_000_000 + b'"}'
    if kind == 4:
        return json.dumps({**event, "price": True} if event["type"] == "price" else {**event, "headline": 5}).encode()
    if kind == 5:
        return json.dumps({**event, "price": str(event.get("price", "1"))}).encode()
    if kind == 6:
        return json.dumps({**event, "id": "x" * 100_000}).encode()
    if kind == 7 and i < 100:
        return json.dumps({"type": "news", "headline": "h" * 1_000_000}).encode()
    if kind == 8:
        return json.dumps({**event, "prise": 1}).encode()
    if kind == 9:
        return json.dumps({"type": "price", "product": "Pr-Nd oxid", "price": 1, "unit": "CNY/t",
                           "as_of": "2025-03-11"}).encode()
    if kind == 10:
        return json.dumps({"type": "price", "product": "Dy oxide", "price": 5, "low": 9, "high": 1, "unit": "CNY/kg",
                           "as_of": "2025-03-11"}).encode()
    if kind == 11:
        return json.dumps({"type": "price", "product": "Dy oxide", "price": 5, "unit": "CNY/kg",
                           "as_of": "2030-03-11"}).encode()
    if kind == 12:
        return json.dumps({"type": "news", "headline": "h", "published_at": "2031-01-01T00:00:00+00:00"}).encode()
    if kind == 13:
        return good[: rng.randint(1, len(good) - 1)].rstrip() or b"{"  # truncated
    if kind == 14:
        return good.replace(b'"type"', b'"type\xff"', 1)  # not UTF-8
    if kind == 15:
        return rng.choice([b"1", b'"text"', b"[]", b"null", b"true", b"[" + good + b"]"])
    if kind == 16:
        return good.replace(b"}", b', "x": NaN}', 1)
    if kind == 17:
        return good.replace(b"}", b', "price": 1e400}', 1)
    if kind == 18:
        return b'{"type": "news", "headline": "\\ud800"}'
    if kind == 19:
        return json.dumps({**event, "type": rng.choice(["trade", "Price", None, 7])}).encode()
    if kind == 20:
        return json.dumps({k: v for k, v in event.items() if k != "type"}).encode()
    if kind == 21:
        return json.dumps({"type": "news", "headline": "h", "tags": ["t"] * 51}).encode()
    if kind == 22:
        return json.dumps({**event, "as_of": 20250311} if event["type"] == "price" else {**event, "url": 1}).encode()
    return good + b" " + good  # two events on one line


def garbage_file(path: Path, seed: int = 8) -> tuple[set[str], set[int]]:
    """1,000 bad lines among 500 valid ones (and blank and comment lines): (valid ids, bad line numbers)."""
    rng = random.Random(seed)
    good = [valid_line(rng, i) for i in range(500)]
    bad = [garbage_line(rng, i, rng.choice(good)) for i in range(1_000)]
    lines = [(b"ok", g) for g in good] + [(b"bad", b) for b in bad] + [(b"skip", b""), (b"skip", b"# note"),
                                                                         (b"skip", b"   \t")]
    rng.shuffle(lines)
    path.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
    ids = {json.loads(line)["id"] for kind, line in lines if kind == b"ok"}
    return ids, {n for n, (kind, _) in enumerate(lines, 1) if kind == b"bad"}


def reported_lines(stderr: str, name: Path) -> list[int]:
    numbers = []
    for line in stderr.splitlines():
        if re.fullmatch(rf"{re.escape(str(name))}: [\d,]+ more invalid lines not shown \(the first \d+ are\)", line):
            continue  # alerts publish: the count of the problems after the first MAX_PROBLEMS
        m = re.match(rf"{re.escape(str(name))}:(\d+): \S", line)
        assert m, f"not a FILE:LINE: report: {line[:200]!r}"
        numbers.append(int(m.group(1)))
    return numbers


def test_a_thousand_garbage_lines_cost_only_themselves(client: redis.Redis, settings: Settings,
                                                       tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    valid_ids, bad_lines = garbage_file(f)
    assert len(valid_ids) == 500 and len(bad_lines) == 1_000
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)], env=env_for(settings),
                          capture_output=True, text=True, check=False, timeout=120)
    assert "Traceback" not in proc.stderr and "cannot read this event" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 1
    numbers = reported_lines(proc.stderr, f)
    assert numbers == sorted(bad_lines)[:MAX_PROBLEMS]  # the first bad lines once, in order, nothing else
    assert f"{f}: {1_000 - MAX_PROBLEMS} more invalid lines not shown (the first {MAX_PROBLEMS} are)" in proc.stderr
    assert proc.stdout == "published 500 events, 1000 invalid lines\n"
    published = {json.loads(e[b"w"])["id"] for s in range(settings.stream_shards)
                  for _, e in stream_entries(client, f"alerts:events:{s}")}
    assert published == valid_ids
    assert stream_total(client, settings.stream_shards) == 500
    assert max(len(line) for line in proc.stderr.splitlines()) < 1_000  # no line echoes its garbage


def test_backtest_reads_the_same_garbage_file_the_same_way(settings: Settings, tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    _valid, bad_lines = garbage_file(f, seed=9)
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "backtest", "--events", str(f)],
                          env=env_for(settings), capture_output=True, text=True, check=False, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0
    assert reported_lines(proc.stderr, f) == sorted(bad_lines)
    assert "0 alerts from 500 events" in proc.stdout


def test_a_quote_dated_in_the_future_is_refused_by_publish(client: redis.Redis, settings: Settings,
                                                          tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    future = GOOD.replace("2025-03-11", "2030-03-11")
    f.write_text("\n".join([GOOD, future, NEWS.replace('"source"', '"published_at": "2031-01-01", "source"')]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"{re.escape(str(f))}:2: as_of: 2030-03-11 is in the future, more than 1 day after now "
                        r"\(\d{4}-\d\d-\d\d \d\d:\d\d Asia/Shanghai\); date an event when it happened "
                        r"\(limit: ALERTS_MAX_FUTURE_DAYS\)", lines[0]), lines[0]
    assert lines[1].startswith(f"{f}:3: published_at: 2031-01-01 is in the future")
    assert stream_total(client, settings.stream_shards) == 1
    # the tolerance is the setting: 20 years ahead lets both through
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(f)], capture_output=True, text=True,
                          env=env_for(settings, ALERTS_MAX_FUTURE_DAYS="7300"), check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert stream_total(client, settings.stream_shards) == 4


def test_the_python_api_refuses_the_future_too(client: redis.Redis, settings: Settings) -> None:
    from alerts.publish import publish_events

    report = publish_events([{**json.loads(GOOD), "as_of": "2999-01-01"}, json.loads(GOOD)], settings)
    assert report.published == 1 and [n for n, _ in report.errors] == [1]
    assert "is in the future" in report.errors[0][1]


def test_the_python_api_reads_settings_with_clear_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from alerts.publish import publish_lines

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALERTS_STREAM_SHARDS", "many")
    with pytest.raises(ConfigError, match=r"^ALERTS_STREAM_SHARDS='many': must be a whole number$"):
        publish_lines([GOOD])


BLANK_OR_COMMENT = re.compile(rb"^[ \t\r\n\x0b\x0c]*(#.*)?$", re.DOTALL)


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=120) | st.text(max_size=120).map(str.encode) | st.sampled_from(
    [GOOD.encode(), NEWS.encode(), b"[" * 3000, GOOD.replace("444000", "true").encode(), b"# c", b""]), max_size=12))
def test_any_lines_are_published_or_reported(client: redis.Redis, lines: list[bytes]) -> None:
    lines = [line.replace(b"\n", b" ") for line in lines]
    pub = Publisher(client, builtin_catalog(), "Asia/Shanghai", shards=2)
    before = stream_total(client, 2)
    report = pub.publish_lines(lines)
    reported = [n for n, _ in report.errors]
    assert reported == sorted(set(reported))
    skipped = [n for n, line in enumerate(lines, 1)  # a byte order mark is one only at the start of the file
               if BLANK_OR_COMMENT.match(line.removeprefix(b"\xef\xbb\xbf") if n == 1 else line)]
    assert set(skipped).isdisjoint(reported)
    assert report.published + len(reported) + len(skipped) == len(lines)
    assert stream_total(client, 2) - before == report.published
