"""A config with many routes is one Envoy accepts: nothing in the generated route table may outgrow one of
Envoy's own limits as routes are added (the model list Envoy answers `GET /v1/models` with grows with them).

And every model reaches its own target: the virtual host looks routes up by the routing key
(controlplane/resources/route_index.py, envoy/lua/route_key.lua), so a key that said the wrong model, or that a
client could set, would send requests to another model's target."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.contract import ROUTE_KEY_HEADER
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


def test_each_of_many_models_reaches_its_own_target_whatever_the_client_sends(
    tmp_path: Path, mock: MockProvider
) -> None:
    with running_stack(_config(free_port(), mock, ROUTES), tmp_path) as stack:
        for i in (0, 77, ROUTES - 1):
            mock.clear()
            answered = stack.chat(f"team-{i:03d}-assistant")
            assert answered.status_code == 200, answered.text
            (seen,) = mock.requests()
            assert seen["body"]["model"] == f"upstream-{i:03d}"
            assert ROUTE_KEY_HEADER not in seen["headers"], seen["headers"]  # the key never reaches a provider
        # A query string (Azure-style api-version) does not change the route.
        mock.clear()
        body = {"model": "team-005-assistant", "messages": [{"role": "user", "content": "hi"}]}
        answered = stack.client.post("/v1/chat/completions?api-version=2024-10-21", json=body)
        assert answered.status_code == 200, answered.text
        assert mock.requests()[-1]["body"]["model"] == "upstream-005"
        # A client cannot pick another model's route by sending the key itself.
        mock.clear()
        spoofed = {ROUTE_KEY_HEADER: "POST /v1/chat/completions team-009-assistant"}
        answered = stack.chat("team-004-assistant", headers=spoofed)
        assert answered.status_code == 200, answered.text
        (seen,) = mock.requests()
        assert seen["body"]["model"] == "upstream-004"
        assert ROUTE_KEY_HEADER not in seen["headers"]
        # What the list answers still answers: an unknown model, a body without one, a wrong method.
        unknown = stack.chat("team-999-assistant")
        assert unknown.status_code == 404 and "team-999-assistant" in unknown.text, unknown.text
        no_model = stack.client.post("/v1/chat/completions", json={"messages": []})
        assert no_model.status_code == 400, no_model.text
        wrong_method = stack.client.get("/v1/chat/completions")
        assert wrong_method.status_code == 405, wrong_method.text
