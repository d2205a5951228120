"""Code that runs inside Envoy, read from its own files under envoy/ and pushed inline over ADS.

Inline rather than by file name: an Envoy on another host has no copy of our files, and a new version of the
code then reaches every Envoy with the config that needs it.
"""

from __future__ import annotations

from functools import cache

from switchyard.envoy_files import read_envoy_file


@cache
def attempt_rewrite_lua() -> str:
    """envoy/lua/attempt_rewrite.lua: the per-attempt rewrite (tests: tests/unit/test_attempt_rewrite_lua.py)."""
    return read_envoy_file("lua/attempt_rewrite.lua")


@cache
def route_key_lua() -> str:
    """envoy/lua/route_key.lua: the routing key the route index looks up (tests: tests/unit/test_route_key_lua.py)."""
    return read_envoy_file("lua/route_key.lua")


@cache
def stream_usage_lua() -> str:
    """envoy/lua/stream_usage.lua: token usage of streamed answers (tests: tests/unit/test_stream_usage_lua.py)."""
    return read_envoy_file("lua/stream_usage.lua")


@cache
def client_auth_lua() -> str:
    """envoy/lua/client_auth.lua: who may call (tests: tests/unit/test_client_auth_lua.py)."""
    return read_envoy_file("lua/client_auth.lua")


@cache
def translated_response_lua() -> str:
    """envoy/lua/translated_response.lua: the response headers' part of a translated attempt, before the ext_proc
    (tests: tests/unit/test_translated_response_lua.py)."""
    return read_envoy_file("lua/translated_response.lua")
