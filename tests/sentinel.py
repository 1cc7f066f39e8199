"""A Redis that can fail, on 127.0.0.1 for the tests: a primary, replicas (``--replicaof``) and sentinels
(``redis-server --sentinel`` with a generated sentinel.conf), every one a real redis-server process."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from alerts.store.server import redis_server_binary
from tests.servers import free_port, wait_for

MASTER_NAME = "mymaster"


class Node:
    """One redis-server process (data node or sentinel) on a free port, its files in ``dir``."""

    def __init__(self, args: list[str], dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = dir
        self.log = dir / "redis.log"
        self.proc = subprocess.Popen([redis_server_binary(), *args, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--dir", str(dir), "--logfile", str(self.log)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 15, f"redis-server on port {self.port} to start", interval=0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"redis-server exited with code {self.proc.returncode}: {tail}")
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: no goodbye to replicas, clients or sentinels."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SentinelCluster:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels watching it under ``MASTER_NAME``
    (quorum ``quorum``); ``ready()`` once every sentinel knows every replica and the other sentinels,
    so a failover can be authorised."""

    def __init__(self, replicas: int = 1, sentinels: int = 3, quorum: int = 2, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="alerts-test-sentinel-"))
        self.nodes: list[Node] = []
        self.sentinels: list[Node] = []
        common = ["--save", "", "--appendonly", "no", "--repl-diskless-sync", "yes",
                  "--repl-diskless-sync-delay", "0"]
        self.primary = self._node("primary", common)
        self.replicas = [self._node(f"replica{i}", [*common, "--replicaof", "127.0.0.1", str(self.primary.port)])
                         for i in range(replicas)]
        for i in range(sentinels):
            d = self.root / f"sentinel{i}"
            d.mkdir()
            conf = d / "sentinel.conf"  # sentinel rewrites its config file: one per sentinel, writable
            conf.write_text("\n".join([
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary.port} {quorum}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
                f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
                "",
            ]))
            node = Node([str(conf), "--sentinel"], d)
            self.sentinels.append(node)
            self.nodes.append(node)
        self.expected_replicas = replicas
        self.expected_peers = sentinels - 1

    def _node(self, name: str, args: list[str]) -> Node:
        d = self.root / name
        d.mkdir()
        node = Node(args, d)
        self.nodes.append(node)
        return node

    @property
    def addresses(self) -> str:
        """The value of ALERTS_REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def ready(self) -> bool:
        for s in self.sentinels:
            with s.client() as c:
                info = c.sentinel_master(MASTER_NAME)
                if int(info["num-slaves"]) < self.expected_replicas or \
                        int(info["num-other-sentinels"]) < self.expected_peers:
                    return False
        with self.primary.client() as c:  # the replicas are in sync
            return int(c.info("replication")["connected_slaves"]) >= self.expected_replicas

    def master_port(self) -> int:
        """The primary's port as the first sentinel answering sees it."""
        for s in self.sentinels:
            try:
                with s.client() as c:
                    return int(c.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except redis.ConnectionError:
                continue
        raise RuntimeError("no sentinel answers")

    def node_on(self, port: int) -> Node:
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)
