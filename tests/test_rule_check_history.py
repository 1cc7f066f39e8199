"""`alerts rules check` compares thresholds with the stored quote history without a running service
(a copy of the private redis-server's data, read by a throwaway server), and with the catalog's
typical prices when there is no history (workers/cli.py ``_history_stats``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _check_env(rules_dir: Path, data_dir: Path, tmp: Path) -> dict[str, str]:
    """The environment of `alerts rules check` without ALERTS_REDIS_URL: the private data dir only."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTS_")}
    env.update({"ALERTS_RULES_DIR": str(rules_dir), "ALERTS_DATA_DIR": str(data_dir), "TMPDIR": str(tmp)})
    return env


def _tree(d: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.rglob("*"))
            if p.is_file()}


SLIP_RULES = """rules:
  - id: unit-slip
    price: {product: Pr-Nd oxide, above: 450}
    notify: [console]
  - id: dy-slip
    price: {product: Dy oxide, above: "1,700,000"}
    notify: [console]
  - id: fine
    price: {product: Pr-Nd oxide, above: 450000}
    notify: [console]
"""


def test_unit_slip_from_stored_history_with_no_service_running(tmp_path: Path, rules_dir: Path) -> None:
    """History written by a real evaluator through the private redis-server of a data dir, the server
    stopped; `rules check` reads it from a copy, changes nothing in the data dir, leaves nothing running."""
    from alerts.settings import Settings
    from alerts.store.server import PrivateRedis, redis_for
    from tests.pipeline import Pipeline, quote

    (rules_dir / "r.yaml").write_text(SLIP_RULES)
    data = tmp_path / "d"
    settings = Settings(_env_file=None, rules_dir=rules_dir, data_dir=data)  # type: ignore[call-arg]
    with redis_for(settings) as client:
        p = Pipeline(client, settings)
        p.publish(quote(444_000, "2025-03-10"), quote(445_000, "2025-03-11"), quote(447_000, "2025-03-12"))
        p.evaluate()
    assert not PrivateRedis(data).running()
    before = _tree(data)
    scratch = tmp_path / "t"
    scratch.mkdir()
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check"],
                          env=_check_env(rules_dir, data, scratch), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = rules_dir / "r.yaml"
    assert proc.stdout.splitlines() == [
        f"{path}:2: unit-slip: warning: threshold 450 CNY/t is far outside any price seen for Pr-Nd oxide "
        "(444,000 to 447,000): check the number and the unit; 1,000 times too low: a price per kg? 450 CNY/kg is "
        "450,000 CNY/t (write 450000 or \"450 CNY/kg\")",
        # no history of dysprosium oxide: its typical range in the catalog
        f"{path}:5: dy-slip: warning: threshold 1,700,000 CNY/kg is far outside the typical price of dysprosium "
        "oxide (500 to 5,000 CNY/kg; no stored price history to compare with): check the number and the unit; "
        "1,000 times too high: a price per tonne? 1,700,000 CNY/t is 1,700 CNY/kg (write 1700 or "
        "\"1,700,000 CNY/t\")",
    ]
    assert _tree(data) == before  # read from a copy: the data dir is as it was
    assert not PrivateRedis(data).running()
    assert list(scratch.iterdir()) == []  # the copy and its throwaway server are gone


def test_unit_slip_without_any_history_uses_the_catalog_range(tmp_path: Path, rules_dir: Path) -> None:
    (rules_dir / "r.yaml").write_text(SLIP_RULES)
    data = tmp_path / "empty"
    proc = subprocess.run([sys.executable, "-m", "workers.cli", "rules", "check"],
                          env=_check_env(rules_dir, data, tmp_path), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = rules_dir / "r.yaml"
    assert proc.stdout.splitlines() == [
        f"{path}:2: unit-slip: warning: threshold 450 CNY/t is far outside the typical price of Pr-Nd oxide "
        "(135,000 to 1,350,000 CNY/t; no stored price history to compare with): check the number and the unit; "
        "1,000 times too low: a price per kg? 450 CNY/kg is 450,000 CNY/t (write 450000 or \"450 CNY/kg\")",
        f"{path}:5: dy-slip: warning: threshold 1,700,000 CNY/kg is far outside the typical price of dysprosium "
        "oxide (500 to 5,000 CNY/kg; no stored price history to compare with): check the number and the unit; "
        "1,000 times too high: a price per tonne? 1,700,000 CNY/t is 1,700 CNY/kg (write 1700 or "
        "\"1,700,000 CNY/t\")",
    ]
    assert f"(no stored price history in {data}: thresholds were compared with the catalog's typical prices)" \
        in proc.stderr
    assert not data.exists()  # nothing created
