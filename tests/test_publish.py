"""`alerts publish` and the Python API: valid lines go out, each bad line is named, nothing valid is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

from alerts.catalog import builtin_catalog
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
    assert errors[2].startswith(f"{f}:6: unit: cannot convert USD/kg to CNY/kg")
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
