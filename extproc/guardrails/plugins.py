"""Teams' own checks, as Python entry points in the `switchyard.guardrails` group.

The interface, kept small so a plugin depends on nothing of Switchyard but these three names:

    from extproc.guardrails.plugins import PluginFinding, PluginText

    def factory(options: Mapping[str, Any]) -> Plugin        # the entry point; `options` from the YAML
    class Plugin:
        def check(self, texts: Sequence[PluginText]) -> Sequence[PluginFinding]   # or `async def`

`texts` are the request's texts (or the answer's), each with the role of who wrote it. A finding names the
text by its index and, to be masked, the span in it; without a span it is about the whole text (blocked or
flagged, or masked whole). The check's `action` in the YAML decides what findings do. A plugin runs within its
`timeout`; one that raises or overruns blocks the request (`on_error: block`) or lets it pass (`on_error: pass`).
A synchronous plugin runs in a worker thread, so it cannot stall the ext_proc's other requests.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol

ENTRY_POINT_GROUP = "switchyard.guardrails"


@dataclass(frozen=True)
class PluginText:
    text: str
    role: str  # system, user, assistant, tool (a tool's result), tool_call (a call's arguments)


@dataclass(frozen=True)
class PluginFinding:
    index: int  # which of the texts
    start: int = 0
    end: int | None = None  # None: to the end of the text
    kind: str = "PLUGIN"  # the placeholder's type when masked: [KIND_1]


class Plugin(Protocol):
    def check(self, texts: Sequence[PluginText]) -> Sequence[PluginFinding] | Awaitable[Sequence[PluginFinding]]: ...


PluginFactory = Callable[[Mapping[str, Any]], Plugin]


class PluginNotFoundError(Exception):
    """No installed distribution offers this entry point."""


class PluginFailedError(Exception):
    """A plugin raised, overran its time budget or answered something other than findings."""


def load_plugin(
    name: str,
    options: Mapping[str, Any],
    find: Callable[[str], Iterable[EntryPoint]] = lambda group: entry_points(group=group),
) -> Plugin:
    """The plugin `name` from its entry point, built with `options` (`find` is the entry-point lookup)."""
    for entry_point in find(ENTRY_POINT_GROUP):
        if entry_point.name == name:
            factory: PluginFactory = entry_point.load()
            return factory(options)
    raise PluginNotFoundError(f"no {ENTRY_POINT_GROUP} entry point named {name!r} is installed")


async def run_plugin(plugin: Plugin, texts: Sequence[PluginText], timeout: float) -> list[PluginFinding]:
    """The plugin's findings, or `PluginFailedError`."""
    try:
        if inspect.iscoroutinefunction(plugin.check):
            result = await asyncio.wait_for(plugin.check(texts), timeout)
        else:
            result = await asyncio.wait_for(asyncio.to_thread(plugin.check, texts), timeout)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, timeout)
    except TimeoutError:
        raise PluginFailedError(f"took longer than its {timeout}s budget") from None
    except Exception as error:
        raise PluginFailedError(f"raised {type(error).__name__}") from error
    findings = list(result)
    for finding in findings:
        if not isinstance(finding, PluginFinding) or not 0 <= finding.index < len(texts):
            raise PluginFailedError("answered something other than findings about the texts it was given")
    return findings
