"""A small client for Envoy's admin interface, over its Unix socket (the default) or TCP (`--admin HOST:PORT`).

Plain `http.client`: one request per connection, a timeout on every call, and every failure (refused, timed
out, an answer other than 200, a stat that is not there) raised as `AdminError`, so callers decide in one place
what to do when Envoy does not answer.
"""

from __future__ import annotations

import http.client
import re
import socket
import urllib.parse

from switchyard.addresses import AddressError, UnixAddress, parse_address

DEFAULT_TIMEOUT = 2.0


class AdminError(Exception):
    """Envoy's admin did not answer, or not with what was asked."""


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a connected AF_UNIX socket; the Host header is a placeholder Envoy ignores."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("envoy", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class EnvoyAdmin:
    def __init__(self, address: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            self._address = parse_address(address)
        except AddressError as error:
            raise AdminError(str(error)) from None
        self.timeout = timeout

    def __str__(self) -> str:
        return str(self._address)

    def _connection(self) -> http.client.HTTPConnection:
        if isinstance(self._address, UnixAddress):
            return _UnixHTTPConnection(self._address.path, self.timeout)
        return http.client.HTTPConnection(self._address.host, self._address.port, timeout=self.timeout)

    def request(self, method: str, path: str) -> str:
        """The body of a 200 answer; anything else raises AdminError."""
        connection = self._connection()
        try:
            connection.request(method, path, headers={"connection": "close"})
            response = connection.getresponse()
            body = response.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as error:  # socket.timeout is an OSError
            raise AdminError(f"{method} {path} on Envoy's admin {self}: {error or type(error).__name__}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise AdminError(f"{method} {path} on Envoy's admin {self}: {response.status} {body.strip()[:200]}")
        return body

    def get(self, path: str) -> str:
        return self.request("GET", path)

    def post(self, path: str) -> str:
        return self.request("POST", path)

    def healthcheck_fail(self) -> None:
        """From now on Envoy's health_check filter answers 503, and every response asks to close its connection."""
        self.post("/healthcheck/fail")

    def drain_listeners(self, *, graceful: bool, skip_exit: bool = False) -> None:
        flags = [name for name, on in (("graceful", graceful), ("skip_exit", skip_exit)) if on]
        self.post("/drain_listeners" + ("?" + "&".join(flags) if flags else ""))

    def stat(self, name: str) -> int:
        """The value of one counter or gauge, e.g. `http.switchyard.downstream_rq_active`."""
        body = self.get("/stats?filter=" + urllib.parse.quote(f"^{re.escape(name)}$", safe=""))
        value = parse_stat(body, name)
        if value is None:
            raise AdminError(f"Envoy's admin {self} has no stat {name}")
        return value


def parse_stat(body: str, name: str) -> int | None:
    """The value of `name` in the text of `/stats` (`name: value` lines), None if it is not there."""
    for line in body.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == name and value.strip().lstrip("-").isdigit():
            return int(value.strip())
    return None
