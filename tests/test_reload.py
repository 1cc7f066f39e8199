"""Hot reload: edits take effect within seconds, a broken edit keeps the last good rules, and state
of unchanged rules survives."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis

from alerts.rules.reload import RuleHolder
from alerts.settings import Settings
from tests.pipeline import Pipeline, quote
from tests.servers import wait_for, write_rules

RULES = """
rules:
  - id: unchanged-440k
    price: {product: Pr-Nd oxide, above: 440000}
    notify: [console]
  - id: edited
    price: {product: Pr-Nd oxide, above: THRESHOLD}
    notify: [console]
"""


def test_broken_edit_keeps_the_last_good_rules(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_rules(rules_dir, RULES.replace("THRESHOLD", "460000"))
    holder = RuleHolder(rules_dir, "Asia/Shanghai")
    first = holder.current()
    assert holder.check() is False  # nothing changed
    path.write_text(RULES.replace("THRESHOLD", "460000").replace("above: 440000", "abve: 440000"))
    assert holder.check() is False
    assert holder.current() is first
    err = capsys.readouterr().err
    assert "not reloaded" in err and f"{path}:4: unchanged-440k: unknown key 'abve'" in err
    path.write_text(RULES.replace("THRESHOLD", "450000"))
    assert holder.check() is True
    assert holder.current().by_id["edited"][0].threshold == 450_000  # type: ignore[union-attr]


def test_live_reload_within_seconds_keeps_state_of_unchanged_rules(client: redis.Redis, settings: Settings,
                                                                   rules_dir: Path) -> None:
    path = write_rules(rules_dir, RULES.replace("THRESHOLD", "460000"))
    holder = RuleHolder(rules_dir, settings.timezone)
    p = Pipeline(client, settings)
    p.evaluator.current_rules = holder.current
    stop = threading.Event()
    watcher = threading.Thread(target=holder.watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        assert [a.rule_id for a in p.run(quote(452_000, "2025-02-25"))] == ["unchanged-440k"]
        path.write_text(RULES.replace("THRESHOLD", "450000"))
        wait_for(lambda: holder.current().by_id["edited"][0].threshold == 450_000,  # type: ignore[union-attr]
                 5, "the edit to take effect", interval=0.05)
        # the changed rule starts armed and fires; the unchanged one stays disarmed: no second alert
        assert [a.rule_id for a in p.run(quote(453_000, "2025-02-26"))] == ["edited"]
    finally:
        stop.set()
        watcher.join(5)


def test_an_old_problem_does_not_block_later_edits(rules_dir: Path) -> None:
    write_rules(rules_dir, "rules:\n  - id: broken\n    price: {product: nope, above: 1}\n    notify: [console]\n",
                "b.yaml")
    a = write_rules(rules_dir, RULES.replace("THRESHOLD", "450000"), "a.yaml")
    holder = RuleHolder(rules_dir, "Asia/Shanghai")
    assert len(holder.current().errors) == 1
    a.write_text(RULES.replace("THRESHOLD", "460000"))
    assert holder.check() is True
    assert holder.current().by_id["edited"][0].threshold == 460_000  # type: ignore[union-attr]
