"""Tests for envoy/lua/route_key.lua, which sets the key the virtual host looks a request's route up by.

The key must be exactly what controlplane/resources/route_index.py indexes a route under, and it must say the
model the body holds: the script reads the metadata only once body() returns, which in Envoy is when the
json_to_metadata filter before it has lifted the model. The script runs in LuaJIT (Envoy's Lua) through lupa
against the Envoy double (lua_envoy_double.lua). End to end, with the real Envoy: every e2e test routes by the
key, and tests/e2e/test_many_routes.py checks what the index must not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controlplane.resources.route_index import route_key
from switchyard import contract
from tests.unit.test_attempt_rewrite_lua import LUA

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "envoy" / "lua" / "route_key.lua"
DOUBLE = Path(__file__).with_name("lua_envoy_double.lua")
KEY = contract.ROUTE_KEY_HEADER


class RouteKey:
    def __init__(self) -> None:
        self.runtime: Any = LUA.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.runtime.execute(SCRIPT.read_bytes())
        self.double: Any = self.runtime.execute(DOUBLE.read_bytes())

    def run(self, headers: dict[str, str], lifted: object = None, body: bytes | None = b"{}") -> tuple[str, Any]:
        """Runs envoy_on_request; `lifted` is the `model` json_to_metadata puts in the metadata with the body
        (None: it lifted nothing). Returns the key the request leaves with, and the request double."""
        request = self.double.request(
            b"", self.runtime.table_from({k.encode(): v.encode() for k, v in headers.items()}), body
        )

        def json_to_metadata(request: Any) -> None:
            if lifted is not None:
                value = lifted.encode() if isinstance(lifted, str) else lifted
                namespace = self.runtime.table_from({contract.MODEL_KEY.encode(): value})
                request.metadata = self.runtime.table_from({contract.METADATA_NAMESPACE.encode(): namespace})

        assert self.double.decode(request, json_to_metadata) == b"continue"
        sent = {k.decode(): v.decode() for k, v in self.double.headers(request).items()}
        return sent[KEY], request


def _post(path: str, **extra: str) -> dict[str, str]:
    return {":method": "POST", ":path": path, "content-type": "application/json", **extra}


def test_the_key_is_the_one_the_index_holds_the_route_under() -> None:
    key, request = RouteKey().run(_post("/v1/chat/completions"), lifted="gpt-4o")
    assert key == route_key("POST", "/v1/chat/completions", "gpt-4o") == "POST /v1/chat/completions gpt-4o"
    assert request.route_cache_cleared == 1  # Envoy matches again, with the key


def test_the_model_is_read_after_the_body_so_the_key_holds_the_lifted_one() -> None:
    """Read before body() returns, the metadata is still empty in Envoy: every key would miss the index."""
    key, request = RouteKey().run(_post("/v1/messages"), lifted="claude-sonnet-4")
    assert key.endswith(" claude-sonnet-4")
    assert request.cleared_after_body


def test_the_query_is_not_part_of_the_key() -> None:
    """Envoy's `path` match ignores the query: so must the key, or such requests would miss the index."""
    key, _ = RouteKey().run(_post("/v1/chat/completions?api-version=2024-10-21"), lifted="m")
    assert key == route_key("POST", "/v1/chat/completions", "m")


def test_a_key_sent_by_the_client_is_replaced_not_added_to() -> None:
    """A client must not pick its own route: the header is the script's alone."""
    headers = _post("/v1/chat/completions", **{KEY: "POST /v1/chat/completions expensive-model"})
    key, _ = RouteKey().run(headers, lifted="cheap-model")
    assert key == route_key("POST", "/v1/chat/completions", "cheap-model")


def test_without_a_lifted_model_the_key_matches_no_route() -> None:
    """No model (no body, not JSON, no `model`, or not a string): the key ends with the separator, which no
    indexed route's key does, so the request goes down the route list to its error."""
    for lifted, body in ((None, b"{}"), (None, None), (7, b'{"model": 7}')):
        key, _ = RouteKey().run(_post("/v1/chat/completions"), lifted=lifted, body=body)
        assert key == route_key("POST", "/v1/chat/completions", "")
    key, _ = RouteKey().run({":method": "GET", ":path": "/v1/models"}, body=None)
    assert key == route_key("GET", "/v1/models", "")


def test_a_model_name_with_spaces_stays_whole() -> None:
    key, _ = RouteKey().run(_post("/v1/chat/completions"), lifted="my model v2")
    assert key == route_key("POST", "/v1/chat/completions", "my model v2")
