"""The names shared across processes and languages agree with switchyard/contract.py.

A header or metadata key spelled differently in a Lua filter fails silently (the header is absent, the metadata
empty), so the Lua files may spell a shared name only in a `local NAME = ...` whose NAME is the contract's, and
this test holds each such value to the contract's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from extproc.translators import parameters_that_may_not_translate
from switchyard import contract

ROOT = Path(__file__).resolve().parents[2]
LUA_FILES = sorted((ROOT / "envoy" / "lua").glob("*.lua"))
SHARED_VALUE = re.compile(r"""["'](x-switchyard-[a-z-]+|switchyard[a-z_.]*)["']""")
LOCAL_STRING = re.compile(r"""^local ([A-Z][A-Z0-9_]*) = (["'])(.*?)\2\s*(?:--.*)?$""", re.M)
LOCAL_LIST = re.compile(r"^local ([A-Z][A-Z0-9_]*) = \{\n((?:\s+\"[^\"]*\",\n)+)\}", re.M)


def _lua_constants(text: str) -> dict[str, object]:
    found: dict[str, object] = {name: value for name, _, value in LOCAL_STRING.findall(text)}
    for name, body in LOCAL_LIST.findall(text):
        found[name] = tuple(re.findall(r'"([^"]*)"', body))
    return found


def _contract_value(name: str) -> object:
    return getattr(contract, name, None)


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_every_lua_constant_named_like_the_contract_has_its_value(path: Path) -> None:
    checked = 0
    for name, value in _lua_constants(path.read_text()).items():
        expected = _contract_value(name)
        if expected is None:
            continue
        assert value == expected, f"{path.name}: {name} = {value!r}, but switchyard/contract.py says {expected!r}"
        checked += 1
    assert checked, f"{path.name} names nothing of the contract: does it still share names with Python?"


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.name)
def test_lua_spells_shared_names_only_in_contract_constants(path: Path) -> None:
    """A literal such as "x-switchyard-rewrite" anywhere but in a contract-named constant is a copy that can drift."""
    text = path.read_text()
    constants = {name for name, _, _ in LOCAL_STRING.findall(text)}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("--"):
            continue
        for match in SHARED_VALUE.finditer(line):
            own = LOCAL_STRING.match(line)
            assert own and own.group(1) in constants and _contract_value(own.group(1)) is not None, (
                f"{path.name}:{line_no}: {match.group(0)} is a shared name: declare it as a local named as in "
                f"switchyard/contract.py ({line.strip()})"
            )


def test_the_stream_usage_counts_are_the_contracts() -> None:
    text = (ROOT / "envoy" / "lua" / "stream_usage.lua").read_text()
    assert _lua_constants(text)["USAGE_KEYS"] == contract.USAGE_KEYS


def test_the_bootstrap_defines_the_clusters_the_contract_names() -> None:
    text = (ROOT / "envoy" / "bootstrap.yaml").read_text()
    for cluster in (contract.CONTROLPLANE_CLUSTER, contract.EXTPROC_CLUSTER):
        assert re.search(rf"^  - name: {re.escape(cluster)}$", text, re.M), cluster


def test_the_parameters_the_listener_flags_are_those_the_translators_may_refuse() -> None:
    assert parameters_that_may_not_translate() == contract.PARAMETERS_THAT_MAY_NOT_TRANSLATE


def test_a_translation_request_round_trips_through_its_header_value() -> None:
    odd = contract.TranslationRequest("openai", "anthropic", "m&=1", "c m", "r/é", "t", body_rules='{"a":1}')
    assert contract.decode_translation_request(odd.encode()) == odd
    assert odd.encode().startswith(contract.TRANSLATION_VALUE_PREFIX), "Envoy's matcher relies on it"


def test_route_and_cluster_names_keep_their_formats() -> None:
    assert contract.route_name("chat", "gpt-4o") == "chat:gpt-4o"
    assert contract.cluster_name("gpt-4o", "openai") == "route/gpt-4o"
    assert contract.cluster_name("gpt-4o", "anthropic") == "route/gpt-4o@anthropic"
