"""Where provider keys live, proved with canary keys on a running gateway.

Keys reach Envoy over ADS (on a Unix socket) and live in its memory, in the endpoint of the target that uses
them. They must reach the provider in its own header and nowhere else a person or another program could read:
no TCP port of the gateway's processes, no log, no file Switchyard writes, no client answer, no command line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import descendants, free_port
from tests.support.harness import MockProvider, Stack, running_stack

pytestmark = pytest.mark.e2e

# Paths that show state on the HTTP servers the gateway runs (Envoy's admin paths included, in case an admin
# ever listens on TCP again).
_PROBE_PATHS = (
    "/",
    "/status",
    "/metrics",
    "/v1/models",
    "/config_dump",
    "/config_dump?include_eds",
    "/clusters",
    "/stats",
    "/server_info",
)


@pytest.fixture(scope="module")
def canaries() -> dict[str, str]:
    return {
        "CANARY_OPENAI_KEY": f"sk-canary-{secrets.token_hex(12)}",
        "CANARY_AZURE_KEY": f"canary-azure-{secrets.token_hex(12)}",
    }


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("keys", tmp_path_factory.mktemp("mock"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mock: MockProvider, canaries: dict[str, str]) -> Iterator[Stack]:
    config = f"""
listen: 127.0.0.1:{free_port()}
providers:
  openai: {{kind: openai, base_url: "{mock.url}", api_key: "${{CANARY_OPENAI_KEY}}"}}
  azure: {{kind: azure_openai, base_url: "{mock.url}", api_key: "${{CANARY_AZURE_KEY}}"}}
routes:
  - model: keyed
    fallback_codes: [502]
    targets:
      - {{name: primary, provider: openai, model: keyed-primary}}
      - {{name: backup, provider: azure, model: keyed-backup}}
"""
    with running_stack(config, tmp_path_factory.mktemp("stack"), env=canaries) as running:
        yield running


def _listening_tcp_ports(pids: list[int]) -> set[int]:
    """The TCP ports these processes listen on, from /proc: their socket inodes against the LISTEN table."""
    inodes: set[str] = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
        except OSError:
            continue
        inodes.update(link[len("socket:[") : -1] for link in links if link.startswith("socket:["))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_keys_reach_each_provider_in_its_own_header_and_nowhere_else(
    stack: Stack, mock: MockProvider, canaries: dict[str, str]
) -> None:
    openai_key, azure_key = canaries["CANARY_OPENAI_KEY"], canaries["CANARY_AZURE_KEY"]
    answers: list[httpx.Response] = []
    mock.set_rules([{"match": {"model": "keyed-primary"}, "status": 502, "times": 1}])
    answers.append(stack.chat("keyed", headers={"authorization": "Bearer client-own-key"}))  # primary → backup
    answers.append(stack.chat("keyed"))  # primary serves
    answers.append(stack.client.post("/v1/chat/completions", content=b"{not json"))
    answers.append(stack.chat("no-such-model"))
    answers.append(stack.client.get("/v1/models"))
    assert [a.status_code for a in answers] == [200, 200, 400, 404, 200]

    # The provider got each key in its own header, on the attempts to its own target only.
    received = {r["body"]["model"]: r["headers"] for r in mock.requests() if isinstance(r["body"], dict)}
    assert received["keyed-primary"]["authorization"] == f"Bearer {openai_key}"
    assert received["keyed-backup"]["api-key"] == azure_key
    assert "authorization" not in received["keyed-backup"], "neither the client's key nor the primary's"
    assert not any(name.startswith("x-switchyard-") for h in received.values() for name in h)

    # No client answer shows a key.
    for answer in answers:
        shown = answer.text + repr(answer.headers)
        assert openai_key not in shown and azure_key not in shown

    gateway = [stack.process.pid, *descendants(stack.process.pid)]
    # No command line carries a key (they come from the environment).
    for pid in gateway:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert openai_key.encode() not in cmdline and azure_key.encode() not in cmdline

    # TCP: only the client listener and the status API listen; neither shows a key on any path.
    ports = _listening_tcp_ports(gateway)
    listen_port = int(stack.url.rsplit(":", 1)[1])
    api_port = int(stack.api.rsplit(":", 1)[1])
    assert ports == {listen_port, api_port}, "admin, xDS and ext_proc must not listen on TCP"
    for port in ports:
        for path in _PROBE_PATHS:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).text
            except httpx.HTTPError:
                continue
            assert openai_key not in text and azure_key not in text, f"port {port} {path}"

    # No log and no file Switchyard wrote (bootstrap, saved config, logs) holds a key.
    for path in stack.log_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert openai_key.encode() not in data and azure_key.encode() not in data, str(path)


def test_bedrock_credentials_and_gemini_keys_stay_as_private_as_every_other_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Bedrock's secret signs each attempt in the ext_proc (over a Unix socket) and never travels itself;
    Gemini's key goes in its own header only. Neither shows up in an answer, a log, a file or a command line."""
    from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY

    gemini_key = f"g-canary-{secrets.token_hex(12)}"
    env = {
        "CANARY_GEMINI_KEY": gemini_key,
        "CANARY_AWS_ID": TEST_ACCESS_KEY_ID,
        "CANARY_AWS_SECRET": TEST_SECRET_ACCESS_KEY,
    }
    bedrock = MockProvider("br-keys", tmp_path_factory.mktemp("br"), ("--api", "bedrock"))
    gemini = MockProvider("gm-keys", tmp_path_factory.mktemp("gm"), ("--api", "gemini"))
    config = f"""
listen: 127.0.0.1:{free_port()}
providers:
  br: {{kind: bedrock, region: eu-west-1, base_url: "{bedrock.url}", access_key_id: "${{CANARY_AWS_ID}}",
        secret_access_key: "${{CANARY_AWS_SECRET}}"}}
  gm: {{kind: gemini, base_url: "{gemini.url}", api_key: "${{CANARY_GEMINI_KEY}}"}}
routes:
  - model: keyed
    targets:
      - {{name: bedrock, provider: br, model: "anthropic.claude-3-haiku-20240307-v1:0"}}
      - {{name: gemini, provider: gm, model: gemini-2.5-flash}}
"""
    secrets_ = (gemini_key.encode(), TEST_SECRET_ACCESS_KEY.encode())
    try:
        with running_stack(config, tmp_path_factory.mktemp("stack"), env=env) as stack:
            bedrock.set_rules([{"status": 503, "times": 1}])
            answers = [stack.chat("keyed", headers={"authorization": "Bearer client-own-key"}), stack.chat("keyed")]
            assert [(a.status_code, a.headers["x-switchyard-target"]) for a in answers] == [
                (200, "gemini"),
                (200, "bedrock"),
            ]
            (to_gemini,) = gemini.requests()
            assert to_gemini["headers"]["x-goog-api-key"] == gemini_key
            assert "authorization" not in to_gemini["headers"], "neither the client's key nor a signature"
            assert not any(n.startswith(("x-amz-", "x-switchyard-")) for n in to_gemini["headers"])
            for sent in bedrock.requests():
                assert "x-goog-api-key" not in sent["headers"]
                assert TEST_SECRET_ACCESS_KEY not in repr(sent), "only the signature travels"
            gateway = [stack.process.pid, *descendants(stack.process.pid)]
            for pid in gateway:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                assert not any(s in cmdline for s in secrets_)
            for answer in answers:
                assert not any(s in answer.content + repr(answer.headers).encode() for s in secrets_)
            for path in stack.log_dir.rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert not any(s in data for s in secrets_), str(path)
    finally:
        bedrock.stop()
        gemini.stop()
