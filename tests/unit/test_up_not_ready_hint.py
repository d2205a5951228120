"""`switchyard up` says what Envoy rejected when it is not ready in time, from the control plane's `/status`.

A config can pass Switchyard's validation and still be refused by Envoy (a limit of Envoy's, say); before, the
user saw only "not ready in time" and had to find the rejection in the control plane's log.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from switchyard.config import load_config
from switchyard.supervisor.gateway import Gateway
from switchyard.supervisor.options import GatewayOptions

REJECTION = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration version 1: direct response body too large"


def _status_server(nodes: list[dict[str, Any]]) -> Iterator[str]:
    body = json.dumps({"nodes": nodes}).encode()

    class Status(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/status" else 404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rejecting_api() -> Iterator[str]:
    yield from _status_server([{"name": "a", "rejected": ""}, {"name": "b", "rejected": REJECTION}])


@pytest.fixture
def accepting_api() -> Iterator[str]:
    yield from _status_server([{"name": "a", "rejected": ""}])


def _gateway(tmp_path: Path, api: str | None) -> Gateway:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "listen: 127.0.0.1:18998\nproviders: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    return Gateway(GatewayOptions(config_path, work_dir=tmp_path / "work", api=api), load_config(config_path))


def test_the_hint_names_what_envoy_rejected(tmp_path: Path, rejecting_api: str) -> None:
    assert _gateway(tmp_path, rejecting_api)._not_ready_hint() == (
        f"Envoy rejected the config the control plane sent it: {REJECTION}"
    )


def test_no_hint_without_a_rejection_or_an_api(tmp_path: Path, accepting_api: str) -> None:
    assert _gateway(tmp_path, accepting_api)._not_ready_hint() == ""
    assert _gateway(tmp_path, None)._not_ready_hint() == ""
    assert _gateway(tmp_path, "127.0.0.1:9")._not_ready_hint() == ""  # nothing answers there
