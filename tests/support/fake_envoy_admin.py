"""A tiny stand-in for Envoy's admin interface, over a Unix socket or TCP, for the admin client's and the drain's
unit tests. It records every request (method, path) and answers /stats like Envoy does."""

from __future__ import annotations

import socketserver
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

STATS = "http.admin.downstream_rq_active: 1\nhttp.switchyard.downstream_rq_active: 3\nserver.live: 1\n"


class FakeAdminHandler(BaseHTTPRequestHandler):
    """Answers like Envoy's admin: /stats?filter=RE with the matching lines, POSTs with OK, anything else 404."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str]]

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path))
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/stats":
            wanted = urllib.parse.parse_qs(url.query)["filter"][0]
            # The client asks for ^escaped.name$; answer the lines whose name it matches exactly.
            name = wanted.removeprefix("^").removesuffix("$").replace("\\", "")
            self._answer(200, "".join(line + "\n" for line in STATS.splitlines() if line.split(":")[0] == name))
        elif url.path == "/teapot":
            self._answer(418, "no\n")
        else:
            self._answer(404, "invalid path\n")

    def do_POST(self) -> None:
        self.seen.append(("POST", self.path))
        self._answer(200, "OK\n")

    def log_message(self, *_: object) -> None:  # quiet; and client_address is '' on a Unix socket
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    server.RequestHandlerClass = type("Handler", (FakeAdminHandler,), {"seen": seen})
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
