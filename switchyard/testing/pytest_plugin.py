"""pytest fixtures that run Switchyard and mock providers as local processes, for machines without Docker.

Registered as the pytest plugin `switchyard` (entry point), so installing Switchyard is enough; `-p
no:switchyard` turns it off. Each fixture is a factory: call it as often as the test needs, everything it
started is stopped after the test, and a failing test's report carries their last log lines.

    def test_fallback(switchyard_mock_provider, switchyard_gateway):
        mock = switchyard_mock_provider("openai", rules=["model=gpt-4o,status=503"])
        gateway = switchyard_gateway(CONFIG.replace("MOCK_URL", mock.url))
        client = OpenAI(base_url=gateway.base_url, api_key="test")

Importing this module costs next to nothing: the processes' code is imported by the fixtures that start them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from switchyard.testing.local import LocalMockProvider, LocalSwitchyard
    from switchyard.testing.mock_admin import RuleSpec

_STARTED = pytest.StashKey[list[Any]]()


class MockProviderFactory(Protocol):
    def __call__(
        self, name: str = "mock", api: str = "openai", rules: tuple[RuleSpec, ...] | list[RuleSpec] = ()
    ) -> LocalMockProvider: ...


class GatewayFactory(Protocol):
    def __call__(
        self, config: str | Path, env: dict[str, str] | None = None, up_args: tuple[str, ...] = ()
    ) -> LocalSwitchyard: ...


def _started(request: pytest.FixtureRequest) -> list[Any]:
    """What this test started, kept on its item for the report hook below."""
    started: list[Any] = request.node.stash.setdefault(_STARTED, [])
    return started


@pytest.fixture
def switchyard_mock_provider(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MockProviderFactory]:
    """Start a `switchyard mock-provider` (`name`, wire `api`, failure `rules`): `.url` for the config's
    `base_url`, `.set_rules()`, `.requests()`, `.clear()` to script and read it."""
    from switchyard.testing.local import LocalMockProvider

    mine: list[LocalMockProvider] = []

    def start(
        name: str = "mock", api: str = "openai", rules: tuple[RuleSpec, ...] | list[RuleSpec] = ()
    ) -> LocalMockProvider:
        mock = LocalMockProvider(name, api, tuple(rules), log_dir=tmp_path_factory.mktemp(f"mock-{name}"))
        mine.append(mock)
        _started(request).append(mock)
        return mock

    yield start
    for mock in reversed(mine):
        mock.stop()


@pytest.fixture
def switchyard_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayFactory]:
    """Start `switchyard up` on a routing YAML (text, or a `Path`) on a free loopback port: `.base_url` for the
    openai SDK, `.url` for the anthropic SDK, `.status_url`, `.logs()`. Stopped (drained) after the test."""
    from switchyard.testing.local import LocalSwitchyard

    mine: list[LocalSwitchyard] = []

    def start(config: str | Path, env: dict[str, str] | None = None, up_args: tuple[str, ...] = ()) -> LocalSwitchyard:
        gateway = LocalSwitchyard(config, env, up_args, log_dir=tmp_path_factory.mktemp("switchyard"))
        mine.append(gateway)
        _started(request).append(gateway)
        return gateway

    yield start
    for gateway in reversed(mine):
        gateway.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test's report shows the logs of the gateways and mocks it started, while they still run."""
    outcome = yield
    report = outcome.get_result()
    started = item.stash.get(_STARTED, [])
    if report.failed and started:
        for process in started:
            logs: Callable[[], str] = process.logs
            report.sections.append((f"switchyard: {type(process).__name__}", logs()))
