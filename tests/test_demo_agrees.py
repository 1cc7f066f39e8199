"""The live demo and ``alerts backtest --demo`` of the same feed print the same alerts (issue 22): the demo's feed
ends, and its event-time stage must not wait two hours for legs that will never report."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.test_commands import private_env

LIVE = re.compile(r" ALERT [A-Z]+ \[([^\]]+)\]( RESOLVED)? ")


def test_the_live_demo_prints_what_its_backtest_prints(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", "--demo"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    err: list[str] = []
    readers = [threading.Thread(target=lambda s=s, into=into: into.extend(iter(s.readline, "")), daemon=True)
               for s, into in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    deadline = time.monotonic() + 90
    while not any("demo: feed published" in line for line in err):
        assert proc.poll() is None and time.monotonic() < deadline, "".join(err[-20:])
        time.sleep(0.1)
    quiet_since, seen = time.monotonic(), len(out)
    while time.monotonic() - quiet_since < 6:  # the grace, then nothing new for a while
        assert time.monotonic() < deadline, "".join(out)
        if len(out) != seen:
            quiet_since, seen = time.monotonic(), len(out)
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for r in readers:
        r.join(5)
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        stream.close()
    live = Counter((m.group(1), bool(m.group(2))) for line in out if (m := LIVE.search(line)))

    bt = subprocess.run([sys.executable, "-m", "workers.cli", "backtest", "--demo", "--format", "json"], env=env,
                        capture_output=True, text=True, check=False, timeout=120)
    assert bt.returncode == 0, bt.stderr
    replayed = Counter((a["rule_id"], a["status"] == "resolved") for a in json.loads(bt.stdout)["alerts"])
    assert live == replayed
    assert ("tb-up-and-export-controls", False) in live  # the all_of whose leg never reports again
