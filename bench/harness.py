"""The one door from the benchmarks to the test suite's real local stand-ins: a private redis-server on a free
port, the Slack Web API and Socket Mode servers, the in-process pipeline, and the sample articles with the quotes
they state. Run the benchmarks as modules from the repository's folder (``python -m bench.run``), so ``tests`` is
importable as it is, with no path set by hand."""

from __future__ import annotations

from tests.pipeline import Pipeline
from tests.servers import RedisServer, SlackServer, free_port, wait_for, write_rules
from tests.socket_server import SocketModeServer
from tests.test_articles import EXPECTED, rows

__all__ = ["EXPECTED", "Pipeline", "RedisServer", "SlackServer", "SocketModeServer", "free_port", "rows",
           "wait_for", "write_rules"]
