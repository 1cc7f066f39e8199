"""Redis full: a real redis-server with a small ``maxmemory`` and ``noeviction`` refuses writes (``OOM command not
allowed``). The publisher raises RedisOutOfMemory saying exactly which lines were stored (read from each reply of
the pipelined batch), ``alerts publish`` exits 4 with one line, ``alerts status`` fails naming used/maxmemory, and
a live process whose heartbeat Redis refused is "unknown (Redis full)", never dead; its heartbeat logs it once."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from pydantic import SecretStr

from alerts.errors import RedisOutOfMemory
from alerts.events import decode_wire
from alerts.settings import Settings
from alerts.store import heartbeats
from alerts.store.keys import Keys
from alerts.store.memory import is_oom, read_memory
from alerts.store.publish import PUBLISH_BATCH, Publisher, PublishReport, format_runs
from alerts.store.streams import WIRE_FIELD
from tests.conftest import env_for
from tests.servers import RedisServer, wait_for, write_rules
from workers.cli.status import collect, render
from workers.roles.heartbeat import Heartbeat

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [console]
"""


@pytest.fixture(scope="module")
def small_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    with redis.Redis.from_url(server.url) as c:
        c.config_set("maxmemory-policy", "noeviction")
    yield server
    server.stop()


@pytest.fixture
def full(small_redis: RedisServer) -> Iterator[redis.Redis]:
    """A client of the small server, emptied and without a limit; ``fill`` sets one."""
    c = redis.Redis.from_url(small_redis.url)
    c.config_set("maxmemory", 0)
    c.flushall()
    yield c
    c.config_set("maxmemory", 0)
    c.close()


@pytest.fixture
def small_settings(settings: Settings, small_redis: RedisServer) -> Settings:
    return settings.model_copy(update={"redis_url": SecretStr(small_redis.url)})


def leave_room(client: redis.Redis, room: int) -> None:
    """maxmemory set ``room`` bytes above what Redis uses now (negative: below, so writes are refused now)."""
    client.config_set("maxmemory", max(1, int(client.info("memory")["used_memory"]) + room))


def news_lines(n: int) -> list[str]:
    """``n`` lines: news events numbered by their line, with a blank line, a comment and invalid lines among them."""
    out = []
    for line in range(1, n + 1):
        if line % 97 == 0:
            out.append("{not json")
        elif line % 101 == 0:
            out.append("")
        elif line == 5:
            out.append("# a comment")
        else:
            out.append(json.dumps({"type": "news", "id": f"n{line}", "headline": f"Export licences, line {line}",
                                   "source": "smm", "body": "rare earth magnets " * 4}))
    return out


def stored_lines(client: redis.Redis, shards: int) -> set[int]:
    """The line of every event stored on the event streams (its id is n{line})."""
    found = set()
    for shard in range(shards):
        for _id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(Keys().events(shard))):
            ev = decode_wire(fields[WIRE_FIELD.encode()])
            found.add(int(str(getattr(ev, "id", "")).removeprefix("n")))
    return found


def expand(runs: list[tuple[int, int]], events: set[int]) -> set[int]:
    return {line for a, b in runs for line in range(a, b + 1) if line in events}


@pytest.mark.parametrize("room", [120_000, 450_000], ids=["refused-in-the-first-batch", "refused-in-a-later-batch"])
def test_a_partly_refused_publish_reports_exactly_the_lines_stored(full: redis.Redis, small_settings: Settings,
                                                                   room: int) -> None:
    pub = Publisher.from_settings(full, small_settings)  # checks the shard count first: a write
    lines = news_lines(3 * PUBLISH_BATCH)
    events = {n for n, text in enumerate(lines, 1) if text.startswith('{"type"')}
    leave_room(full, room)
    with pytest.raises(RedisOutOfMemory) as caught:
        pub.publish_lines(lines)
    report = caught.value.report
    assert isinstance(report, PublishReport)
    in_redis = stored_lines(full, small_settings.stream_shards)
    assert 0 < len(in_redis) < len(events)
    assert report.published == len(in_redis)
    assert expand(report.stored, events) == in_redis  # exactly the lines stored, read from each reply
    assert report.refused and not expand(report.refused, events) & in_redis
    assert report.unread_after is not None and report.unread_after < len(lines)
    sent = expand(report.stored, events) | expand(report.refused, events)
    assert sent == {n for n in events if n <= report.unread_after}  # every line read was sent, none after
    assert len(sent) % PUBLISH_BATCH == 0  # publishing stopped at the batch Redis refused
    mem = read_memory(full)
    assert mem is not None and mem.maxmemory > 0
    text = str(caught.value)
    assert re.match(rf"Redis is out of memory \(used [0-9.]+[KMG]? of maxmemory {re.escape(mem.maxmemory_human)}, "
                    r"maxmemory-policy noeviction; it answered 'OOM command not allowed'\): ", text), text
    # one run, or several when Redis took a later entry of the refused batch again (its memory moves a little)
    assert f"stored: {format_runs(report.stored)} ({report.published:,} events)" in text, text
    assert f"and every line after line {report.unread_after} (not read)" in text
    assert "\n" not in text
    if room < 200_000:
        assert len(sent) == PUBLISH_BATCH  # the first batch stored some of its entries before Redis filled up
    # the invalid lines read were reported, numbered, in order
    assert [n for n, _ in report.errors] == [n for n in range(97, report.unread_after + 1, 97)]


def test_a_publish_refused_from_its_first_line(full: redis.Redis, small_settings: Settings) -> None:
    pub = Publisher.from_settings(full, small_settings)
    leave_room(full, -10_000)
    with pytest.raises(RedisOutOfMemory) as caught:
        pub.publish({"type": "news", "id": "a", "headline": "Export licences"}, {"type": "price"})
    report = caught.value.report
    assert isinstance(report, PublishReport)
    assert (report.published, report.stored, report.refused, report.unread_after) == (0, [], [(1, 1)], None)
    assert "stored: no lines (0 events); not stored: lines 1;" in str(caught.value)
    assert report.errors and report.errors[0][0] == 2


def test_the_first_publisher_on_a_full_redis(full: redis.Redis, small_settings: Settings) -> None:
    leave_room(full, -1_000)  # not even the shard count can be recorded
    with pytest.raises(RedisOutOfMemory) as caught:
        Publisher.from_settings(full, small_settings)
    assert str(caught.value).startswith("Redis is out of memory (used ") and "nothing was stored" in str(caught.value)
    full.config_set("maxmemory", 0)
    Publisher.from_settings(full, small_settings)  # the shard count recorded
    leave_room(full, -1_000)
    Publisher.from_settings(full, small_settings)  # and only read by the next one


def test_alerts_publish_says_in_one_line_what_was_stored_and_exits_4(full: redis.Redis, small_settings: Settings,
                                                                     rules_dir: Path, tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(news_lines(2 * PUBLISH_BATCH)) + "\n")
    Publisher.from_settings(full, small_settings)  # the shard count recorded while there is room
    leave_room(full, 150_000)
    out = subprocess.run([sys.executable, "-m", "workers.cli", "publish", str(feed)], env=env_for(small_settings),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 4, out.stderr
    assert "Traceback" not in out.stderr
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("alerts:")]
    stored = stored_lines(full, small_settings.stream_shards)
    assert line.startswith("alerts: Redis is out of memory (used ") and "of maxmemory" in line, line
    assert f"stored: lines 1-{max(stored)} ({len(stored):,} events)" in line, line
    unread = re.search(r"and every line after line (\d+) \(not read\)", line)
    assert unread, line
    assert out.stdout.strip() == f"published {len(stored)} events, {int(unread[1]) // 97} invalid lines"
    assert "not stored: lines " in line


def test_alerts_ingest_article_exits_4_with_one_line(full: redis.Redis, small_settings: Settings, rules_dir: Path,
                                                     tmp_path: Path) -> None:
    write_rules(rules_dir, RULES)
    article = tmp_path / "article.txt"
    article.write_text("Rare earth prices\n\nPr-Nd oxide was quoted at 444,000 yuan/mt on 2025-02-28.\n")
    Publisher.from_settings(full, small_settings)
    leave_room(full, -1_000)
    out = subprocess.run([sys.executable, "-m", "workers.cli", "ingest", "article", str(article)],
                         env=env_for(small_settings), capture_output=True, text=True, timeout=60)
    assert out.returncode == 4 and "Traceback" not in out.stderr, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith("alerts: Redis is out of memory (used ") and "stored: no lines (0 events)" in line, line
    assert line.endswith("(line 1: the article, line N+1: its quote N)")


@pytest.mark.parametrize("command", [["publish"], ["ingest", "article"]], ids=" ".join)
def test_the_help_documents_exit_4(command: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "workers.cli", *command, "--help"], capture_output=True, text=True,
                         timeout=60)
    assert "4 Redis is out of memory" in " ".join(out.stdout.split())


def test_status_fails_naming_used_and_maxmemory(full: redis.Redis, small_settings: Settings,
                                               rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    heartbeats.beat(full, Keys(), "h:1", host="h", pid=1, roles=["evaluate"], started=time.time(), doing={})
    leave_room(full, 1_000_000)
    st = collect(full, small_settings)
    assert st.healthy, render(st)
    assert "of maxmemory" in render(st) and "nearly" not in render(st)
    leave_room(full, 20_000)  # more than 90% used
    st = collect(full, small_settings)
    assert st.healthy and "WARN  redis       Redis nearly out of memory: used " in render(st), render(st)
    leave_room(full, -1_000)
    mem = read_memory(full)
    assert mem is not None
    st = collect(full, small_settings)
    text = render(st)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("FAIL  redis")]
    assert re.match(rf"FAIL  redis       Redis out of memory: used [0-9.]+[KMG]? of maxmemory "
                    rf"{re.escape(mem.maxmemory_human)} \(maxmemory-policy noeviction\): writes are refused",
                    line), line
    assert not st.healthy and st.exit_status == 1 and st.data["redis"]["out_of_memory"] is True


def test_a_live_process_whose_heartbeat_redis_refused_is_unknown_not_dead(full: redis.Redis,
                                                                          small_settings: Settings,
                                                                          rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"],
                            env=env_for(small_settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(p.pid == proc.pid for p in heartbeats.processes(full, Keys())), 30, "the heartbeat")
        leave_room(full, -1_000)
        later = time.time() + heartbeats.DEAD_AFTER_SECONDS + 5  # its beats since were refused
        st = collect(full, small_settings, now=later)
        text = render(st)
        (line,) = [ln for ln in text.splitlines() if f"pid {proc.pid}" in ln]
        assert line.startswith(f"WARN  processes   {heartbeats.processes(full, Keys())[0].host} pid {proc.pid} "
                               "(evaluate): unknown (Redis full): last heartbeat "), text
        assert "could not be written because Redis is out of memory" in line
        assert "dead" not in text, text
        assert st.data["processes"][0]["state"] == "unknown (Redis full)"
        full.config_set("maxmemory", 0)
        st = collect(full, small_settings, now=later)
        assert any(f"pid {proc.pid} (evaluate) is dead" in ln for ln in render(st).splitlines())  # room again
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


def test_the_heartbeat_logs_a_refused_beat_once_and_its_end(full: redis.Redis,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    beat = Heartbeat(full, Keys(), {"evaluate": lambda: "shards 0"}, interval=0.01)
    leave_room(full, -1_000)
    stop = threading.Event()
    thread = threading.Thread(target=beat.run, args=(stop,))
    with caplog.at_level(logging.WARNING, logger="workers.roles.heartbeat"):
        thread.start()
        wait_for(lambda: beat.refused, 10, "a refused beat")
        time.sleep(0.2)  # about 20 beats, all refused
        full.config_set("maxmemory", 0)
        wait_for(lambda: not beat.refused, 10, "a beat written again")
        stop.set()
        thread.join(10)
    logged = [r.getMessage() for r in caplog.records if r.name == "workers.roles.heartbeat"]
    assert len(logged) == 2, logged
    assert "not written: Redis is out of memory (used " in logged[0] and "of maxmemory" in logged[0]
    assert "unknown (Redis full)" in logged[0]
    assert logged[1].endswith("written again: Redis has room")


def test_is_oom_tells_the_refusal_from_other_errors(full: redis.Redis) -> None:
    leave_room(full, -1_000)
    with pytest.raises(redis.ResponseError) as caught:
        full.set("k", "v")
    assert is_oom(caught.value)
    full.config_set("maxmemory", 0)
    with pytest.raises(redis.ResponseError) as other:
        full.execute_command("XADD", "s", "nope", "f", "v")
    assert not is_oom(other.value) and not is_oom(ValueError("OOM"))
