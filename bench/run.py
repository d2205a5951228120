"""`make bench`: what Switchyard adds to every call, measured side by side in one run.

Variants, each interleaved with the others round by round (a warm-up round is discarded), so machine noise
hits all of them alike:
  A  client → mock provider directly
  P  client → a bare Envoy → mock: one static route, the router filter only (the true floor; bench/bare_envoy.py)
  B  client → Envoy → mock: Switchyard's own Envoy config without the per-attempt rewrite (the design's floor)
  C  client → Switchyard → mock, with a model rename (Envoy's per-attempt rewrite does real work)
  D  client → Switchyard, primary answers 502, backup serves (the failover path, on every request)
  E  client → LiteLLM proxy → mock, same rename (the incumbent Python gateway); E-failover as D
  X  OpenAI client → Switchyard → an Anthropic-shaped mock: the ext_proc translates both ways
  R  like C, from a Responses client (`POST /v1/responses`) to an OpenAI target: native, no Python on the path
  RX like X, from a Responses client: the ext_proc translates Responses ↔ Anthropic Messages
  M  like C, on a route that mixes APIs: the ext_proc filter is there, and Envoy skips it for this attempt
  CA like C, with `clients:`: the key checked (Lua, SHA-256 digests) and a request limit (never reached) on
     every request
  G  like C, on a route with guardrails: personal data masked on the request and on the answer (a downstream
     ext_proc filter, once per client request); the prompt carries an e-mail address to mask
For C, R, X, RX and XB the ext_proc messages are counted and costed on both sides (bench/extproc_messages.py).
Every variant is checked once for the right answer before it is measured. Only loopback is used; every
measurement is bounded in time. Results: bench-results/bench.json and bench-results/bench.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import bare_envoy, extproc_messages, responses_check
from switchyard.supervisor.processes import descendants, envoy_binary, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("SWITCHYARD_BENCH_RESULTS", ROOT / "bench-results"))
CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
TICKS = os.sysconf("SC_CLK_TCK")

_REPORTER = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\\"p50\\":%d,\\"p90\\":%d,\\"p99\\":%d,\\"requests\\":%d,\\"errors\\":%d,\\"non2xx\\":%d,\\"us\\":%d}\\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status, summary.duration))
end
"""


@dataclass
class Variant:
    key: str
    label: str
    base_url: str
    model: str
    pids: Callable[[], list[int]]
    results: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    # The gateway's processes by role (envoy, controlplane, extproc), for CPU per request per process.
    roles: Callable[[], dict[str, list[int]]] = lambda: {}
    # the `switchyard up` whose ext_proc messages are counted (extproc_messages.py); "" for none
    gateway: str = ""
    # the client API: chat completions, or the Responses API (RESPONSES)
    path: str = CHAT
    # what the prompt says before its filler (variant G: personal data for the guardrails to mask)
    prompt: str = ""


def _body(model: str, prompt_bytes: int = 5, stream: bool = False, prompt: str = "") -> bytes:
    content = prompt + "x" * prompt_bytes
    document: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if stream:
        document["stream"] = True
    return json.dumps(document).encode()


def _variant_body(variant: Variant, prompt_bytes: int = 5, stream: bool = False) -> bytes:
    """The same prompt in the variant's client API: chat messages, or a Responses `input`."""
    if variant.path != RESPONSES:
        return _body(variant.model, prompt_bytes, stream, variant.prompt)
    document: dict[str, Any] = {"model": variant.model, "input": "x" * prompt_bytes}
    if stream:
        document["stream"] = True
    return json.dumps(document).encode()


# --- processes ---------------------------------------------------------------------------------------------


def _wait_http(
    url: str, timeout: float, check: Callable[[httpx.Response], bool] = lambda r: r.status_code < 500
) -> None:
    def answers() -> bool:
        try:
            return check(httpx.get(url, timeout=2))
        except httpx.HTTPError:
            return False

    if not wait_until(answers, timeout, 0.1):
        raise RuntimeError(f"{url} did not answer within {timeout}s")


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


BENCH_CLIENT_KEY = "sk-bench-client-0123456789abcdef"
# Variant CA: one client, its key checked on every request, and a request limit so high it is never reached
# (the limiter still runs). A second client with a digest key makes the table more than one entry.
_CLIENTS = f"""
clients:
  bench: {{keys: ["{BENCH_CLIENT_KEY}"], limits: {{requests_per_minute: 10000000}}}}
  other: {{keys: ["sha256:{"0" * 64}"], models: [bench-direct]}}
"""


def _switchyard_config(
    listen: int, ok_url: str, fail_url: str, anthropic_url: str, bedrock_url: str, clients: bool = False
) -> str:
    return (
        (_CLIENTS if clients else "")
        + f"""
listen: 127.0.0.1:{listen}
max_request_body: 4MiB
providers:
  ok: {{kind: openai, base_url: "{ok_url}", api_key: sk-bench}}
  down: {{kind: openai, base_url: "{fail_url}", api_key: sk-bench}}
  claude: {{kind: anthropic, base_url: "{anthropic_url}", api_key: sk-bench}}
  bedrock: {{kind: bedrock, region: us-east-1, base_url: "{bedrock_url}", access_key_id: AKIDBENCH,
             secret_access_key: bench-secret}}
routes:
  - model: bench-bedrock
    targets: [{{name: bedrock, provider: bedrock, model: "anthropic.claude-bench-v1:0"}}]
  - model: bench-cross
    targets: [{{name: claude, provider: claude, model: renamed-claude}}]
  - model: bench-direct
    targets: [{{name: primary, provider: ok, model: renamed-primary}}]
  - model: bench-guard
    targets: [{{name: primary, provider: ok, model: renamed-primary}}]
    guardrails: [{{check: pii, stage: both, action: mask}}]
  - model: bench-mixed
    targets:
      - {{name: primary, provider: ok, model: renamed-primary}}
      - {{name: claude, provider: claude, model: renamed-claude}}
  - model: bench-failover
    health: {{consecutive_failures: 0, failure_rate: null}}   # the failover path on every request, not once
    targets:
      - {{name: primary, provider: down, model: renamed-primary}}
      - {{name: backup, provider: ok, model: renamed-backup}}
"""
    )


def _roles(pids: list[int]) -> dict[str, list[int]]:
    """Processes by role: Envoy, the control plane, the ext_procs (the rest, e.g. the supervisor, left out)."""
    roles: dict[str, list[int]] = {}
    for pid in pids:
        argv = _cmdline(pid).split()
        if argv and Path(argv[0]).name == "envoy":
            roles.setdefault("envoy", []).append(pid)
        elif "controlplane" in argv:
            roles.setdefault("controlplane", []).append(pid)
        elif "extproc" in argv:
            roles.setdefault("extproc", []).append(pid)
    return roles


@contextmanager
def _bare_envoy(work: Path, upstream_url: str) -> Iterator[tuple[str, Callable[[], list[int]]]]:
    listen = free_port()
    path = bare_envoy.write_bootstrap(work / "bare-envoy.json", listen, free_port(), upstream_url)
    argv = [envoy_binary(), "-c", str(path), "--concurrency", "2", "--disable-hot-restart", "-l", "warning"]
    with _process(argv, work / "bare-envoy.log") as envoy:
        _wait_http(f"http://127.0.0.1:{listen}/", 30, lambda r: r.status_code in (200, 404, 405))
        yield f"http://127.0.0.1:{listen}", lambda: [envoy.pid]


@contextmanager
def _switchyard(
    name: str, config: str, work: Path, rewrite: bool
) -> Iterator[tuple[str, Callable[[], list[int]], Callable[[], dict[str, list[int]]]]]:
    path = work / f"{name}.yaml"
    path.write_text(config)
    logs = work / f"{name}-logs"
    logs.mkdir(exist_ok=True)
    costs = extproc_messages.costs_dir(work, name)
    costs.mkdir(exist_ok=True)
    argv = [
        sys.executable, "-m", "switchyard", "up", str(path),
        "--work-dir", str(work / f"{name}-sockets"), "--api", f"127.0.0.1:{free_port()}",
        "--log-dir", str(logs), "--envoy-concurrency", "2",
    ]  # fmt: skip
    if not rewrite:
        argv.append("--no-rewrite")
    listen = config.split("listen: ", 1)[1].split("\n", 1)[0]
    with _process(argv, work / f"{name}-up.log", env={**os.environ, extproc_messages.ENV: str(costs)}) as up:
        _wait_http(f"http://{listen}/v1/models", 60, lambda r: r.status_code in (200, 401))

        def pids() -> list[int]:
            # Envoy and the ext_proc serve requests; the idle control plane is left out of the path's CPU.
            return [p for p in descendants(up.pid) if " controlplane " not in _cmdline(p)]

        yield f"http://{listen}", pids, lambda: _roles(descendants(up.pid))


# --- measurement -------------------------------------------------------------------------------------------


def _wrk(
    url: str, body: bytes, connections: int, seconds: float, scripts: Path, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    extra = "".join(
        f"wrk.headers[{_lua_string(k.encode())}] = {_lua_string(v.encode())}\n" for k, v in (headers or {}).items()
    )
    script = scripts / f"post-{abs(hash((body, extra)))}.lua"
    if not script.exists():
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"{extra}wrk.body = {_lua_string(body)}\n{_REPORTER}"
        )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    result: dict[str, Any] = json.loads(line[len("BENCH ") :])
    result["rps"] = result["requests"] / (result["us"] / 1e6)
    result["wrk_cpu"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (result["us"] / 1e6)
    return result


def _lua_string(body: bytes) -> str:
    return "'" + body.decode().replace("\\", "\\\\").replace("'", "\\'") + "'"


def _measure(variant: Variant, body: bytes, connections: int, seconds: float, scripts: Path) -> dict[str, Any]:
    pids = variant.pids()
    extprocs = [p for p in pids if " extproc " in _cmdline(p)]
    roles = variant.roles()
    roles_before = {role: _cpu_seconds(members) for role, members in roles.items()}
    messages_before = extproc_messages.snapshot(scripts, variant.gateway, pids) if variant.gateway else None
    cpu_before, extproc_before, start = _cpu_seconds(pids), _cpu_seconds(extprocs), time.monotonic()
    result = _wrk(variant.base_url + variant.path, body, connections, seconds, scripts, variant.headers)
    elapsed = time.monotonic() - start
    if messages_before is not None:
        after = extproc_messages.snapshot(scripts, variant.gateway, pids)
        result["extproc_messages"] = extproc_messages.per_request(messages_before, after, result["requests"])
    # µs of CPU per request of each gateway process (the control plane included: it handles every request's logs)
    result["cpu_per_request_us_by_process"] = {
        role: (_cpu_seconds(members) - roles_before[role]) / max(result["requests"], 1) * 1e6
        for role, members in roles.items()
    }
    result["cpu"] = (_cpu_seconds(pids) - cpu_before) / elapsed
    # CPU seconds per request of the variant's own processes (gateway and mock), and of the ext_proc alone
    result["cpu_per_request_ms"] = (_cpu_seconds(pids) - cpu_before) / max(result["requests"], 1) * 1000
    result["extproc_cpu_per_request_ms"] = (_cpu_seconds(extprocs) - extproc_before) / max(result["requests"], 1) * 1000
    return result


def _ttfb(url: str, path: str, body: bytes, count: int) -> list[float]:
    """Time to the first byte of the response body of a streamed request, over one keep-alive connection."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    samples = []
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data or b"data:" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed during a streamed response")
                if not data and b"data:" not in chunk and b"\r\n\r\n" in chunk and b" 200 " not in chunk[:20]:
                    raise RuntimeError(f"streamed request failed: {chunk[:200]!r}")
                data += chunk
            samples.append(time.perf_counter() - started)
            while not data.endswith(b"0\r\n\r\n"):  # drain the rest of the chunked stream
                data += sock.recv(65536)
    return samples


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# --- the run -----------------------------------------------------------------------------------------------


def _check(variant: Variant, expect_model: str, expect_target: str | None = None) -> None:
    response = httpx.post(variant.base_url + variant.path, content=_variant_body(variant), timeout=30,
                          headers={"content-type": "application/json", **variant.headers})  # fmt: skip
    if response.status_code != 200 or response.json().get("model") != expect_model:
        raise RuntimeError(f"variant {variant.key} answered {response.status_code} {response.text[:300]}")
    if expect_target and response.headers.get("x-switchyard-target") != expect_target:
        raise RuntimeError(f"variant {variant.key} was served by {response.headers.get('x-switchyard-target')}")
    if variant.path == RESPONSES:
        responses_check.whole(variant.key, response.json(), expect_model)
        streamed = httpx.post(variant.base_url + variant.path, content=_variant_body(variant, stream=True),
                              timeout=30, headers={"content-type": "application/json", **variant.headers})  # fmt: skip
        if streamed.status_code != 200:
            raise RuntimeError(f"variant {variant.key} streamed {streamed.status_code} {streamed.text[:300]}")
        responses_check.stream(variant.key, streamed.text, expect_model)


FULL = "switchyard"  # the gateway of variants C, D, R, X, RX, M, XB and G
# Variant G's prompt: an address the request's pii rule masks before the provider sees it.
GUARDED_PROMPT = "Write to jane.doe@example.com about "


def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    work = RESULTS / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    scripts = work
    with ExitStack() as stack:
        ok_port, fail_port = free_port(), free_port()
        ok = stack.enter_context(
            _process([sys.executable, "-m", "bench.fast_mock", "--port", str(ok_port)], work / "mock-ok.log")
        )
        fail = stack.enter_context(_process([sys.executable, "-m", "bench.fast_mock", "--port", str(fail_port),
                                             "--status", "502"], work / "mock-fail.log"))  # fmt: skip
        anthropic_port = free_port()
        claude = stack.enter_context(_process([sys.executable, "-m", "bench.fast_mock", "--port", str(anthropic_port),
                                               "--api", "anthropic"], work / "mock-anthropic.log"))  # fmt: skip
        bedrock_port = free_port()
        bedrock = stack.enter_context(_process([sys.executable, "-m", "bench.fast_mock", "--port", str(bedrock_port),
                                                "--api", "bedrock"], work / "mock-bedrock.log"))  # fmt: skip
        ok_url, fail_url = f"http://127.0.0.1:{ok_port}", f"http://127.0.0.1:{fail_port}"
        anthropic_url, bedrock_url = f"http://127.0.0.1:{anthropic_port}", f"http://127.0.0.1:{bedrock_port}"
        for url in (ok_url, anthropic_url, bedrock_url):
            _wait_http(url + "/", 10)
        _wait_http(fail_url + "/", 10, lambda r: True)
        mock_pids = [ok.pid]
        config = _switchyard_config(free_port(), ok_url, fail_url, anthropic_url, bedrock_url)
        full_url, full_pids, full_roles = stack.enter_context(_switchyard(FULL, config, work, rewrite=True))
        floor_config = _switchyard_config(free_port(), ok_url, fail_url, anthropic_url, bedrock_url)
        floor_url, floor_pids, floor_roles = stack.enter_context(
            _switchyard("floor", floor_config, work, rewrite=False)
        )
        clients_config = _switchyard_config(free_port(), ok_url, fail_url, anthropic_url, bedrock_url, clients=True)
        clients_url, clients_pids, _ = stack.enter_context(_switchyard("clients", clients_config, work, rewrite=True))
        bare_url, bare_pids = stack.enter_context(_bare_envoy(work, ok_url))
        variants = [
            Variant("A", "direct to mock", ok_url, "renamed-primary", lambda: mock_pids),
            Variant(
                "P",
                "bare Envoy (true floor)",
                bare_url,
                "bench-direct",
                lambda: [*mock_pids, *bare_pids()],
                roles=lambda: {"envoy": bare_pids()},
            ),
            Variant(
                "B",
                "Envoy only (floor)",
                floor_url,
                "bench-direct",
                lambda: [*mock_pids, *floor_pids()],
                roles=floor_roles,
            ),
            Variant(
                "C",
                "Switchyard",
                full_url,
                "bench-direct",
                lambda: [*mock_pids, *full_pids()],
                roles=full_roles,
                gateway=FULL,
            ),
            # C from a Responses client: the same native per-attempt rewrite, on the Responses path.
            Variant(
                "R",
                "Responses native",
                full_url,
                "bench-direct",
                lambda: [*mock_pids, *full_pids()],
                roles=full_roles,
                gateway=FULL,
                path=RESPONSES,
            ),
            Variant(
                "D", "Switchyard failover", full_url, "bench-failover", lambda: [*mock_pids, fail.pid, *full_pids()]
            ),
            # An OpenAI client served by an Anthropic target: request and response through the translator.
            Variant(
                "X",
                "cross-provider",
                full_url,
                "bench-cross",
                lambda: [claude.pid, *full_pids()],
                roles=full_roles,
                gateway=FULL,
            ),
            # X from a Responses client: Responses ↔ Anthropic Messages, both ways in the ext_proc.
            Variant(
                "RX",
                "Responses translated",
                full_url,
                "bench-cross",
                lambda: [claude.pid, *full_pids()],
                roles=full_roles,
                gateway=FULL,
                path=RESPONSES,
            ),
            # A same-API attempt on a route with a translating target: the matcher skips the ext_proc.
            Variant("M", "mixed route, same API", full_url, "bench-mixed", lambda: [*mock_pids, *full_pids()]),
            # An OpenAI client served by Bedrock: translated twice over (via the Anthropic shape) and signed.
            Variant(
                "XB", "Bedrock (SigV4)", full_url, "bench-bedrock", lambda: [bedrock.pid, *full_pids()], gateway=FULL
            ),
            # C on a route with guardrails (issue 24): personal data masked both ways, in Python, once per request.
            Variant(
                "G",
                "C with PII masking",
                full_url,
                "bench-guard",
                lambda: [*mock_pids, *full_pids()],
                roles=full_roles,
                gateway=FULL,
                prompt=GUARDED_PROMPT,
            ),
            # C behind client keys and request limits (issue 14): what authentication costs every request.
            Variant(
                "CA",
                "C with auth+limits",
                clients_url,
                "bench-direct",
                lambda: [*mock_pids, *clients_pids()],
                headers={"authorization": f"Bearer {BENCH_CLIENT_KEY}"},
            ),
        ]
        checks = {
            "A": ("renamed-primary", None),
            "P": ("bench-direct", None),  # no rewrite: the mock echoes the client's model
            "B": ("bench-direct", None),
            "C": ("renamed-primary", "primary"),
            "R": ("renamed-primary", "primary"),
            "D": ("renamed-backup", "backup"),
            "X": ("renamed-claude", "claude"),  # a translated answer names the target's model
            "RX": ("renamed-claude", "claude"),
            "M": ("renamed-primary", "primary"),
            "XB": ("anthropic.claude-bench-v1:0", "bedrock"),
            "CA": ("renamed-primary", "primary"),
            "G": ("renamed-primary", "primary"),
        }
        for variant in variants:
            _check(variant, *checks[variant.key])
        if not args.skip_litellm and not args.only:
            variants.extend(_litellm_variants(stack, work, ok_url, fail_url))
        if args.only:
            variants = [v for v in variants if v.key in args.only]

        report: dict[str, Any] = {"machine": _machine(), "settings": vars(args), "variants": {}}
        plan: list[tuple[str, Callable[[Variant], bytes], int, int, int]] = [
            ("latency", _variant_body, 1, args.seconds, args.rounds),
            ("large_body", lambda v: _variant_body(v, 200_000), 1, args.seconds, max(2, args.rounds - 1)),
            *[(f"throughput_c{c}", _variant_body, c, args.seconds, max(2, args.rounds - 1)) for c in args.connections],
        ]
        for name, make_body, connections, seconds, rounds in plan:
            print(f"== {name}: {connections} connection(s), {rounds} rounds x {seconds}s per variant", flush=True)
            per_variant: dict[str, list[dict[str, Any]]] = {v.key: [] for v in variants}
            for round_index in range(rounds + 1):  # round 0 warms up and is discarded
                for variant in variants:
                    result = _measure(variant, make_body(variant), connections, seconds, scripts)
                    if round_index:
                        per_variant[variant.key].append(result)
            for variant in variants:
                variant.results[name] = _merge(per_variant[variant.key])
        print("== streaming: time to first byte", flush=True)
        ttfb: dict[str, list[float]] = {v.key: [] for v in variants if v.key in ("A", "B", "C", "R", "X", "RX", "E")}
        if args.only:
            ttfb = {}
        for round_index in range(args.rounds + 1):
            for variant in variants:
                if variant.key in ttfb:
                    try:
                        samples = _ttfb(variant.base_url, variant.path, _variant_body(variant, stream=True), 100)
                    except RuntimeError as error:
                        raise RuntimeError(f"variant {variant.key} ({variant.label}): {error}") from None
                    if round_index:
                        ttfb[variant.key].extend(samples)
        for variant in variants:
            if variant.key in ttfb:
                variant.results["stream_ttfb"] = {
                    "p50": _percentile(ttfb[variant.key], 50) * 1e6,
                    "p99": _percentile(ttfb[variant.key], 99) * 1e6,
                }
        for variant in variants:
            report["variants"][variant.key] = {"label": variant.label, **variant.results}
        if args.soak_seconds > 0 and not args.only:
            report["soak"] = _soak(full_url, _parent_pid(full_pids()[0]), args.soak_seconds, scripts)
    report["ratios"] = _ratios(report["variants"], args.connections)
    report["goals"] = _goals(report["ratios"])
    return report


# --- soak: steady load for a while, and how much memory each gateway process gains ----------------------------

SOAK_ROUTES = {"translated": "bench-cross", "same_api": "bench-direct"}  # variant X's model, and C's


def _parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _rss_kb(pid: int) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), None)


def _gateway_processes(up_pid: int) -> dict[str, int]:
    """Envoy, the control plane and each ext_proc under `switchyard up`, by name."""
    found = {}
    for pid in descendants(up_pid):
        argv = _cmdline(pid).split()
        if argv and Path(argv[0]).name == "envoy":
            found["envoy"] = pid
        elif "controlplane" in argv:
            found["controlplane"] = pid
        elif "extproc" in argv:
            found[argv[argv.index("--instance") + 1] if "--instance" in argv else f"extproc-{pid}"] = pid
    return found


def _soak(url: str, up_pid: int, seconds: int, scripts: Path) -> dict[str, Any]:
    """`seconds` of steady load, half the connections on a translated route and half on a same-API one (one wrk
    each, bounded by -d), with every gateway process's RSS sampled before, during and after."""
    print(f"== soak: {seconds}s of steady load on {' and '.join(SOAK_ROUTES.values())}", flush=True)
    processes = _gateway_processes(up_pid)
    series: list[dict[str, Any]] = []

    def sample() -> None:
        series.append({"t": round(time.monotonic() - started, 2), **{n: _rss_kb(p) for n, p in processes.items()}})

    runs: dict[str, subprocess.Popen[str]] = {}
    started = time.monotonic()
    sample()
    for name, model in SOAK_ROUTES.items():
        script = scripts / f"soak-{name}.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {_lua_string(_body(model))}\n{_REPORTER}"
        )
        argv = ["wrk", "-t1", "-c4", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url + CHAT]
        runs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    interval = max(1.0, seconds / 12)
    while any(r.poll() is None for r in runs.values()) and time.monotonic() - started < seconds + 30:
        time.sleep(min(interval, max(0.05, started + len(series) * interval - time.monotonic())))
        sample()
    routes: dict[str, Any] = {}
    for name, wrk in runs.items():
        output, _ = wrk.communicate(timeout=max(1.0, started + seconds + 30 - time.monotonic()))
        line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"soak wrk ({name}) printed no result:\n{output}")
        result = json.loads(line[len("BENCH ") :])
        routes[name] = {"model": SOAK_ROUTES[name], **result, "rps": result["requests"] / (result["us"] / 1e6)}
    sample()
    total = sum(r["requests"] for r in routes.values())
    rss: dict[str, Any] = {}
    extprocs = sum(1 for name in processes if name.startswith("extproc"))
    for name, pid in processes.items():
        start, end = series[0][name], series[-1][name]
        middle = series[len(series) // 2][name]
        # An ext_proc only sees translated attempts, Envoy spreads them evenly: its growth per request it served.
        served = routes["translated"]["requests"] // extprocs if name.startswith("extproc") else total
        grown = None if start is None or end is None else (end - start) * 1024
        rss[name] = {
            "pid": pid,
            "start_mb": None if start is None else start / 1024,
            "end_mb": None if end is None else end / 1024,  # None: the process died during the soak
            "growth_mb": None if grown is None else grown / 2**20,
            "second_half_growth_mb": None if end is None or middle is None else (end - middle) / 1024,
            "requests_seen": served,
            "growth_bytes_per_request": None if grown is None else grown / max(served, 1),
        }
    return {"seconds": seconds, "requests": total, "routes": routes, "rss": rss, "rss_series_kb": series}


def _goals(ratios: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The targets the benchmark exists to track (issues 9, 21 and 25); measured, reported, never asserted."""
    checks = [
        ("C throughput / B throughput", "C_over_B_throughput", ">= 0.70", lambda v: v >= 0.70),
        ("C adds over B at p50 (ms)", "C_added_over_B_p50_ms", "<= 0.15", lambda v: v <= 0.15),
        ("C adds over a direct call at p50 (ms)", "C_added_p50_ms", "<= 0.3", lambda v: v <= 0.3),
        ("C adds over a direct call at p99 (ms)", "C_added_p99_ms", "<= 1.0", lambda v: v <= 1.0),
        ("D adds over a direct call at p50 (ms)", "D_added_over_direct_p50_ms", "<= 1.0", lambda v: v <= 1.0),
        ("X adds over C at p50 (ms)", "X_added_over_C_p50_ms", "<= 1.0", lambda v: v <= 1.0),
        ("X throughput / C throughput", "X_over_C_throughput", ">= 0.5", lambda v: v >= 0.5),
        ("ext_proc CPU per X request (us)", "X_extproc_cpu_per_request_us", "<= 400", lambda v: v <= 400),
        ("C throughput / E throughput", "C_over_E_throughput", ">= 50", lambda v: v >= 50),
        # issue 21: against a bare Envoy
        ("C throughput / P throughput", "C_over_P_throughput", ">= 0.60", lambda v: v >= 0.60),
        ("C adds over P at p50 (ms)", "C_added_over_P_p50_ms", "<= 0.15", lambda v: v <= 0.15),
        ("C's Envoy CPU per request / P's", "C_over_P_envoy_cpu_per_request", "<= 1.6", lambda v: v <= 1.6),
        ("control plane CPU per request (us)", "C_controlplane_cpu_per_request_us", "<= 20", lambda v: v <= 20),
    ]
    return {
        name: {"value": ratios[key], "goal": goal, "met": bool(test(ratios[key]))}
        for name, key, goal, test in checks
        if key in ratios
    }


def _litellm_variants(stack: ExitStack, work: Path, ok_url: str, fail_url: str) -> list[Variant]:
    from bench import litellm_proxy

    print("== preparing LiteLLM (a separate virtualenv, installed once)", flush=True)
    exe = litellm_proxy.ensure_litellm(RESULTS / "litellm-venv")
    proxy = litellm_proxy.LiteLLMProxy(
        exe, free_port(), primary_url=fail_url, backup_url=ok_url, workdir=work, direct_url=ok_url
    )
    proxy.start()
    stack.callback(proxy.stop)
    variants = [
        Variant("E", "LiteLLM proxy", proxy.url, litellm_proxy.DIRECT_MODEL, proxy.pids),
        Variant("E-failover", "LiteLLM failover", proxy.url, litellm_proxy.CLIENT_MODEL, proxy.pids),
    ]
    # LiteLLM stamps the client's model on a direct answer and the deployment's on a fallback one; what the
    # provider received is checked by `python -m bench.litellm_proxy --check`.
    _check(variants[0], litellm_proxy.DIRECT_RESPONSE_MODEL)
    _check(variants[1], litellm_proxy.FAILOVER_RESPONSE_MODEL)
    return variants


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each number over the measured rounds (nested figures too)."""
    merged: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        merged[key] = _merge(values) if isinstance(values[0], dict) else statistics.median(values)
    return merged


def _ratios(variants: dict[str, Any], connections: list[int]) -> dict[str, Any]:
    best = {k: max(v.get(f"throughput_c{n}", {}).get("rps", 0) for n in connections) for k, v in variants.items()}
    ratios: dict[str, Any] = {}
    if "CA" in variants and "C" in variants:
        # what client authentication and request limits cost a request
        ratios["CA_over_C_throughput"] = best["CA"] / best["C"]
        ratios["CA_added_over_C_p50_ms"] = (variants["CA"]["latency"]["p50"] - variants["C"]["latency"]["p50"]) / 1000
    ratios |= _responses_client(variants, best)
    ratios |= _against_bare_envoy(variants, connections, best)
    if "G" in variants and "C" in variants:
        # what guardrails (PII masked on the request and the answer) cost a request over the same route without
        ratios["G_added_over_C_p50_ms"] = (variants["G"]["latency"]["p50"] - variants["C"]["latency"]["p50"]) / 1000
        ratios["G_over_C_throughput"] = best["G"] / best["C"]
        widest = f"throughput_c{max(connections)}"
        g_cpu, c_cpu = (variants[k][widest]["cpu_per_request_us_by_process"] for k in ("G", "C"))
        ratios["G_added_cpu_per_request_us"] = sum(g_cpu.values()) - sum(c_cpu.values())
    if "X" in variants and "C" in variants:
        # what translating to another API costs over a same-API attempt (issue 25)
        ratios["X_over_C_throughput"] = best["X"] / best["C"]
        ratios["X_added_over_C_p50_ms"] = (variants["X"]["latency"]["p50"] - variants["C"]["latency"]["p50"]) / 1000
        widest = f"throughput_c{max(connections)}"
        ratios["X_extproc_cpu_per_request_us"] = variants["X"][widest]["extproc_cpu_per_request_ms"] * 1000
    if not {"A", "B", "C", "D", "X", "M", "XB"} <= set(variants):  # --only: these need variants not measured
        return ratios
    a, c = variants["A"]["latency"], variants["C"]["latency"]
    ratios |= {
        "C_added_p50_ms": (c["p50"] - a["p50"]) / 1000,
        "C_added_p99_ms": (c["p99"] - a["p99"]) / 1000,
        "C_added_over_B_p50_ms": (c["p50"] - variants["B"]["latency"]["p50"]) / 1000,
        "D_added_over_direct_p50_ms": (variants["D"]["latency"]["p50"] - a["p50"]) / 1000,
        # the failover's own cost: D against the same gateway answering from its first target
        "D_added_over_C_p50_ms": (variants["D"]["latency"]["p50"] - c["p50"]) / 1000,
    }
    ratios["C_over_B_throughput"] = best["C"] / best["B"]
    # what the skipped ext_proc filter costs a same-API attempt on a route that mixes APIs
    ratios["M_added_over_C_p50_ms"] = (variants["M"]["latency"]["p50"] - c["p50"]) / 1000
    ratios["M_over_C_throughput"] = best["M"] / best["C"]
    # what a Bedrock attempt costs over an Anthropic-translated one: the second translation and SigV4
    ratios["XB_added_over_X_p50_ms"] = (variants["XB"]["latency"]["p50"] - variants["X"]["latency"]["p50"]) / 1000
    if "E" in variants:
        e = variants["E"]["latency"]
        ratios["C_over_E_throughput"] = best["C"] / best["E"]
        added_c = max(c["p50"] - a["p50"], 1)
        ratios["E_added_over_C_added_p50"] = (e["p50"] - a["p50"]) / added_c
    return ratios


def _responses_client(variants: dict[str, Any], best: dict[str, float]) -> dict[str, float]:
    """A Responses client against a chat client on the same path (issue 19): R against C (native), RX against X
    (translated to Anthropic's API)."""
    ratios: dict[str, float] = {}
    for responses, chat in (("R", "C"), ("RX", "X")):
        if responses in variants and chat in variants:
            added = variants[responses]["latency"]["p50"] - variants[chat]["latency"]["p50"]
            ratios[f"{responses}_over_{chat}_throughput"] = best[responses] / best[chat]
            ratios[f"{responses}_added_over_{chat}_p50_ms"] = added / 1000
    return ratios


def _against_bare_envoy(variants: dict[str, Any], connections: list[int], best: dict[str, float]) -> dict[str, float]:
    """C against P, the bare Envoy (issue 21): throughput, the latency each adds over a direct call, and CPU per
    request (Switchyard's Envoy alone, and the whole gateway with its control plane and ext_procs)."""
    if not {"A", "P", "C"} <= set(variants):
        return {}
    a, p, c = (variants[k]["latency"] for k in ("A", "P", "C"))
    widest = f"throughput_c{max(connections)}"
    p_cpu = variants["P"][widest]["cpu_per_request_us_by_process"]
    c_cpu = variants["C"][widest]["cpu_per_request_us_by_process"]
    return {
        "C_over_P_throughput": best["C"] / best["P"],
        "P_added_p50_ms": (p["p50"] - a["p50"]) / 1000,
        "C_added_over_P_p50_ms": (c["p50"] - p["p50"]) / 1000,
        "C_over_P_envoy_cpu_per_request": c_cpu.get("envoy", 0.0) / max(p_cpu.get("envoy", 0.0), 1e-9),
        "C_over_P_gateway_cpu_per_request": sum(c_cpu.values()) / max(p_cpu.get("envoy", 0.0), 1e-9),
        "C_controlplane_cpu_per_request_us": c_cpu.get("controlplane", 0.0),
    }


def _machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "kernel": platform.release()}


def _print_report(report: dict[str, Any]) -> None:
    variants = report["variants"]
    a = variants.get("A", next(iter(variants.values())))["latency"]  # "added" is over the first with --only
    print(f"\nMachine: {report['machine']['cores']} cores, {report['machine']['cpu']}")
    print(f"{'variant':<24}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'added p50':>11}{'added p99':>11}"
          f"{'200KB p50':>11}{'TTFB p50':>10}")  # fmt: skip
    for key, v in variants.items():
        lat, large = v["latency"], v.get("large_body", {})
        ttfb = v.get("stream_ttfb", {}).get("p50")
        print(
            f"{key + ' ' + v['label']:<24}{lat['p50'] / 1000:>8.2f}{lat['p90'] / 1000:>8.2f}{lat['p99'] / 1000:>8.2f}"
            f"{(lat['p50'] - a['p50']) / 1000:>11.2f}{(lat['p99'] - a['p99']) / 1000:>11.2f}"
            f"{large.get('p50', 0) / 1000:>11.2f}{'' if ttfb is None else f'{ttfb / 1000:.2f}':>10}"
        )
    print(f"\n{'throughput (req/s)':<24}" + "".join(f"{k:>14}" for k in report["settings"]["connections"]))
    for key, v in variants.items():
        cells = []
        for n in report["settings"]["connections"]:
            t = v[f"throughput_c{n}"]
            cells.append(f"{t['rps']:>8.0f} {t['cpu'] * 100:>3.0f}%" + ("!" if t["errors"] + t["non2xx"] else " "))
        print(f"{key + ' ' + v['label']:<24}" + "".join(f"{c:>14}" for c in cells))
    print("(cpu% = the variant's own processes; ! = errors or non-2xx answers)")
    widest = f"throughput_c{max(report['settings']['connections'])}"
    print(
        f"\nCPU per request at {widest.rsplit('c', 1)[1]} connections (ms, gateway + mock processes; ext_proc alone):"
    )
    for key, v in variants.items():
        t = v[widest]
        print(f"  {key + ' ' + v['label']:<24}{t['cpu_per_request_ms']:>8.3f}{t['extproc_cpu_per_request_ms']:>10.3f}")
    print(f"\nCPU per request per process at {widest.rsplit('c', 1)[1]} connections (us):")
    for key, v in variants.items():
        by_process = v[widest].get("cpu_per_request_us_by_process") or {}
        if by_process:
            cells = "  ".join(f"{role} {us:.0f}" for role, us in sorted(by_process.items()))
            print(f"  {key + ' ' + v['label']:<24}{cells}  (total {sum(by_process.values()):.0f})")
    extproc_messages.print_report(variants, widest)
    print("\nratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in report["ratios"].items()))
    print("\ngoals (issues 9, 21 and 25):")
    for name, goal in report["goals"].items():
        print(f"  {'met    ' if goal['met'] else 'NOT met'}  {name}: {goal['value']:.2f} (goal {goal['goal']})")
    if "soak" in report:
        _print_soak(report["soak"])


def _print_soak(soak: dict[str, Any]) -> None:
    parts = []
    for r in soak["routes"].values():
        bad = r["errors"] + r["non2xx"]
        parts.append(f"{r['model']} {r['requests']} ({r['rps']:.0f}/s{f', {bad} errors' if bad else ''})")
    print(f"\nsoak: {soak['seconds']}s, {soak['requests']} requests: {', '.join(parts)}")
    print(f"  {'RSS':<14}{'start MB':>10}{'end MB':>9}{'growth MB':>11}{'2nd half MB':>13}{'B/request':>11}  per")
    for name, p in soak["rss"].items():
        if p["end_mb"] is None:
            print(f"  {name:<14}{p['start_mb'] or 0:>10.1f}  (died during the soak)")
            continue
        per = "translated request it served" if name.startswith("extproc") else "request"
        print(
            f"  {name:<14}{p['start_mb']:>10.1f}{p['end_mb']:>9.1f}{p['growth_mb']:>11.2f}"
            f"{p['second_half_growth_mb']:>13.2f}{p['growth_bytes_per_request']:>11.1f}  {per}"
        )


def _chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = report["variants"]
    keys = list(variants)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.25
    for i, q in enumerate(("p50", "p90", "p99")):
        left.bar([k + (i - 1) * width for k in range(len(keys))], [variants[k]["latency"][q] / 1000 for k in keys],
                 width, label=q)  # fmt: skip
    tick_labels = [f"{k}\n" + "\n".join(textwrap.wrap(variants[k]["label"], 12)) for k in keys]
    left.set_xticks(range(len(keys)), tick_labels, fontsize=7)
    left.set_ylabel("latency at concurrency 1 (ms)")
    left.set_title("Latency per request")
    left.legend()
    connections = report["settings"]["connections"]
    for i, n in enumerate(connections):
        offset = (i - (len(connections) - 1) / 2) * width
        right.bar([k + offset for k in range(len(keys))], [variants[k][f"throughput_c{n}"]["rps"] for k in keys],
                  width, label=f"{n} connections")  # fmt: skip
    right.set_xticks(range(len(keys)), tick_labels, fontsize=7)
    right.set_yscale("log")  # the direct call is ~5x Envoy and ~40x Switchyard: linear bars hide the rest
    right.set_ylabel("requests per second (log scale)")
    right.set_title("Throughput")
    right.legend()
    machine = report["machine"]
    fig.suptitle(f"Switchyard benchmark — {machine['cores']} cores, {machine['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="make bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=3, help="duration of one measurement (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per test, after one warm-up round")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32], help="throughput connection counts")
    parser.add_argument("--skip-litellm", action="store_true", help="leave out variant E (no LiteLLM install)")
    parser.add_argument(
        "--only", nargs="+", metavar="VARIANT", help="measure only these variants (e.g. C CA); no soak, no streaming"
    )
    parser.add_argument(
        "--soak-seconds", type=int, default=60, help="steady load at the end, with RSS per process (0: no soak)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk (make bench installs it)")
    started = time.monotonic()
    report = run(args)
    report["duration_s"] = time.monotonic() - started
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2))
    _print_report(report)
    _chart(report, RESULTS / "bench.png")
    print(f"\nwrote {RESULTS / 'bench.json'} and {RESULTS / 'bench.png'} in {report['duration_s']:.0f}s")


if __name__ == "__main__":
    main()
