"""Plugins: the example plugin loaded through a real entry point, and the time budget closing or opening."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from extproc.guardrails.checks import GuardrailSet
from extproc.guardrails.masking import Masker
from extproc.guardrails.plugins import (
    ENTRY_POINT_GROUP,
    PluginFinding,
    PluginNotFoundError,
    PluginText,
    load_plugin,
)
from switchyard.config.model import Route
from switchyard.contract import WireApi

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guardrails" / "acme_compliance"


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "acme_compliance", raising=False)


def _installed(*entries: tuple[str, str]) -> Any:
    """The entry points an installed distribution would declare (as the example's pyproject.toml does)."""

    def find(group: str) -> Iterable[EntryPoint]:
        return [EntryPoint(name, value, group) for name, value in entries] if group == ENTRY_POINT_GROUP else []

    return find


def _rules(guardrails: list[dict[str, Any]], find: Any) -> GuardrailSet:
    route = Route.model_validate({"model": "m", "targets": [{"provider": "p", "model": "x"}], "guardrails": guardrails})
    return GuardrailSet(route.guardrails, load=lambda name, options: load_plugin(name, options, find))


def _chat(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def test_the_example_plugin_declares_its_entry_point() -> None:
    declared = (EXAMPLE / "pyproject.toml").read_text()
    assert '[project.entry-points."switchyard.guardrails"]' in declared
    assert '"acme.compliance" = "acme_compliance:factory"' in declared


@pytest.mark.usefixtures("example_on_path")
def test_the_example_plugin_blocks_and_masks_code_names() -> None:
    find = _installed(("acme.compliance", "acme_compliance:factory"))
    options = {"code_names": ["falcon", "osprey"]}
    blocking = _rules([{"check": "plugin", "name": "acme.compliance", "options": options}], find)
    decision = asyncio.run(blocking.check_request(WireApi.OPENAI, _chat("status of Project Falcon?"), Masker()))
    assert decision.block is not None and decision.block.rule == "acme.compliance"
    assert "Falcon" not in decision.block.message
    assert (
        asyncio.run(blocking.check_request(WireApi.OPENAI, _chat("status of the falconry club"), Masker())).block
        is None
    )

    masking = _rules([{"check": "plugin", "name": "acme.compliance", "options": options, "action": "mask"}], find)
    body = _chat("osprey and falcon, then osprey")
    asyncio.run(masking.check_request(WireApi.OPENAI, body, Masker()))
    assert body["messages"][0]["content"] == "[CODE_NAME_1] and [CODE_NAME_2], then [CODE_NAME_1]"


def test_a_missing_plugin_is_named() -> None:
    with pytest.raises(PluginNotFoundError, match=r"acme\.compliance"):
        load_plugin("acme.compliance", {}, _installed())


class _Slow:
    def __init__(self, asynchronous: bool) -> None:
        self.asynchronous = asynchronous

    def check(self, texts: Sequence[PluginText]) -> Any:
        if self.asynchronous:
            return asyncio.sleep(5, result=[])  # an awaitable, as an async plugin's check returns
        import time

        time.sleep(0.5)
        return []


class _Broken:
    def check(self, texts: Sequence[PluginText]) -> list[PluginFinding]:
        raise RuntimeError("database down")


@pytest.mark.parametrize("plugin", [_Slow(asynchronous=True), _Slow(asynchronous=False), _Broken()])
def test_a_failing_or_overrunning_plugin_fails_closed_or_open_as_configured(plugin: Any) -> None:
    for on_error, blocked in (("block", True), ("pass", False)):
        rules = GuardrailSet(
            Route.model_validate(
                {
                    "model": "m",
                    "targets": [{"provider": "p", "model": "x"}],
                    "guardrails": [{"check": "plugin", "name": "x", "timeout": "50ms", "on_error": on_error}],
                }
            ).guardrails,
            load=lambda name, options: plugin,
        )
        decision = asyncio.run(rules.check_request(WireApi.OPENAI, _chat("hello"), Masker()))
        assert (decision.block is not None) is blocked
        if blocked:
            assert decision.block is not None and decision.block.failed
        else:
            assert [(e.rule, e.action) for e in decision.events] == [("x", "error")]
