"""deploy/grafana/switchyard.json: a dashboard Grafana can import (panels with queries, a Prometheus datasource
variable) whose every metric and label is one the control plane's /metrics exports. The exported names come
from the real collector over a status document built from real traffic records, not from a list kept here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.nodes import NodeRecord
from controlplane.snapshot import build_snapshot
from controlplane.target_keys import target_key
from controlplane.telemetry.metrics import StatusCollector
from controlplane.telemetry.status import ReloadResult, build_status
from controlplane.telemetry.target_stats import Observation, StreamMeasures, TargetStatsRecorder
from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.api import UsageCollector
from controlplane.usage.record import TargetInfo
from controlplane.usage.sqlite import SqliteUsageStore
from switchyard.config import load_config_text
from switchyard.contract import USAGE_TAGS

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "switchyard.json"
# Labels Prometheus adds to every scraped series, usable in any query.
TARGET_LABELS = {"instance", "job"}

CONFIG = """
listen: 127.0.0.1:8080
providers: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}
routes:
  - model: m
    strategy: least_latency
    targets: [{name: a, provider: p, model: a}, {name: b, provider: p, model: b}]
"""


def _status() -> dict[str, Any]:
    """A status document after some traffic: successes with latency, a failure, a fallback, a stream."""
    config = load_config_text(CONFIG)
    snapshot = build_snapshot(config, "2")
    recorder = TargetStatsRecorder()
    route = config.routes[0]
    first, second = (target_key(route, target) for target in route.targets)
    for _ in range(5):
        recorder.record(Observation(first, 200, 0.2, 1))
    recorder.record(Observation(first, 502, None, 1))
    recorder.record(Observation(second, 200, 0.3, 2))
    recorder.record_stream(StreamMeasures(first, ttft_s=0.1, generation_s=0.5, output_tokens=50))
    nodes = [NodeRecord("node-1", None, connected_at=1.0, stream=1, applied_version="2")]
    reload = ReloadResult(ok=True, at=1.0, reason="file changed")
    return build_status(snapshot, recorder, reload, nodes=nodes, attempts_by_node={"node-1": 7})


def _usage() -> UsageAccounting:
    """Usage counters after one answer that read and wrote the prompt cache, for the Usage row's panels."""
    usage = UsageAccounting(SqliteUsageStore(":memory:"))
    counts = {"input_tokens": 25, "output_tokens": 15, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 25}
    tags = {USAGE_TAGS[key]: str(value) for key, value in counts.items()}
    usage.add_answer(tags, TargetInfo("m", "a", "a", None), "node-1", "req-1", 0, 0, 0.1)
    return usage


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Every series name /metrics exports, with the labels it carries."""
    registry = CollectorRegistry()
    registry.register(StatusCollector(_status))
    registry.register(UsageCollector(_usage()))
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in _panels(dashboard) for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


_METRIC = re.compile(r"\b(?:switchyard|gen_ai)_[a-z0-9_]+\b")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"\b((?:switchyard|gen_ai)_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-z_:][a-z0-9_:]*)\s*,\s*([a-z_][a-z0-9_]*)\s*\)")


def test_every_metric_in_the_dashboard_is_exported(dashboard: dict[str, Any], exported: dict[str, set[str]]) -> None:
    used = {name for expr in _queries(dashboard) for name in _METRIC.findall(expr)}
    assert used, "no Switchyard metric in the dashboard"
    missing = sorted(used - set(exported))
    assert not missing, f"not exported by /metrics: {missing}; exported: {sorted(exported)}"


def test_every_query_uses_at_least_one_switchyard_metric(dashboard: dict[str, Any]) -> None:
    for expr in _queries(dashboard):
        assert _METRIC.search(expr), expr


def test_every_label_a_query_names_is_on_its_metrics(dashboard: dict[str, Any], exported: dict[str, set[str]]) -> None:
    for expr in _queries(dashboard):
        available = set().union(*(exported.get(name, set()) for name in _METRIC.findall(expr))) | TARGET_LABELS
        for metric, matchers in _SELECTOR.findall(expr):
            for label in _MATCHER.findall(matchers):
                assert label in exported[metric] | TARGET_LABELS, f"{metric} has no label {label}: {expr}"
        for group in _GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in available, f"`by ({group})`: no metric of the query has {label}: {expr}"
        for metric, label in _LABEL_VALUES.findall(expr):
            assert label in exported[metric], f"label_values: {metric} has no label {label}"


def test_the_coverage_the_issue_asks_for(dashboard: dict[str, Any]) -> None:
    """Traffic and fallbacks per route and target, latency histograms, target states, config version per node."""
    text = "\n".join(_queries(dashboard))
    for needed in (
        "switchyard_target_requests_total",
        "switchyard_target_fallbacks_total",
        "switchyard_target_latency_bucket",
        "switchyard_target_healthy",
        "switchyard_node_config_version",
    ):
        assert needed in text, needed
    assert "by (route, target" in text


def test_it_is_a_dashboard_grafana_imports(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    panels = _panels(dashboard)
    assert len(panels) >= 8
    for panel in panels:
        where = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], where
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], where
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24, where


def test_no_two_panels_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_the_name_check_can_fail(exported: dict[str, set[str]]) -> None:
    """A misspelt metric (counters are exported with _total) is not among the exported names."""
    assert "switchyard_target_requests" not in exported
    assert "switchyard_target_requests_total" in exported
