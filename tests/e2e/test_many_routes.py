"""A config with many routes is one Envoy accepts: nothing in the generated route table may outgrow one of
Envoy's own limits as routes are added (the model list Envoy answers `GET /v1/models` with grows with them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, mock_provider_fixture, running_stack

pytestmark = pytest.mark.e2e

ROUTES = 150


def _config(port: int, mock: MockProvider, routes: int) -> str:
    models = "".join(
        f"  - model: team-{i:03d}-assistant\n    targets:\n"
        f"      - {{name: primary, provider: openai, model: upstream-{i:03d}}}\n"
        for i in range(routes)
    )
    return (
        f"listen: 127.0.0.1:{port}\nproviders:\n"
        f'  openai: {{kind: openai, base_url: "{mock.url}", api_key: sk-many-routes}}\nroutes:\n{models}'
    )


mock = mock_provider_fixture("mock")


def test_a_config_of_many_routes_is_served_whole(tmp_path: Path, mock: MockProvider) -> None:
    with running_stack(_config(free_port(), mock, ROUTES), tmp_path) as stack:
        listed = stack.client.get("/v1/models")
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["data"]) == ROUTES
        last = stack.chat(f"team-{ROUTES - 1:03d}-assistant")
        assert last.status_code == 200, last.text
        assert mock.requests()[-1]["body"]["model"] == f"upstream-{ROUTES - 1:03d}"
