"""A vendor feed on 127.0.0.1: serves JSON, CSV, RSS and Atom bodies by path, answers conditional requests
(ETag, Last-Modified -> 304), and can fail on purpose (a status, a slow answer, a body dripped too slowly, a
body larger than it says). Records every request's path and headers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    #: seconds to wait before answering
    delay: float = 0.0
    #: send no Content-Length (the body is read until the connection closes)
    no_length: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path)
                if route is None:
                    return self._answer(404, b"not found", "text/plain", {})
                if route.delay:
                    time.sleep(route.delay)
                if route.status != 200:
                    return self._answer(route.status, b"failed on purpose", "text/plain", route.headers)
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                if (route.etag and inm == route.etag) or (not route.etag and route.last_modified
                                                          and ims == route.last_modified):
                    return self._answer(304, b"", None, headers)
                self._answer(200, route.body, route.content_type, headers, route.no_length)

            def _answer(self, status: int, body: bytes, ctype: str | None, headers: dict[str, str],
                        no_length: bool = False) -> None:
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                if no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    try:
                        self.wfile.write(body)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client gave up (a size limit)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # ``stop`` waits for the serving loop to look at its flag: every 0.5 s by default, half a second per test
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
