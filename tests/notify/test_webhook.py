"""Webhooks: a signed JSON POST to a real receiver on 127.0.0.1 that checks the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store import failures
from alerts.store.keys import Keys
from tests.pipeline import Pipeline
from tests.servers import write_rules

SECRET = "s3cret-hook-key-not-for-logs"


class Receiver:
    """Verifies X-Alerts-Signature as a receiver would, answers from a script (default 200)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.script: list[tuple[int, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Alerts-Timestamp"]
                expected = "sha256=" + hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers["X-Alerts-Signature"]):
                    outer.bad_signatures += 1
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                if status == 200:
                    outer.received.append({"body": json.loads(body), "desk": self.headers.get("X-Desk")})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


@pytest.fixture
def p(client: redis.Redis, settings: Settings, rules_dir: Path, receiver: Receiver,
      monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setenv("ALERTS_RULES_VAR_DESK_HOOK", SECRET)
    write_rules(rules_dir, f"""
webhooks:
  - name: desk
    url: {receiver.url}
    secret: ${{ALERTS_RULES_VAR_DESK_HOOK}}
    headers: {{X-Desk: light}}
rules:
  - id: licences
    news: {{any: [export licen*]}}
    notify: [webhook:desk]
""")
    return Pipeline(client, settings.model_copy(update={"delivery_retry_intervals_seconds": [0, 0]}))


def article() -> dict[str, object]:
    return {"type": "news", "id": "n1", "headline": "Export licences granted", "source": "smm"}


def test_signed_post_with_the_alert(p: Pipeline, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    p.run(article())
    (got,) = receiver.received
    assert receiver.bad_signatures == 0
    assert got["body"]["rule_id"] == "licences" and got["body"]["headline"] == "Export licences granted"
    assert got["desk"] == "light"
    assert SECRET not in caplog.text and SECRET not in repr(p.rules.webhooks)


def test_server_errors_are_retried_and_4xx_fails_at_once(p: Pipeline, receiver: Receiver) -> None:
    receiver.script = [(500, {}), (408, {})]
    p.run(article())
    assert len(receiver.received) == 1  # third try
    p2_alert = {"type": "news", "id": "n2", "headline": "Export licences again", "source": "smm"}
    receiver.script = [(404, {})]
    p.run(p2_alert)
    assert len(receiver.received) == 1
    (f,) = failures.listing(p.client, Keys())
    assert f["permanent"] is True and "404" in f["reason"] and f["target"] == "webhook:desk"


def test_webhook_rule_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTS_RULES_VAR_NOPE", raising=False)
    (tmp_path / "r.yaml").write_text("""webhooks:
  - {name: a, url: "https://x.test/h", secret: "${ALERTS_RULES_VAR_NOPE}"}
  - {name: b, url: "https://x.test/h", secret: k, headers: {X-Alerts-Signature: forged}}
  - {name: c, url: "ftp://x.test/h", secret: k}
rules:
  - id: r
    news: {any: [x]}
    notify: [webhook:zzz]
""")
    out = [str(p) for p in load_rules(tmp_path).problems]
    path = tmp_path / "r.yaml"
    assert f"{path}:2: -: webhooks: a: environment variable ALERTS_RULES_VAR_NOPE is not set" in out
    assert f"{path}:3: -: webhooks: b: header 'X-Alerts-Signature' is set by the signature scheme" in out
    assert any(o.startswith(f"{path}:4: -: url: String should match pattern") for o in out), out
    assert f"{path}:8: r: notify: webhook 'zzz' is not defined under webhooks:" in out
