"""Prometheus exposition of the same data as the status document (prometheus_client does the format)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

OUT_OF_SERVICE = ("rate_limited", "ejected")


class StatusCollector(Collector):
    """Reads the status document at scrape time, so metrics and `switchyard status` never disagree."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        document = self._status()
        requests = CounterMetricFamily(
            "switchyard_target_requests", "Upstream attempts per target and status (0: no response)",
            labels=["route", "target", "code"],
        )  # fmt: skip
        fallbacks = CounterMetricFamily(
            "switchyard_target_fallbacks", "Attempts a target served as a request's second or later try",
            labels=["route", "target"],
        )  # fmt: skip
        abandoned = CounterMetricFamily(
            "switchyard_target_abandoned", "Attempts cancelled before an answer because their client hung up",
            labels=["route", "target"],
        )  # fmt: skip
        latency = GaugeMetricFamily(
            "switchyard_target_latency_seconds",
            "Moving average the route ranks targets by: time to first byte, or seconds per output token",
            labels=["route", "target", "measure"],
        )
        output_tokens = CounterMetricFamily(
            "switchyard_target_output_tokens", "Output tokens of whole answers (routes measuring per output token)",
            labels=["route", "target"],
        )  # fmt: skip
        histogram = HistogramMetricFamily(
            "switchyard_target_latency", "Time to first response byte of successful attempts (seconds)",
            labels=["route", "target"],
        )  # fmt: skip
        # OpenTelemetry GenAI metric names (gen_ai.server.*), as Prometheus spells them
        ttft = HistogramMetricFamily(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to first token of streams translated across APIs",
            labels=["route", "target"],
        )
        tpot = HistogramMetricFamily(
            "gen_ai_server_time_per_output_token_seconds", "Time per output token after the first, same streams",
            labels=["route", "target"],
        )  # fmt: skip
        weight = GaugeMetricFamily(
            "switchyard_target_weight", "Current load-balancing weight within its priority level",
            labels=["route", "target", "priority"],
        )  # fmt: skip
        healthy = GaugeMetricFamily(
            "switchyard_target_healthy", "1 while the target takes traffic", labels=["route", "target", "state"]
        )
        for route in document["routes"]:
            for target in route["targets"]:
                names = [route["model"], target["name"]]
                for code, count in target["by_status"].items():
                    requests.add_metric([*names, code], count)
                fallbacks.add_metric(names, target["fallbacks"])
                abandoned.add_metric(names, target["abandoned"])
                if target["latency_ms"] is not None:
                    latency.add_metric([*names, route["latency_measure"]], target["latency_ms"] / 1000)
                output_tokens.add_metric(names, target["output_tokens"])
                for family, key in (
                    (histogram, "latency_histogram"),
                    (ttft, "time_to_first_token_histogram"),
                    (tpot, "time_per_output_token_histogram"),
                ):
                    observed = target[key]
                    family.add_metric(names, list(observed["buckets"].items()), observed["sum_s"])
                weight.add_metric([*names, str(target["priority"])], target["weight"])
                healthy.add_metric([*names, target["state"]], 0 if target["state"] in OUT_OF_SERVICE else 1)
        yield from (requests, fallbacks, abandoned, latency, output_tokens, histogram, ttft, tpot, weight, healthy)
        config = document["config"]
        # Versions are content hashes (two replicas on one YAML agree on them), so they are labels, not values.
        version = GaugeMetricFamily(
            "switchyard_config_version_info", "The config version in force (a hash of its content)", labels=["version"]
        )
        if config["version"] is not None:
            version.add_metric([config["version"]], 1)
        yield version
        reload = config["last_reload"]
        if reload is not None:
            result = GaugeMetricFamily("switchyard_config_last_reload_success", "1 if the last reload was applied")
            result.add_metric([], 1 if reload["ok"] else 0)
            yield result
        yield from _node_metrics(document.get("nodes", []))
        yield from _telemetry_metrics(document.get("telemetry") or {})
        yield _guardrail_metrics(document.get("guardrails") or [])


def _guardrail_metrics(entries: list[dict[str, Any]]) -> Metric:
    decisions = CounterMetricFamily(
        "switchyard_guardrail_decisions",
        "Client requests in which a guardrail acted (mask, block, flag; error: a plugin that failed open)",
        labels=["rule", "check", "action", "stage"],
    )
    for entry in entries:
        decisions.add_metric([entry["rule"], entry["check"], entry["action"], entry["stage"]], entry["requests"])
    return decisions


def _node_metrics(nodes: list[dict[str, Any]]) -> Iterator[Metric]:
    """Per node name: nodes under one name (a conflict) are summed or listed once per version."""
    node_version = GaugeMetricFamily(
        "switchyard_node_config_version_info",
        "The config version each gateway node (Envoy) configured here last applied in full",
        labels=["node", "version"],
    )
    connected = GaugeMetricFamily(
        "switchyard_node_connected",
        "Live ADS streams here under the node's name: 1 while connected, 0 once gone (or configured by another "
        "replica), more than 1 when several nodes share the name",
        labels=["node"],
    )
    current = GaugeMetricFamily(
        "switchyard_node_current", "1 while the node has the version in force, else 0 (behind, gone, conflict)",
        labels=["node"],
    )  # fmt: skip
    streams: dict[str, int] = {}
    is_current: dict[str, bool] = {}
    versions: set[tuple[str, str]] = set()
    for node in nodes:
        name = node["name"]
        live = node["state"] not in ("gone", "elsewhere")
        streams[name] = streams.get(name, 0) + (1 if live else 0)
        is_current[name] = is_current.get(name, True) and node["state"] == "current"
        if node["config_version"] is not None and live:
            versions.add((name, node["config_version"]))
    for name, version in sorted(versions):
        node_version.add_metric([name, version], 1)
    for name in sorted(streams):
        connected.add_metric([name], streams[name])
        current.add_metric([name], 1 if is_current[name] else 0)
    yield node_version
    yield connected
    yield current


def _telemetry_metrics(telemetry: dict[str, Any]) -> Iterator[Metric]:
    """What this replica received but could not count or store (issue 21): past capacity, never silent."""
    not_counted = CounterMetricFamily(
        "switchyard_telemetry_not_counted",
        "Answer-log entries received but not counted (control plane over capacity): usage and latency miss them",
        labels=["log"],
    )
    not_counted.add_metric(["answers"], telemetry.get("answers_not_counted", 0))
    not_stored = CounterMetricFamily(
        "switchyard_usage_not_stored", "Usage records counted but dropped before the usage store had them"
    )
    not_stored.add_metric([], telemetry.get("usage_not_stored", 0))
    queued = GaugeMetricFamily("switchyard_telemetry_queued_entries", "Access-log entries waiting to be handled")
    queued.add_metric([], telemetry.get("queued_entries", 0))
    yield from (not_counted, not_stored, queued)
