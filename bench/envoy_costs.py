"""Where Switchyard's Envoy spends its CPU per request: the full config against the same minus one element.

Issue 21 wants Switchyard's Envoy within 1.6x of a bare Envoy's CPU per same-API request. To know what to cut,
this measures each element's share: Envoy runs variant C's real config (the pure `controlplane/translate.py`
output for `make bench`'s config, with the routes inline as static resources: no control plane, no ADS) in front
of the fast mock, once as it is and once per element with that element taken out; a bare Envoy (variant P,
bench/bare_envoy.py) is the floor. wrk drives each at fixed connections, the variants interleaved round by round
(after a warm-up round) so the shared machine's noise hits all alike, and Envoy's CPU comes from /proc.

Both access logs go to a sink that accepts every gRPC stream and discards the bytes undecoded, so the control
plane's own cost (measured by `make bench`) stays out of Envoy's figure.

Where an element cannot go without breaking the request, its variant takes out what depends on it as well, and
says so: without the request rules the route matches on path alone; without the header_mutation filter the
attempt_rewrite Lua (which reads its header) goes too.

    python -m bench.envoy_costs                  # every element, 3 rounds of 3 s at 32 connections
    python -m bench.envoy_costs --only full P stream_usage --seconds 2
    python -m bench.envoy_costs --latency --only answer_log log_batch_16k   # p50/p99 at one connection
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import statistics
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import yaml

from bench import bare_envoy
from bench.run import RESULTS, _body, _cpu_seconds, _process, _switchyard_config, _wait_http, _wrk
from controlplane.envoy_api import to_dict
from controlplane.resources.route_index import route_dicts, virtual_host_routing
from controlplane.translate import DEFAULT_SETTINGS, EnvoyResources, translate
from switchyard.config import load_config
from switchyard.contract import ANSWER_SUMMARY_TAG, GUARDRAILS_FILTER, ROUTE_KEY_FILTER, route_name
from switchyard.supervisor.bootstrap import BootstrapParams, render_bootstrap
from switchyard.supervisor.processes import envoy_binary, free_port

MODEL = "bench-direct"  # variant C's route: an OpenAI target, the model renamed on every attempt
ROUTE = route_name("chat", MODEL)
CHAT = "/v1/chat/completions"
Bootstrap = dict[str, Any]


# --- the log sink -------------------------------------------------------------------------------------------


_ACCESS_LOG_SERVICE = "envoy.service.accesslog.v3.AccessLogService"


@contextmanager
def log_sink() -> Iterator[int]:
    """A gRPC server on loopback that takes any stream (both access logs) and drops what arrives undecoded."""

    def drain(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        for _ in requests:
            pass
        return b""

    handler = grpc.stream_unary_rpc_method_handler(drain, response_serializer=lambda _: b"")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    service = grpc.method_handlers_generic_handler(_ACCESS_LOG_SERVICE, {"StreamAccessLogs": handler})
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


# --- the full config ----------------------------------------------------------------------------------------


WORK = RESULTS / "envoy-costs"


def full_bootstrap(ok_url: str, sink_port: int, listen_port: int) -> Bootstrap:
    """`switchyard up`'s bootstrap for make bench's config, with the control plane's resources inline."""
    unused = f"http://127.0.0.1:{free_port()}"  # the other routes' providers: no request goes there
    text = _switchyard_config(listen_port, ok_url, unused, unused, unused)
    config_path = WORK / "config.yaml"
    config_path.write_text(text)
    resources = translate(load_config(config_path), DEFAULT_SETTINGS)
    return static_bootstrap(resources, "envoy-costs", f"127.0.0.1:{sink_port}")


def static_bootstrap(resources: EnvoyResources, node_id: str, sink: str) -> Bootstrap:
    """`switchyard up`'s bootstrap with `resources` inline as static resources (no control plane); the access
    logs and the ext_proc point at `sink`."""
    params = BootstrapParams(node_id=node_id, admin=f"127.0.0.1:{free_port()}", xds=sink, extprocs=(sink,))
    bootstrap: Bootstrap = yaml.safe_load(render_bootstrap(params))
    del bootstrap["dynamic_resources"]
    (listener,) = (to_dict(message) for message in resources.listeners)
    (routes,) = (to_dict(message) for message in resources.route_configs)
    manager = _manager({"static_resources": {"listeners": [listener]}})
    del manager["rds"]
    manager["route_config"] = routes
    bootstrap["static_resources"]["listeners"] = [listener]
    bootstrap["static_resources"]["clusters"].extend(to_dict(message) for message in resources.clusters)
    return bootstrap


def _manager(bootstrap: Bootstrap) -> dict[str, Any]:
    (listener,) = bootstrap["static_resources"]["listeners"]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def _http_filter(bootstrap: Bootstrap, name: str) -> dict[str, Any]:
    (found,) = (f for f in _manager(bootstrap)["http_filters"] if f["name"] == name)
    return found["typed_config"]  # type: ignore[no-any-return]


def _drop_http_filter(bootstrap: Bootstrap, name: str) -> None:
    filters = _manager(bootstrap)["http_filters"]
    filters[:] = [f for f in filters if f["name"] != name]


def _route(bootstrap: Bootstrap) -> dict[str, Any]:
    (host,) = _manager(bootstrap)["route_config"]["virtual_hosts"]
    (found,) = (r for r in host["routes"] if r.get("name") == ROUTE)
    return found  # type: ignore[no-any-return]


def _cluster(bootstrap: Bootstrap) -> dict[str, Any]:
    name = _route(bootstrap)["route"]["cluster"]
    (found,) = (c for c in bootstrap["static_resources"]["clusters"] if c["name"] == name)
    return found  # type: ignore[no-any-return]


def _upstream_filters(bootstrap: Bootstrap) -> list[dict[str, Any]]:
    """The router's upstream filters: the one chain every cluster's attempts pass."""
    filters: list[dict[str, Any]] = _http_filter(bootstrap, "envoy.filters.http.router")["upstream_http_filters"]
    return filters


# --- the elements -------------------------------------------------------------------------------------------


def _without_guard_filter(b: Bootstrap) -> None:
    """The guardrails filter, there because another route (bench-guard) has rules, and skipped on C's route: what
    an unguarded request pays for the feature existing in the config."""
    _drop_http_filter(b, GUARDRAILS_FILTER)
    for host in _manager(b)["route_config"]["virtual_hosts"]:
        host.get("typed_per_filter_config", {}).pop(GUARDRAILS_FILTER, None)
        for route in host["routes"]:
            route.get("typed_per_filter_config", {}).pop(GUARDRAILS_FILTER, None)


def _guard_filter_plain(b: Bootstrap) -> None:
    """The guardrails filter as it was before the composite: the ext_proc filter itself in the listener, off by
    an `ExtProcPerRoute` on the virtual host and on again, with the rules, on each guarded route; what the
    composite saves an unguarded request."""
    per_route = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
    ext_proc: dict[str, Any] = {}
    for host in _manager(b)["route_config"]["virtual_hosts"]:
        host.setdefault("typed_per_filter_config", {})[GUARDRAILS_FILTER] = {"@type": per_route, "disabled": True}
        for route in host["routes"]:
            matcher = route.get("typed_per_filter_config", {}).get(GUARDRAILS_FILTER)
            if matcher is None:
                continue
            ext_proc = matcher["xds_matcher"]["on_no_match"]["action"]["typed_config"]["typed_config"]["typed_config"]
            metadata = ext_proc["grpc_service"].pop("initial_metadata")
            override = {"@type": per_route, "overrides": {"grpc_initial_metadata": metadata}}
            route["typed_per_filter_config"][GUARDRAILS_FILTER] = override
    (entry,) = (f for f in _manager(b)["http_filters"] if f["name"] == GUARDRAILS_FILTER)
    entry["typed_config"] = ext_proc


def _without_health_check(b: Bootstrap) -> None:
    _drop_http_filter(b, "envoy.filters.http.health_check")


def _route_on_path_alone(b: Bootstrap) -> None:
    """C's route first, matched on path and method only: what is left to route on without the lifted model."""
    route = _route(b)
    del route["match"]["dynamic_metadata"]
    (host,) = _manager(b)["route_config"]["virtual_hosts"]
    host["routes"] = [route, *(r for r in host["routes"] if r is not route)]


def _without_flag_rules(b: Bootstrap) -> None:
    rules = _http_filter(b, "envoy.filters.http.json_to_metadata")["request_rules"]["rules"]
    rules[:] = rules[:1]  # the model's rule comes first (resources/listener.py)


def _without_request_rules(b: Bootstrap) -> None:
    del _http_filter(b, "envoy.filters.http.json_to_metadata")["request_rules"]
    _route_on_path_alone(b)


def _without_response_rules(b: Bootstrap) -> None:
    del _http_filter(b, "envoy.filters.http.json_to_metadata")["response_rules"]


def _without_json_to_metadata(b: Bootstrap) -> None:
    _drop_http_filter(b, "envoy.filters.http.json_to_metadata")
    _route_on_path_alone(b)


def _without_stream_usage(b: Bootstrap) -> None:
    _drop_http_filter(b, "switchyard.stream_usage")


def _stream_usage_unskipped(b: Bootstrap) -> None:
    """stream_usage.lua called for every answer, as before Envoy skipped it for all but event streams."""
    (found,) = (f for f in _manager(b)["http_filters"] if f["name"] == "switchyard.stream_usage")
    found["typed_config"] = found["typed_config"].get("extension_config", found)["typed_config"]


def _without_request_id(b: Bootstrap) -> None:
    _manager(b)["generate_request_id"] = False


def _without_local_reply_config(b: Bootstrap) -> None:
    del _manager(b)["local_reply_config"]


def _without_listener_settings(b: Bootstrap) -> None:
    """Everything the connection manager sets that no client request asks for (tracing is off in this config)."""
    _without_request_id(b)
    _without_local_reply_config(b)
    manager = _manager(b)
    for name in ("stream_idle_timeout", "request_timeout", "server_name", "codec_type"):
        manager.pop(name, None)


def _without_answer_log(b: Bootstrap) -> None:
    del _manager(b)["access_log"]


def _short_answer_summary(b: Bootstrap) -> None:
    """The answer log with a one-operator summary: what its long format costs over the log itself."""
    (log,) = _manager(b)["access_log"]
    for tag in log["typed_config"]["common_config"]["custom_tags"]:
        if tag["tag"] == ANSWER_SUMMARY_TAG:
            tag["value"] = "%RESPONSE_CODE%"


def _without_attempt_log(b: Bootstrap) -> None:
    del _http_filter(b, "envoy.filters.http.router")["upstream_log"]


def _without_attempt_rewrite_lua(b: Bootstrap) -> None:
    filters = _upstream_filters(b)
    filters[:] = [f for f in filters if f["name"] != "envoy.filters.http.lua"]


def _without_failed_answer_read(b: Bootstrap) -> None:
    """attempt_rewrite.lua without its response function: no Lua on the way back (a failed answer then closes
    its HTTP/1 connection when the router retries it)."""
    for f in _upstream_filters(b):
        if f["name"] == "envoy.filters.http.lua":
            source = f["typed_config"]["default_source_code"]
            source["inline_string"] = source["inline_string"].replace(
                "function envoy_on_response(", "local function unused_on_response("
            )


def _without_rewrite(b: Bootstrap) -> None:
    """The header_mutation filter and the Lua that applies its header: the whole per-attempt rewrite."""
    filters = _upstream_filters(b)
    filters[:] = [f for f in filters if f["name"] == "envoy.filters.http.upstream_codec"]


def _without_response_headers(b: Bootstrap) -> None:
    del _route(b)["response_headers_to_add"]


def _without_circuit_breakers(b: Bootstrap) -> None:
    del _cluster(b)["circuit_breakers"]


def _without_outlier_detection(b: Bootstrap) -> None:
    del _cluster(b)["outlier_detection"]


def _without_retry_policy(b: Bootstrap) -> None:
    del _route(b)["route"]["retry_policy"]


def _single_target_retry_policy(b: Bootstrap) -> None:
    """What a one-target route's retry policy needs: its per-try timeout, no retry machinery."""
    policy = _route(b)["route"]["retry_policy"]
    _route(b)["route"]["retry_policy"] = {"num_retries": 0, "per_try_timeout": policy["per_try_timeout"]}


def _without_per_try_timeout(b: Bootstrap) -> None:
    del _route(b)["route"]["retry_policy"]["per_try_timeout"]


# --- routes: what each configured model costs every request ---------------------------------------------------


def _more_models(count: int) -> Callable[[Bootstrap], None]:
    """`count` more models before C's, each with the routes C's model has (one per client endpoint): what a
    config of many models costs a request to one of them, Envoy trying routes in order."""

    def change(b: Bootstrap) -> None:
        (host,) = _manager(b)["route_config"]["virtual_hosts"]
        mine = [r for r in host["routes"] if r.get("name", "").endswith(f":{MODEL}")]
        more = []
        for i in range(count):
            for route in mine:
                copied = copy.deepcopy(route)
                copied["name"] = copied["name"].replace(MODEL, f"other-{i}")
                for matcher in copied["match"].get("dynamic_metadata", []):
                    if matcher["path"] == [{"key": "model"}]:
                        matcher["value"]["string_match"]["exact"] = f"other-{i}"
                more.append(copied)
        host["routes"] = [host["routes"][0], *more, *host["routes"][1:]]

    return change


def _linear_routes(b: Bootstrap) -> None:
    """No route key and no index: Envoy tries the routes in order, as it did before route_index.py."""
    _drop_http_filter(b, ROUTE_KEY_FILTER)


def _both(*changes: Callable[[Bootstrap], None]) -> Callable[[Bootstrap], None]:
    def change(b: Bootstrap) -> None:
        for each in changes:
            each(b)

    return change


def _with_stats_matcher(b: Bootstrap) -> None:
    """Only the stats Switchyard reads (supervisor/drain.py, tests/e2e/test_controlplane_mtls.py) and `server.`."""
    patterns = [
        {"exact": "http.switchyard.downstream_rq_active"},
        {"prefix": "cluster.switchyard_xds."},
        {"prefix": "cluster_manager."},
        {"prefix": "listener_manager."},
        {"prefix": "server."},
    ]
    b["stats_config"] = {"stats_matcher": {"inclusion_list": {"patterns": patterns}}}


def _log_batches(interval: str, size: int) -> Callable[[Bootstrap], None]:
    """Both access logs flushed every `interval` or at `size` bytes, whichever comes first."""

    def change(b: Bootstrap) -> None:
        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "buffer_flush_interval" in node:
                    node["buffer_flush_interval"], node["buffer_size_bytes"] = interval, size
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(b)

    return change


def _unchanged(_: Bootstrap) -> None:
    pass


@dataclass(frozen=True)
class Element:
    key: str
    what: str
    change: Callable[[Bootstrap], None]


ELEMENTS = (
    Element("control", "nothing (a second full config: the noise)", _unchanged),
    Element("health_check", "health_check filter (GET /healthz)", _without_health_check),
    Element("guard_filter", "guardrails filter (skipped on this route)", _without_guard_filter),
    Element("guard_plain", "(changed) guardrails as a plain ext_proc, off", _guard_filter_plain),
    Element("flag_rules", "json_to_metadata request rules but the model's", _without_flag_rules),
    Element("request_rules", "json_to_metadata request rules (route on path)", _without_request_rules),
    Element("response_rules", "json_to_metadata response rules (usage)", _without_response_rules),
    Element("json_to_metadata", "json_to_metadata filter (route on path)", _without_json_to_metadata),
    Element("stream_usage", "stream_usage Lua", _without_stream_usage),
    Element("stream_usage_unskipped", "(added) stream_usage Lua on every answer", _stream_usage_unskipped),
    Element("request_id", "request id generation", _without_request_id),
    Element("local_reply", "local_reply_config mappers", _without_local_reply_config),
    Element("listener_settings", "listener settings (request id, mappers, ...)", _without_listener_settings),
    Element("answer_log", "answer access log", _without_answer_log),
    Element("answer_summary", "answer log's long summary (one operator)", _short_answer_summary),
    Element("attempt_log", "attempt upstream log", _without_attempt_log),
    Element("rewrite_lua", "attempt_rewrite Lua", _without_attempt_rewrite_lua),
    Element("failed_answer", "attempt_rewrite Lua's response function", _without_failed_answer_read),
    Element("rewrite", "header_mutation + attempt_rewrite Lua", _without_rewrite),
    Element("response_headers", "route's response headers (target, attempts)", _without_response_headers),
    Element("circuit_breakers", "cluster circuit breakers", _without_circuit_breakers),
    Element("outlier_detection", "cluster outlier detection", _without_outlier_detection),
    Element("retry_policy", "route retry policy", _without_retry_policy),
    Element("retry_one_target", "retry machinery of a one-target route", _single_target_retry_policy),
    Element("per_try_timeout", "route per-try timeout", _without_per_try_timeout),
    Element("stats_matcher", "stats (a stats_matcher keeping what is read)", _with_stats_matcher),
    Element("log_batch_16k", "(changed) access logs flushed at 16 KiB", _log_batches("0.250s", 16 * 1024)),
    Element("log_flush_20ms", "(changed) access logs flushed every 20 ms", _log_batches("0.020s", 256 * 1024)),
    Element("models_100", "(added) 100 more models' routes before C's", _more_models(100)),
    Element("models_300", "(added) 300 more models' routes before C's", _more_models(300)),
    Element("linear_routes", "(changed) routes tried in order (no route index)", _linear_routes),
    Element("models_300_linear", "(added) 300 more models, tried in order", _both(_more_models(300), _linear_routes)),
)
FULL, BARE = "full", "P"


def variant_bootstrap(full: Bootstrap, change: Callable[[Bootstrap], None], listen_port: int) -> Bootstrap:
    """A copy of `full` with `change` made. Changes see the virtual host's routes as one plain list, in order;
    they are indexed again afterwards (route_index.py) unless the change took the route key filter out."""
    bootstrap = copy.deepcopy(full)
    (listener,) = bootstrap["static_resources"]["listeners"]
    listener["address"]["socket_address"]["port_value"] = listen_port
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = free_port()
    (host,) = _manager(bootstrap)["route_config"]["virtual_hosts"]
    routes = route_dicts(host)
    host.pop("matcher", None)
    host["routes"] = routes
    change(bootstrap)
    if any(f["name"] == ROUTE_KEY_FILTER for f in _manager(bootstrap)["http_filters"]):
        host.update(virtual_host_routing(host.pop("routes")))
    return bootstrap


# --- running and measuring ----------------------------------------------------------------------------------


@dataclass
class Running:
    key: str
    url: str
    pid: int
    cpu_us: list[float]


@contextmanager
def _envoy(key: str, bootstrap: Bootstrap, listen_port: int) -> Iterator[Running]:
    path = WORK / f"{key}.json"
    path.write_text(json.dumps(bootstrap))
    argv = [envoy_binary(), "-c", str(path), "--concurrency", "2", "--disable-hot-restart", "-l", "warning"]
    with _process(argv, WORK / f"{key}.log") as process:
        url = f"http://127.0.0.1:{listen_port}"
        _wait_http(url + "/", 30, lambda r: r.status_code < 500)
        yield Running(key, url, process.pid, [])


def _check(running: Running) -> None:
    """Every variant must answer C's request with a 200, else its figure measures an error path."""
    response = httpx.post(running.url + CHAT, content=_body(MODEL), headers={"content-type": "application/json"})
    if response.status_code != 200:
        raise RuntimeError(f"{running.key} answered {response.status_code}: {response.text[:300]}")


def _measure(running: Running, seconds: int, connections: int) -> float:
    before = _cpu_seconds([running.pid])
    result = _wrk(running.url + CHAT, _body(MODEL), connections, seconds, WORK)
    if result["errors"] or result["non2xx"]:
        raise RuntimeError(f"{running.key}: {result['errors']} errors, {result['non2xx']} non-2xx answers")
    requests: int = result["requests"]
    return (_cpu_seconds([running.pid]) - before) / max(requests, 1) * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    chosen = [e for e in ELEMENTS if not args.only or e.key in args.only]
    with ExitStack() as stack:
        ok_port = free_port()
        mock = [sys.executable, "-m", "bench.fast_mock", "--port", str(ok_port)]
        stack.enter_context(_process(mock, WORK / "mock.log"))
        ok_url = f"http://127.0.0.1:{ok_port}"
        _wait_http(ok_url + "/", 10)
        sink_port = stack.enter_context(log_sink())
        full = full_bootstrap(ok_url, sink_port, free_port())
        runs: list[Running] = []
        for key, change in ((FULL, _unchanged), *((e.key, e.change) for e in chosen)):
            port = free_port()
            runs.append(stack.enter_context(_envoy(key, variant_bootstrap(full, change, port), port)))
        port = free_port()
        runs.append(stack.enter_context(_envoy(BARE, bare_envoy.bootstrap(port, free_port(), ok_url), port)))
        for running in runs:
            _check(running)
        if args.latency:
            return _latency_rounds([*runs, Running("A", ok_url, 0, [])], args)
        return _paired_rounds(runs, args)


def _latency_rounds(runs: list[Running], args: argparse.Namespace) -> dict[str, Any]:
    """p50 and p99 at one connection, each variant once per round in a shuffled order (A: the mock directly).
    What a variant adds is its figure minus A's of the same round."""
    percentiles: dict[str, list[tuple[int, int]]] = {r.key: [] for r in runs}
    order = random.Random(0)
    for round_number in range(args.rounds + 1):  # round 0 warms up and is discarded
        print(f"== round {round_number or 'warm-up'}", flush=True)
        order.shuffle(runs)
        for running in runs:
            result = _wrk(running.url + CHAT, _body(MODEL), 1, 1 if round_number == 0 else args.seconds, WORK)
            if round_number:
                percentiles[running.key].append((result["p50"], result["p99"]))
    return {"settings": vars(args), "latency_us": percentiles}


def print_latency_table(report: dict[str, Any]) -> None:
    measured = report["latency_us"]
    direct = measured.pop("A")
    print("\nAt one connection (medians over rounds of what each variant adds over the mock alone, us)")
    print(f"{'variant':<48}{'added p50':>11}{'added p99':>11}")
    names = {
        FULL: "full config",
        BARE: "bare Envoy (P)",
        **{e.key: e.what if e.what.startswith("(") else f"without the {e.what}" for e in ELEMENTS},
    }
    for key, rounds in measured.items():
        p50 = statistics.median(p[0] - d[0] for p, d in zip(rounds, direct, strict=True))
        p99 = statistics.median(p[1] - d[1] for p, d in zip(rounds, direct, strict=True))
        print(f"{names[key][:47]:<48}{p50:>11.0f}{p99:>11.0f}")


def _paired_rounds(runs: list[Running], args: argparse.Namespace) -> dict[str, Any]:
    """The full config is measured before and after every other variant, in a shuffled order each round: on a
    shared machine the load drifts within seconds, and an element costs only a few microseconds of ~300, so each
    variant is compared with the full config measured around it, never with a figure from another minute."""
    full, others = runs[0], runs[1:]
    deltas: dict[str, list[float]] = {r.key: [] for r in others}
    order = random.Random(0)
    for round_number in range(args.rounds + 1):  # round 0 warms up and is discarded
        print(f"== round {round_number or 'warm-up'}", flush=True)
        seconds = 1 if round_number == 0 else args.seconds
        order.shuffle(others)
        before = _measure(full, seconds, args.connections)
        for running in others:
            cost = _measure(running, seconds, args.connections)
            after = _measure(full, seconds, args.connections)
            if round_number:
                running.cpu_us.append(cost)
                full.cpu_us.extend((before, after))
                deltas[running.key].append((before + after) / 2 - cost)
            before = after
    medians = {r.key: statistics.median(r.cpu_us) for r in runs}
    saved = {key: statistics.median(values) for key, values in deltas.items()}
    return {
        "settings": vars(args),
        "cpu_us_per_request": medians,
        "element_us": saved,
        "rounds": {r.key: r.cpu_us for r in runs},
        "deltas": deltas,
    }


def print_table(report: dict[str, Any]) -> None:
    """Each element's CPU per request (the full config measured around its variant, minus the variant), and its
    share of what the full config costs over a bare Envoy."""
    cpu, saved = report["cpu_us_per_request"], report["element_us"]
    full, gap = cpu[FULL], saved[BARE]
    print(f"\nEnvoy CPU per request at {report['settings']['connections']} connections (medians over rounds, us)")
    print(f"  full config {full:.0f}, bare Envoy (P) {cpu[BARE]:.0f}: {full / cpu[BARE]:.2f}x; gap {gap:.0f} us")
    print(f"{'element taken out':<48}{'us/request':>11}{'element us':>12}{'share of gap':>14}")
    for element in ELEMENTS:
        if element.key in saved:
            us = saved[element.key]
            print(f"{element.what:<48}{cpu[element.key]:>11.0f}{us:>12.0f}{us / gap:>13.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.envoy_costs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=3, help="duration of one measurement (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, after one warm-up round")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default: %(default)s)")
    parser.add_argument(
        "--latency", action="store_true", help="p50 and p99 at one connection instead of CPU per request"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="ELEMENT", choices=[e.key for e in ELEMENTS], help="measure only these elements"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    report = run(args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "envoy-costs.json").write_text(json.dumps(report, indent=2))
    if args.latency:
        print_latency_table(report)
    else:
        print_table(report)
    print(f"\nwrote {RESULTS / 'envoy-costs.json'}")


if __name__ == "__main__":
    main()
