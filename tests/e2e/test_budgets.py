"""Token budgets with real client keys, end to end: a budget stops its client after the answer that crossed it
(streamed answers counted, through the official openai SDK), the spend survives a control plane restart
(SQLite in the state dir), and two control-plane replicas on one PostgreSQL share it without double counting.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchyard.supervisor.processes import descendants, free_port
from tests.support.harness import MockProvider, Stack, SwitchyardProcess, node_process, running_stack, wait_for
from tests.support.postgres_server import postgres_server

pytestmark = pytest.mark.e2e

KEY_A = f"sk-team-a-{secrets.token_hex(12)}"
KEY_B = f"sk-team-b-{secrets.token_hex(12)}"
USD_PER_TOKEN = 1.0  # the target's output price: 1,000,000 USD per 1M tokens, so spend counts tokens


def _config(port: int, mock: MockProvider, budget_usd: float) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{mock.url}", api_key: sk-provider}}
routes:
  - model: gpt
    targets: [{{name: oa, provider: oa, model: gpt-4o, price: {{input: 0, output: {USD_PER_TOKEN * 1_000_000}}}}}]
clients:
  team-a: {{keys: ["{KEY_A}"], budget: {{usd: {budget_usd}, per: day}}}}
  team-b: {{keys: ["{KEY_B}"]}}
"""


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("budget", tmp_path_factory.mktemp("mock"))
    yield provider
    provider.stop()


def usage(api: str, **params: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"http://{api}/usage", params=params, timeout=10).json()
    return document


def client_total(api: str, client: str) -> dict[str, Any]:
    total: dict[str, Any] = usage(api, by="", client=client)["total"]
    return total


def stream(url: str, key: str) -> str:
    """One streamed answer through the official SDK, without asking for usage; its text."""
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    chunks = sdk.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def nodes_current(api: str) -> bool:
    document = httpx.get(f"http://{api}/status", timeout=10).json()
    nodes = [n for n in document["nodes"] if n["state"] != "gone"]
    return bool(nodes) and all(n["state"] == "current" and n["version"] == n["current_version"] for n in nodes)


def test_a_budget_stops_its_client_after_the_answer_that_crossed_it_and_survives_a_restart(
    mock: MockProvider, tmp_path: Path
) -> None:
    with running_stack(_config(free_port(), mock, 1000.0), tmp_path) as stack:
        # How many tokens one streamed answer costs (team-b has no budget), then a budget of two and a half.
        assert stream(stack.url, KEY_B)
        tokens = wait_for(lambda: client_total(stack.api, "team-b")["completion_tokens"], 10, "team-b's stream")
        budget = 2.5 * tokens * USD_PER_TOKEN
        # A budget changes nothing Envoy holds (same version): the reload's result says it was applied.
        stack.write_config(_config(int(stack.url.rsplit(":", 1)[1]), mock, budget))
        wait_for(lambda: (stack.status()["config"]["last_reload"] or {}).get("ok"), 15, "the budget's reload")

        for _ in range(3):  # the third answer crosses the budget: it still completes
            assert stream(stack.url, KEY_A)
        wait_for(lambda: "team-a" in usage(stack.api)["refused"], 10, "team-a refused")
        wait_for(lambda: nodes_current(stack.api), 10, "the refusal pushed to the node")
        refused = stack.chat("gpt", headers={"authorization": f"Bearer {KEY_A}"})
        assert refused.status_code == 429, refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 86_400
        assert stack.chat("gpt", headers={"authorization": f"Bearer {KEY_B}"}).status_code == 200
        spent = client_total(stack.api, "team-a")
        assert spent["requests"] == 3 and spent["cost_usd"] == pytest.approx(3 * tokens * USD_PER_TOKEN)
        assert len(mock.requests("gpt-4o")) == 5  # team-b's two, team-a's three: the refused one never left

        _kill_controlplane(stack)
        wait_for(lambda: client_total(stack.api, "team-a") == spent, 20, "the restarted control plane's usage")
        assert "team-a" in usage(stack.api)["refused"]
        wait_for(lambda: nodes_current(stack.api), 15, "the node back on the restarted control plane")
        again = stack.chat("gpt", headers={"authorization": f"Bearer {KEY_A}"})
        assert again.status_code == 429, again.text


def _kill_controlplane(stack: Stack) -> None:
    def controlplanes() -> list[int]:
        found = []
        for pid in descendants(stack.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"controlplane" in argv:
                found.append(pid)
        return found

    [victim] = wait_for(controlplanes, 10, "the control plane under `up`")
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: (pids := controlplanes()) and victim not in pids, 20, "`up` to restart the control plane")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_two_replicas_on_one_postgresql_share_usage_without_double_counting(
    mock: MockProvider, tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(free_port(), mock, 1000.0))
    replicas: list[SwitchyardProcess] = []
    apis, grpcs = [f"127.0.0.1:{free_port()}" for _ in "ab"], [f"127.0.0.1:{free_port()}" for _ in "ab"]
    node = None
    try:
        for name, grpc, api in zip("ab", grpcs, apis, strict=True):
            args = ["controlplane", str(config), "--listen", grpc, "--api", api, "--usage-db", postgres_url]
            replica = SwitchyardProcess(f"cp-{name}", args, tmp_path)
            replicas.append(replica)
            replica.wait_for_log("control plane serving ADS", 30)
        port = free_port()
        node = node_process("n1", ",".join(grpcs), port, tmp_path)
        node.wait_for_log("Switchyard node n1 is up", 60)
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        for _ in range(4):
            assert stream(url, KEY_A)
        for _ in range(2):
            response = httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {KEY_B}"},
                timeout=10,
            )
            assert response.status_code == 200

        def both_counted() -> list[dict[str, Any]] | None:
            totals = [usage(api, by="client")["rows"] for api in apis]
            return totals if all(sum(r["requests"] for r in rows) == 6 for rows in totals) else None

        rows_a, rows_b = wait_for(both_counted, 15, "both replicas to count the six answers")
        print(f"both replicas counted 6 answers within {time.monotonic() - started:.2f}s")
        assert rows_a == rows_b  # one table, each answer once
        assert [(r["client"], r["requests"]) for r in rows_a] == [("team-a", 4), ("team-b", 2)]
        assert all(r["completion_tokens"] > 0 for r in rows_a)
    finally:
        if node is not None:
            node.stop()
        for replica in replicas:
            replica.stop()
