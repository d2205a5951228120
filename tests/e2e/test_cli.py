"""The commands a newcomer types: validate, up on a bad config, demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import ACTIVE_LOGS, wait_for

REPO = Path(__file__).resolve().parents[2]


def _switchyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_validate_prints_summary_and_hides_keys() -> None:
    result = _switchyard(
        "validate",
        str(REPO / "examples/switchyard.yaml"),
        env={
            "OPENAI_API_KEY": "sk-hidden-1",
            "AZURE_OPENAI_KEY": "hidden-2",
            "ANTHROPIC_API_KEY": "sk-ant-hidden-3",
            "GEMINI_API_KEY": "g-hidden-4",
            "AWS_ACCESS_KEY_ID": "AKIDHIDDEN5",
            "AWS_SECRET_ACCESS_KEY": "aws-hidden-6",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "OK — 7 route(s), 17 target(s)" in result.stdout
    for secret in ("sk-hidden-1", "hidden-2", "sk-ant-hidden-3", "g-hidden-4", "AKIDHIDDEN5", "aws-hidden-6"):
        assert secret not in result.stdout + result.stderr


def test_validate_reports_every_problem_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "providers:\n  p: {kind: openia, base_url: http://x}\nroutes:\n  - model: m\n    targets: [{provider: p}]\n"
    )
    result = _switchyard("validate", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2: providers.p.kind:" in result.stderr
    assert f"{bad}:5: routes[0].targets[0].model: required key is missing" in result.stderr


def test_up_refuses_invalid_config_and_starts_nothing(tmp_path: Path) -> None:
    port = free_port()
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"listen: 127.0.0.1:{port}\nproviders: {{}}\n"
        "routes:\n  - model: m\n    targets: [{provider: ghost, model: x}]\n"
    )
    result = _switchyard("up", str(bad), "--work-dir", str(tmp_path / "work"))
    assert result.returncode == 2
    assert "unknown provider 'ghost'" in result.stderr
    assert "Nothing was started" in result.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, mock_port = free_port(), free_port()
    log = tmp_path / "demo.out"
    env = {
        **os.environ,
        "SWITCHYARD_DEMO_PORT": str(port),
        "SWITCHYARD_DEMO_MOCK_PORT": str(mock_port),
        "SWITCHYARD_DEMO_ANTHROPIC_PORT": str(free_port()),
    }
    addresses = ["--work-dir", str(tmp_path / "work"), "--api", f"127.0.0.1:{free_port()}"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchyard", "demo", *addresses, "--log-dir", str(tmp_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    ACTIVE_LOGS.append(("demo", log))
    try:
        wait_for(lambda: "Switchyard is up" in log.read_text() or process.poll() is not None, 40, "the demo to start")
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(20)
        ACTIVE_LOGS.remove(("demo", log))


@pytest.mark.e2e
def test_demo_shows_fallback_with_every_request_succeeding(demo: tuple[str, Path]) -> None:
    url, log = demo
    assert "curl -s " + url in log.read_text()
    body = {"model": "chatgpt-4", "messages": [{"role": "user", "content": "hi"}]}
    targets = []
    for _ in range(20):
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
        assert response.status_code == 200, response.text
        targets.append(response.headers["x-switchyard-target"])
    assert "backup" in targets, "the demo's primary fails half the time; some request must show the fallback"

    messages = {"model": "assistant", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    served = set()
    for _ in range(12):
        response = httpx.post(f"{url}/v1/messages", json=messages, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "message", "an Anthropic client gets Anthropic's shape, whoever served"
        served.add(response.headers["x-switchyard-target"])
    assert served == {"claude", "gpt"}, "the Anthropic mock is overloaded a third of the time: both must serve"


def test_up_refuses_a_listen_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(
            f"listen: 127.0.0.1:{port}\nproviders: {{p: {{kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}}}\n"
            "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
        )
        result = _switchyard("up", str(config), "--work-dir", str(tmp_path / "work"))
    assert result.returncode == 2
    assert f"127.0.0.1:{port} (listen (from the YAML))" in result.stderr
    assert "Nothing was started" in result.stderr


def _valid_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\nproviders: {{p: {{kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    return config


def test_up_refuses_an_admin_socket_something_answers_on(tmp_path: Path) -> None:
    import socket

    work = tmp_path / "work"
    work.mkdir()
    with socket.socket(socket.AF_UNIX) as taken:
        taken.bind(str(work / "envoy-admin.sock"))
        taken.listen()
        config = _valid_config(tmp_path, free_port())
        result = _switchyard("up", str(config), "--work-dir", str(work), "--api", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert f"unix:{work}/envoy-admin.sock (--admin): something already answers on this socket" in result.stderr
    assert "Nothing was started" in result.stderr


@pytest.mark.e2e
def test_up_with_a_tcp_admin_warns_that_it_exposes_the_keys(tmp_path: Path) -> None:
    admin, port = f"127.0.0.1:{free_port()}", free_port()
    log = tmp_path / "up.out"
    argv = ["up", str(_valid_config(tmp_path, port)), "--admin", admin, "--work-dir", str(tmp_path / "work")]
    argv += ["--api", f"127.0.0.1:{free_port()}", "--log-dir", str(tmp_path)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchyard", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    ACTIVE_LOGS.append(("up", log))
    try:
        wait_for(lambda: "Switchyard is up" in log.read_text() or process.poll() is not None, 40, "`up` to start")
        assert process.poll() is None, log.read_text()
        text = log.read_text()
        assert f"WARNING: --admin {admin} is a TCP port: anyone who can reach it can read the provider API keys" in text
        assert f"Envoy admin:  http://{admin}" in text
        assert httpx.get(f"http://{admin}/ready", timeout=5).status_code == 200  # the opt-in works
    finally:
        process.terminate()
        process.wait(20)
        ACTIVE_LOGS.remove(("up", log))


def _printed_routes(banner: str) -> dict[str, set[str]]:
    """`Model NAME: POST /v1/a, /v1/b` lines of the banner: each route and the endpoints it says it serves."""
    found = re.findall(r"^  Model (\S+): POST (.+)$", banner, flags=re.MULTILINE)
    return {model: set(paths.split(", ")) for model, paths in found}


@pytest.mark.e2e
def test_every_route_the_demo_prints_works_with_the_official_sdks(demo: tuple[str, Path]) -> None:
    url, log = demo
    banner = log.read_text()
    routes = _printed_routes(banner)
    assert set(routes) == {"chatgpt-4", "gpt-4", "assistant"}, banner
    openai_client = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
    anthropic_client = anthropic.Anthropic(base_url=url, api_key="any", max_retries=0)
    hello: list[Any] = [{"role": "user", "content": "hello"}]
    every = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/responses"}
    every |= {"/v1/messages/count_tokens", "/v1/responses/input_tokens"}
    for model, paths in routes.items():
        assert paths == every, f"{model} must serve every client: {paths}"
        # The primary of chatgpt-4 fails half the time, Anthropic's mock a third: each call also shows that
        # a fallback answers in the caller's own shape.
        for _ in range(3):
            chat = openai_client.chat.completions.create(model=model, messages=hello)
            assert chat.object == "chat.completion" and chat.choices[0].message.content, (model, chat)
            streamed = openai_client.chat.completions.create(model=model, messages=hello, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices), model
            text = openai_client.completions.create(model=model, prompt="hello")
            assert text.object == "text_completion" and text.choices[0].text, (model, text)
            text_stream = openai_client.completions.create(model=model, prompt="hello", stream=True)
            assert "".join(c.choices[0].text for c in text_stream if c.choices), model
            vectors = openai_client.embeddings.create(model=model, input="hello")
            assert vectors.data and vectors.data[0].embedding, model
            message = anthropic_client.messages.create(model=model, max_tokens=64, messages=hello)
            assert message.type == "message" and message.content[0].type == "text" and message.content[0].text
            with anthropic_client.messages.stream(model=model, max_tokens=64, messages=hello) as stream:
                assert "".join(stream.text_stream), model
            assert anthropic_client.messages.count_tokens(model=model, messages=hello).input_tokens > 0, model
            assert openai_client.responses.input_tokens.count(model=model, input="hello").input_tokens > 0, model


@pytest.mark.e2e
def test_the_demo_runs_on_a_copy_of_its_config(demo: tuple[str, Path]) -> None:
    _, log = demo
    banner = log.read_text()
    (copy,) = re.findall(r"^Demo config: (\S+)$", banner, flags=re.MULTILINE)

    assert Path(copy) != REPO / "examples/demo.yaml"
    assert Path(copy).read_text() == (REPO / "examples/demo.yaml").read_text()
    assert "status" in banner and "switchyard" in banner.split("CLI: ", 1)[1].splitlines()[0]


def test_validate_warns_where_a_suffix_leaves_an_endpoint_unserved(tmp_path: Path) -> None:
    config = tmp_path / "seed.yaml"
    config.write_text(
        "providers:\n  p: {kind: openai, base_url: http://127.0.0.1:9, api_key: sk-x}\nroutes:\n"
        "  - model: chatgpt-4\n"
        "    primary: {provider: p, name: chatgpt-4, suffix: /v1/engines/gpt-4/completions}\n"
        "    backup: {provider: p, name: gpt-3.5, suffix: /v1/engines/gpt-3.5/completions}\n"
    )
    result = _switchyard("validate", str(config))

    assert result.returncode == 0, result.stderr
    assert (
        f"{config}:5: routes[0].primary.suffix: warning: suffix /v1/engines/gpt-4/completions serves "
        "/v1/completions only" in result.stderr
    )
    assert f"{config}:6: routes[0].backup.suffix: warning:" in result.stderr
    assert "no target of chatgpt-4 serves /v1/chat/completions, /v1/embeddings, /v1/messages" in result.stderr
