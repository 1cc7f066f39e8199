"""ALERTS_REDIS_URL naming the port of something that is not Redis (an HTTP server, a server answering garbage):
every command and the service say so in one line naming host, port and the setting, never a traceback, never a
password. Real local TCP servers: ``http.server`` speaking HTTP, and one writing bytes that are not RESP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alerts.settings import Settings
from tests.conftest import env_for
from tests.servers import write_rules

RULES = """
rules:
  - id: prnd-450k
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [console]
"""


class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>hello</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def garbage_port() -> Iterator[int]:
    """Reads what it is sent, answers bytes no Redis would, and closes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"\x00\x17SSH-2.0-not-redis\r\n")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield int(srv.getsockname()[1])
    stop.set()
    srv.close()


COMMANDS = [["status"], ["status", "--format", "json"], ["publish", "FEED"], ["history"], ["failed"],
            ["silence", "list"], ["worker", "--role", "evaluate"], ["run"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("server", ["http", "garbage"])
def test_every_command_says_in_one_line_that_it_is_not_redis(argv: list[str], server: str, settings: Settings,
                                                             rules_dir: Path, tmp_path: Path, http_port: int,
                                                             garbage_port: int) -> None:
    write_rules(rules_dir, RULES)
    feed = tmp_path / "feed.jsonl"
    feed.write_text('{"type": "news", "id": "a", "headline": "Export licences"}\n')
    port = http_port if server == "http" else garbage_port
    env = env_for(settings, ALERTS_REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0")
    out = subprocess.run([sys.executable, "-m", "workers.cli", *[str(feed) if a == "FEED" else a for a in argv]],
                         env=env, capture_output=True, text=True, timeout=60)
    both = out.stdout + out.stderr
    assert "Traceback" not in both and "hunter2" not in both, both
    said = [line for line in both.splitlines() if "not Redis" in line]
    assert len(said) == 1, both
    expected = f"Redis at 127.0.0.1:{port} (ALERTS_REDIS_URL) answered something that is not Redis: Protocol error"
    if argv[0] == "status":  # a service failure of its own: exit status 1, the line in the report
        assert out.returncode == 1, both
        if "json" in argv:
            doc = json.loads(out.stdout)
            (check,) = doc["checks"]
            assert check["level"] == "fail" and check["message"].startswith(expected), doc
            assert doc["healthy"] is False and doc["redis"]["not_redis"] is True
        else:
            assert said[0].startswith(f"FAIL  redis       {expected}"), both
        return
    assert out.returncode == 2, both
    assert said[0].startswith(f"alerts: {expected}"), both
