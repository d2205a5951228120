"""bench/envoy_costs.py's batch variants change what they say: both access logs' flush settings, nothing else
(docs/benchmark.md's tail table rests on them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import envoy_costs


def _flush_settings(node: Any) -> list[tuple[str, int]]:
    if isinstance(node, dict):
        found = [(node["buffer_flush_interval"], node["buffer_size_bytes"])] if "buffer_flush_interval" in node else []
        return found + [s for value in node.values() for s in _flush_settings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _flush_settings(value)]
    return []


def test_the_batch_variants_change_both_access_logs_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(envoy_costs, "WORK", tmp_path)  # where it writes the config it loads (no bench-results/)
    full = envoy_costs.full_bootstrap("http://127.0.0.1:9", 9, 10)
    assert _flush_settings(full) == [("0.250s", 256 * 1024)] * 2
    unchanged = envoy_costs.variant_bootstrap(full, lambda _: None, 11)
    for key, expected in (("log_batch_16k", ("0.250s", 16 * 1024)), ("log_flush_20ms", ("0.020s", 256 * 1024))):
        (element,) = [e for e in envoy_costs.ELEMENTS if e.key == key]
        variant = envoy_costs.variant_bootstrap(full, element.change, 11)
        assert _flush_settings(variant) == [expected] * 2
        envoy_costs._log_batches("0.250s", 256 * 1024)(variant)
        variant["admin"] = unchanged["admin"]  # a free port of its own
        assert variant == unchanged
