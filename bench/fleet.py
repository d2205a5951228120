"""`make bench-fleet`: how many fleet requests per second one control-plane replica core absorbs (issue 21).

A generator plays many nodes' telemetry into one real control plane (`switchyard controlplane`): per node, an
answer-log and an attempt-log stream over the real gRPC access-log service, carrying real protobuf entries in
the shapes Envoy sends (the fields, tags and timings of entries captured from Envoy 1.40), flushed every
0.25 s as Envoy does. Every 100th request fails over: a 502 attempt in the attempt log, then the backup's
answer. Halfway through, one node sends three 502s in a row for a probe target; the time until the control
plane's /status shows it ejected is the health delay. At the end, /usage must hold exactly the tokens sent.

Reported: the control plane's CPU per fleet request (from /proc), hence fleet requests/s per replica core,
the health delay, whether usage is exact, and what the control plane counted as not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2

from controlplane import answer_summary as summary
from controlplane.target_keys import target_key
from extproc.answer_bytes import varint
from switchyard.config import load_config_text
from switchyard.contract import ANSWER_LOG_NAME, ANSWER_SUMMARY_TAG, ATTEMPT_LOG_NAME, TARGET_KEY_TAG
from switchyard.supervisor.processes import free_port, wait_until

TICKS = os.sysconf("SC_CLK_TCK")
FLUSH_S = 0.25  # Envoy's buffer_flush_interval
ROUTES = 8
CLIENTS = ("team-a", "team-b", "team-c")
PROMPT_TOKENS, COMPLETION_TOKENS = 9, 1
FAIL_EVERY = 100
_ID_WIDTH = 36  # a request id as Envoy makes it (a UUID)
_PLACEHOLDER = "R" * _ID_WIDTH
_START_PLACEHOLDER = "S" * 20  # an answer's start as Envoy spells it in the summary: 1796601193.795204000


def _config(listen: int) -> str:
    clients = "".join(f"  {name}: {{keys: [sk-fleet-{name}-0123456789abcdef]}}\n" for name in CLIENTS)
    routes = "".join(
        f"  - model: m{i}\n    targets:\n      - {{name: primary, provider: p, model: a}}\n"
        f"      - {{name: backup, provider: p, model: b}}\n"
        for i in range(ROUTES)
    )
    return (
        f"listen: 127.0.0.1:{listen}\nproviders:\n  p: {{kind: openai, base_url: http://127.0.0.1:9, api_key: sk-x}}\n"
        f"clients:\n{clients}routes:\n{routes}"
        "  - model: probe\n    targets:\n      - {name: primary, provider: p, model: a}\n"
        "      - {name: backup, provider: p, model: b}\n"
    )


def _entry(key: str, status: int, answer: bool, client: str = "", attempts: int = 1) -> bytes:
    """One entry as Envoy fills it (addresses, timings, cluster, route, metadata, tags, request, response),
    serialized with a placeholder request id."""
    entry = accesslog_pb2.HTTPAccessLogEntry(protocol_version=accesslog_pb2.HTTPAccessLogEntry.HTTP11)
    common = entry.common_properties
    for field, port in (("downstream_remote_address", 35124), ("downstream_local_address", 19180),
                        ("upstream_remote_address", 443), ("upstream_local_address", 34598),
                        ("downstream_direct_remote_address", 35124)):  # fmt: skip
        address = getattr(common, field).socket_address
        address.address, address.port_value = "10.0.0.1", port
    common.start_time.FromNanoseconds(1_796_601_193_795_204_000)
    for field, nanos in (("time_to_last_rx_byte", 78_176), ("time_to_first_upstream_tx_byte", 569_303),
                         ("time_to_last_upstream_tx_byte", 572_439), ("time_to_first_upstream_rx_byte", 5_515_708),
                         ("time_to_last_upstream_rx_byte", 5_571_011), ("time_to_first_downstream_tx_byte", 5_624_511),
                         ("time_to_last_downstream_tx_byte", 5_630_672), ("duration", 5_632_936)):  # fmt: skip
        getattr(common, field).FromNanoseconds(nanos)
    common.upstream_cluster = "route/m0"
    common.route_name = "chat:m0"
    if answer:
        common.upstream_request_attempt_count = attempts
        common.stream_id = _PLACEHOLDER
        common.metadata.filter_metadata["switchyard"].update({"model": "m0"})
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}
        common.metadata.filter_metadata["switchyard.usage"].update(usage)
        fields = [""] * len(summary.FIELDS)  # the answer summary as Envoy formats it (controlplane/answer_summary.py)
        fields[summary.TARGET], fields[summary.STATUS], fields[summary.DETAILS] = key, str(status), "via_upstream"
        fields[summary.ATTEMPTS], fields[summary.FIRST_BYTE_US], fields[summary.UPSTREAM_US] = (
            str(attempts),
            "4946",
            "5001",
        )
        fields[summary.START], fields[summary.DURATION_US] = _START_PLACEHOLDER, "5630"
        for name, value in usage.items():
            fields[summary.USAGE[name]] = str(value)
        fields[summary.REQUEST_ID], fields[summary.ROUTE] = _PLACEHOLDER, "chat:m0"
        common.custom_tags[ANSWER_SUMMARY_TAG] = summary.SEPARATOR.join(fields)
        common.custom_tags["client"] = client
        common.access_log_type = accesslog_pb2.DownstreamEnd
    else:
        common.custom_tags[TARGET_KEY_TAG] = key
        common.access_log_type = accesslog_pb2.UpstreamEnd
    common.downstream_wire_bytes_sent, common.downstream_wire_bytes_received = 434, 184
    common.upstream_wire_bytes_sent, common.upstream_wire_bytes_received = 296, 321
    request = entry.request
    request.request_method = base_pb2.POST
    request.scheme, request.authority, request.path = "http", "10.0.0.1:443", "/v1/chat/completions"
    request.request_id = _PLACEHOLDER
    request.request_headers_bytes, request.request_body_bytes = 213, 71
    entry.response.response_code.value = status
    entry.response.response_code_details = "via_upstream"
    entry.response.response_headers_bytes, entry.response.response_body_bytes = 152, 249
    return bytes(entry.SerializeToString())


def _message(entries: list[bytes], identifier: bytes = b"") -> bytes:
    """StreamAccessLogsMessage{identifier, http_logs{log_entry...}} from serialized entries, without parsing."""
    logs = b"".join(b"\x0a" + varint(len(e)) + e for e in entries)
    return identifier + b"\x12" + varint(len(logs)) + logs


def _identifier(node: str, log_name: str) -> bytes:
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id = node
    message.identifier.log_name = log_name
    return bytes(message.SerializeToString())


class Fleet:
    def __init__(self, config: str, nodes: int) -> None:
        parsed = load_config_text(config, source="fleet")
        keys = {(r.model, t.display_name): target_key(r, t) for r in parsed.routes for t in r.targets}
        self.nodes = [f"node-{i:03d}" for i in range(nodes)]
        self.answers = [
            [_entry(keys[(f"m{r}", "primary")], 200, True, client) for client in CLIENTS] for r in range(ROUTES)
        ]
        self.failover_answers = [
            [_entry(keys[(f"m{r}", "backup")], 200, True, client, attempts=2) for client in CLIENTS]
            for r in range(ROUTES)
        ]
        self.failures = [_entry(keys[(f"m{r}", "primary")], 502, False) for r in range(ROUTES)]
        self.probe_failure = _entry(keys[("probe", "primary")], 502, False)
        self.sent_requests = 0
        self.probe_sent_at: float | None = None

    def batch(self, node: int, sequence: int, count: int, probe: bool) -> tuple[list[bytes], list[bytes]]:
        """One flush of one node: answer entries and attempt entries, each request id unique in the run."""
        answers: list[bytes] = []
        attempts: list[bytes] = []
        for i in range(count):
            number = sequence + i
            request_id = f"{node:06d}-{number:029d}".encode()
            route, client = number % ROUTES, number % len(CLIENTS)
            if number % FAIL_EVERY == FAIL_EVERY - 1:
                attempts.append(self.failures[route].replace(_PLACEHOLDER.encode(), request_id))
                template = self.failover_answers[route][client]
            else:
                template = self.answers[route][client]
            start = f"{time.time() + i * 1e-6:.9f}".encode()  # starts that grow, as a node's do
            answers.append(
                template.replace(_PLACEHOLDER.encode(), request_id).replace(_START_PLACEHOLDER.encode(), start)
            )
        if probe:
            attempts.extend([self.probe_failure.replace(_PLACEHOLDER.encode(), b"P" * _ID_WIDTH)] * 3)
        return answers, attempts

    async def play(self, target: str, rate: float, seconds: float) -> None:
        channel = grpc.aio.insecure_channel(target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
        call = channel.stream_unary(
            "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
            request_serializer=lambda data: data,
            response_deserializer=als_pb2.StreamAccessLogsResponse.FromString,
        )
        queues: dict[tuple[int, str], asyncio.Queue[bytes | None]] = {}
        streams = []
        for n, node in enumerate(self.nodes):
            for log_name in (ANSWER_LOG_NAME, ATTEMPT_LOG_NAME):
                queue: asyncio.Queue[bytes | None] = asyncio.Queue()
                queues[(n, log_name)] = queue
                streams.append(asyncio.ensure_future(call(_drain(queue, _identifier(node, log_name)))))
        per_flush = rate * FLUSH_S / len(self.nodes)
        started = time.monotonic()
        flushes = int(seconds / FLUSH_S)
        owed = [0.0] * len(self.nodes)
        for flush in range(flushes):
            for n in range(len(self.nodes)):
                owed[n] += per_flush
                count = int(owed[n])
                owed[n] -= count
                probe = flush == flushes // 2 and n == 0
                answers, attempts = self.batch(n, self.sent_requests, count, probe)
                self.sent_requests += count
                queues[(n, ANSWER_LOG_NAME)].put_nowait(_message(answers))
                if attempts:
                    queues[(n, ATTEMPT_LOG_NAME)].put_nowait(_message(attempts))
                if probe:
                    self.probe_sent_at = time.time()
            await asyncio.sleep(max(0.0, started + (flush + 1) * FLUSH_S - time.monotonic()))
        for queue in queues.values():
            queue.put_nowait(None)
        await asyncio.gather(*streams)
        await channel.close()


async def _drain(queue: asyncio.Queue[bytes | None], identifier: bytes) -> Any:
    first = True
    while (data := await queue.get()) is not None:
        yield (identifier + data) if first else data
        first = False
    if first:  # nothing to send on this stream: the identifier alone opens it, as Envoy's first message does
        yield identifier + b"\x12\x00"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _probe_state(status: dict[str, Any]) -> str:
    route = next(r for r in status["routes"] if r["model"] == "probe")
    return str(route["targets"][0]["state"])


def run(rate: float, seconds: float, nodes: int, work: Path) -> dict[str, Any]:
    grpc_port, api_port = free_port(), free_port()
    config_path = work / "fleet.yaml"
    config = _config(free_port())
    config_path.write_text(config)
    argv = [sys.executable, "-m", "switchyard", "--log-level", "warning", "controlplane", str(config_path),
            "--listen", f"127.0.0.1:{grpc_port}", "--api", f"127.0.0.1:{api_port}",
            "--state-dir", str(work)]  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    with open(work / "controlplane.log", "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_until(lambda: _answers(api + "/status"), 30, 0.1):
            raise RuntimeError(f"the control plane did not start: see {work / 'controlplane.log'}")
        fleet = Fleet(config, nodes)
        ejected_at: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set() and not ejected_at:
                if fleet.probe_sent_at is not None and _probe_state(_get(api + "/status")) == "ejected":
                    ejected_at.append(time.time())
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        cpu_before, wall_before = _cpu_seconds(process.pid), time.monotonic()
        asyncio.run(fleet.play(f"127.0.0.1:{grpc_port}", rate, seconds))
        sent_seconds = time.monotonic() - wall_before
        expected = fleet.sent_requests * (PROMPT_TOKENS + COMPLETION_TOKENS)

        def settled() -> bool:
            return bool(_get(api + "/usage?by=client")["total"]["prompt_tokens"] >= fleet.sent_requests * PROMPT_TOKENS)

        wait_until(settled, 30, 0.2)
        cpu = _cpu_seconds(process.pid) - cpu_before
        stop.set()
        watcher.join(5)
        usage = _get(api + "/usage?by=client")["total"]
        status = _get(api + "/status")
        counted = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "nodes": nodes,
            "offered_rps": rate,
            "sent_requests": fleet.sent_requests,
            "achieved_rps": fleet.sent_requests / sent_seconds,
            "controlplane_cpu_s": cpu,
            "controlplane_us_per_request": cpu / max(fleet.sent_requests, 1) * 1e6,
            "requests_per_core_second": fleet.sent_requests / max(cpu, 1e-9),
            "health_delay_s": None
            if not ejected_at or fleet.probe_sent_at is None
            else ejected_at[0] - fleet.probe_sent_at,
            "usage_tokens_expected": expected,
            "usage_tokens_counted": counted,
            "usage_exact": counted == expected and usage["requests"] == fleet.sent_requests,
            "telemetry": status.get("telemetry"),
        }
    finally:
        process.terminate()
        process.wait(20)


def _answers(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench-fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rate", type=float, nargs="+", default=[10_000, 20_000], help="offered fleet requests/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=20, help="nodes played (default: %(default)s)")
    args = parser.parse_args()
    results = []
    for rate in args.rate:
        with tempfile.TemporaryDirectory(prefix="switchyard-fleet-") as work:
            result = run(rate, args.seconds, args.nodes, Path(work))
        results.append(result)
        delay = result["health_delay_s"]
        print(
            f"offered {rate:>8.0f}/s from {args.nodes} nodes: sent {result['sent_requests']} "
            f"({result['achieved_rps']:.0f}/s); control plane {result['controlplane_us_per_request']:.1f} us CPU per "
            f"request = {result['requests_per_core_second']:.0f} fleet requests/s per core; health "
            f"{'NOT seen' if delay is None else f'{delay:.2f}s'}; usage "
            f"{'exact' if result['usage_exact'] else 'NOT exact'} ({result['usage_tokens_counted']} of "
            f"{result['usage_tokens_expected']} tokens); telemetry {result['telemetry']}",
            flush=True,
        )
    out = Path(os.environ.get("SWITCHYARD_BENCH_RESULTS", Path(__file__).resolve().parent.parent / "bench-results"))
    out.mkdir(exist_ok=True)
    (out / "fleet.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'fleet.json'}")


if __name__ == "__main__":
    main()
