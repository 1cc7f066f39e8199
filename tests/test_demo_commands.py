"""After `alerts run --demo`: the README's next commands read the demo's data with --demo (it keeps its
own key prefix and queue, `{prefix}-demo`), and without it they read the real data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from alerts.settings import Settings
from tests.conftest import env_for
from tests.pipeline import Pipeline, quote
from tests.servers import write_rules
from workers.cli.common import demo_settings

RULES = """
digests:
  - {name: desk-daily, schedule: "0 8 * * 1-5", to: [desk@example.com]}
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [digest:desk-daily]
"""


def alerts(settings: Settings, *argv: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "workers.cli", *argv], env=env_for(settings),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_readme_commands_read_the_demo_with_demo(client: redis.Redis, settings: Settings,
                                                     rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    demo = demo_settings(settings)
    assert (demo.key_prefix, demo.queue_name) == (f"{settings.key_prefix}-demo", f"{settings.queue_name}-demo")
    Pipeline(client, demo).run(quote(447_000, "2025-02-24"), quote(452_000, "2025-02-25"))  # what the demo did

    assert "1 alerts from 2 events" in alerts(settings, "backtest", "--demo")
    assert "0 alerts from 0 events" in alerts(settings, "backtest")
    assert "last quote 452,000 CNY/t on 2025-02-25" in alerts(settings, "rules", "explain", "prnd-450k", "--demo")
    assert "no quote seen yet" in alerts(settings, "rules", "explain", "prnd-450k")
    assert "1 alerts since the last digest" in alerts(settings, "digest", "preview", "desk-daily", "--demo")
    assert "0 alerts since the last digest" in alerts(settings, "digest", "preview", "desk-daily")
