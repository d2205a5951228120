"""Idle connections to a provider close before the provider closes them (`idle_timeout`), end to end.

A server closes idle keep-alive connections too (uvicorn, which serves vLLM, after 5 s). When it does just as a
request leaves on one, the request fails with no answer: the race every HTTP/1.1 client meets now and then. The
mock makes it certain (`--close-idle-after`: a request arriving on a connection idle that long is reset), so the
test can tell a gateway that closes first from one that does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack

pytestmark = pytest.mark.e2e

SERVER_CLOSES_AFTER = 1.5  # seconds idle, as uvicorn's 5 s, shortened for the test


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("server", tmp_path_factory.mktemp("mock"), ("--close-idle-after", str(SERVER_CLOSES_AFTER)))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = f"""
listen: 127.0.0.1:{free_port()}
providers:
  closes-first: {{kind: openai_compatible, base_url: "{mock.url}", idle_timeout: 1s}}
  keeps-longer: {{kind: openai_compatible, base_url: "{mock.url}", idle_timeout: 30s}}
routes:
  - model: closes-first
    targets: [{{provider: closes-first, model: m1}}]
  - model: keeps-longer
    targets: [{{provider: keeps-longer, model: m2}}]
"""
    with running_stack(config, tmp_path_factory.mktemp("stack")) as running:
        yield running


def test_a_request_after_a_quiet_spell_gets_a_fresh_connection(stack: Stack, mock: MockProvider) -> None:
    for model in ("closes-first", "keeps-longer"):  # one open connection to the server each, now idle
        assert stack.chat(model).status_code == 200

    time.sleep(SERVER_CLOSES_AFTER + 0.3)  # the quiet spell under test, not a wait for something to happen

    served = stack.chat("closes-first")
    assert served.status_code == 200, served.text
    # The control: the same quiet spell, with the connection kept past the server's timeout, costs the request
    # (a one-target route has nowhere to fall back to). Without it, the test above could pass on a mock that
    # never resets.
    lost = stack.chat("keeps-longer")
    assert lost.status_code == 503, lost.text
    first, second = mock.requests("m1")
    assert first["connection"] != second["connection"], "Switchyard closed its idle connection and opened another"
