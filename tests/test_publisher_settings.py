"""``Publisher.from_settings``: the one way the service builds its publisher, so every way in (``alerts publish``,
``alerts import``, ``alerts ingest article``, the Python API, the poller, the demo feed) honours the same settings,
ALERTS_REDIS_MIN_REPLICAS among them: on a Redis without replicas, each refuses to call events accepted."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from alerts.catalog import builtin_catalog
from alerts.errors import NotReplicatedError
from alerts.settings import Settings
from alerts.store.publish import Publisher, publish_events
from tests.conftest import env_for
from tests.servers import write_rules
from workers.cli import serve
from workers.roles.poller import make_publisher

ROOT = Path(__file__).resolve().parent.parent
#: Files that may build a Publisher by hand: the class's own module, and (until it moves to from_settings) the
#: HTTP app, which another change owns.
BY_HAND = {"alerts/store/publish.py"}


def test_from_settings_takes_every_setting(client: redis.Redis, settings: Settings) -> None:
    s = settings.model_copy(update={"timezone": "Europe/London", "stream_shards": 3, "key_prefix": "elsewhere",
                                    "max_future_days": 2.5, "fx_max_age_days": 30.0, "redis_min_replicas": 2,
                                    "redis_wait_timeout_ms": 250})
    catalog = builtin_catalog()
    pub = Publisher.from_settings(client, s, catalog, via="http")
    assert (pub.tz, pub.shards, pub.keys.prefix, pub.max_future_days, pub.fx_max_age_days, pub.min_replicas,
            pub.wait_timeout_ms, pub.via) == ("Europe/London", 3, "elsewhere", 2.5, 30.0, 2, 250, "http")
    assert pub.catalog is catalog
    default = Publisher.from_settings(client, s)  # the products of ALERTS_RULES_DIR
    assert default.via == "publish" and default.catalog.find("Pr-Nd oxide") is not None


def test_no_production_code_builds_a_publisher_by_hand() -> None:
    found = []
    for folder in ("alerts", "workers", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in BY_HAND and re.search(r"(?<![\w.])Publisher\(", path.read_text("utf-8")):
                found.append(rel)
    assert found == [], f"build these with Publisher.from_settings: {found}"


@pytest.fixture
def unreplicated(settings: Settings, rules_dir: Path) -> Settings:
    """A Redis without replicas, and settings that ask for one."""
    write_rules(rules_dir, "rules:\n  - id: prnd\n    price: {product: Pr-Nd oxide, above: 450000 CNY/t}\n"
                           "    notify: [console]\n")
    return settings.model_copy(update={"redis_min_replicas": 1, "redis_wait_timeout_ms": 20})


NEWS = {"type": "news", "id": "n1", "headline": "Export licences granted", "source": "smm"}


def test_the_python_api_and_the_poller_honour_min_replicas(client: redis.Redis, unreplicated: Settings) -> None:
    with pytest.raises(NotReplicatedError) as caught:
        publish_events([NEWS], unreplicated)
    assert "acknowledged by 0 replicas, not the 1 ALERTS_REDIS_MIN_REPLICAS asks for" in str(caught.value)
    assert make_publisher(client, unreplicated).min_replicas == 1


def test_the_demo_feed_stops_with_one_line_when_not_replicated(client: redis.Redis, unreplicated: Settings,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="workers.cli.serve"):
        serve._publish_demo(client, unreplicated)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("demo: feed line 1 not published, the demo feed stops: not "
                                                     "replicated"), errors


@pytest.mark.parametrize("argv", [["publish", "FEED"], ["ingest", "article", "ARTICLE"]], ids=" ".join)
def test_the_commands_honour_min_replicas(unreplicated: Settings, tmp_path: Path, argv: list[str]) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"type": "news", "id": "a", "headline": "Export licences"}\n')
    article = tmp_path / "article.txt"
    article.write_text("Rare earth prices\n\nPr-Nd oxide was quoted at 444,000 yuan/mt on 2025-02-28.\n")
    files = {"FEED": str(feed), "ARTICLE": str(article)}
    out = subprocess.run([sys.executable, "-m", "workers.cli", *[files.get(a, a) for a in argv]],
                         env=env_for(unreplicated, ALERTS_REDIS_MIN_REPLICAS="1", ALERTS_REDIS_WAIT_TIMEOUT_MS="20"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "alerts: not replicated: " in out.stderr and "ALERTS_REDIS_MIN_REPLICAS" in out.stderr
