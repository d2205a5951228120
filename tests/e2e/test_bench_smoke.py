"""`make bench` must keep working: run it at its smallest and check it measured every variant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")]


def _bench(module_and_args: list[str], results: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m` a bench from the repository, its results in `results`."""
    return subprocess.run(
        [sys.executable, "-m", *module_and_args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SWITCHYARD_BENCH_RESULTS": str(results)},
        cwd=Path(__file__).resolve().parents[2],
    )


# Twelve variants, each measured in every part of the bench, take about 150 s on a loaded 2-core machine: more
# than the suite's default timeout, so the bench's own bound (the subprocess timeout) governs.
@pytest.mark.timeout(330)
def test_bench_runs_and_reports_every_variant(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    smallest = ["--skip-litellm", "--seconds", "1", "--rounds", "1", "--connections", "4", "--soak-seconds", "2"]
    result = _bench(["bench.run", *smallest], tmp_path, 300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert set(report["variants"]) == {"A", "P", "B", "C", "R", "D", "X", "RX", "M", "XB", "CA", "G"}
    for key, variant in report["variants"].items():
        throughput = variant["throughput_c4"]
        assert throughput["rps"] > 0, key
        assert throughput["errors"] == 0 and throughput["non2xx"] == 0, (key, throughput)
    assert (tmp_path / "bench.png").stat().st_size > 10_000
    assert "C_over_B_throughput" in report["ratios"]
    assert "X_added_over_C_p50_ms" in report["ratios"]
    assert "M_added_over_C_p50_ms" in report["ratios"]
    assert "XB_added_over_X_p50_ms" in report["ratios"]
    assert "CA_over_C_throughput" in report["ratios"]
    # Guardrails (PII masked both ways): what they add over the same route without, in time and CPU.
    assert {"G_added_over_C_p50_ms", "G_added_cpu_per_request_us"} <= set(report["ratios"])
    # A Responses client beside a chat client: native (R against C) and translated to Anthropic (RX against X).
    for ratio in ("R_over_C_throughput", "R_added_over_C_p50_ms", "RX_over_X_throughput", "RX_added_over_X_p50_ms"):
        assert ratio in report["ratios"], ratio
    for key in ("C", "R", "X", "RX"):
        assert report["variants"][key]["stream_ttfb"]["p50"] > 0, key
        assert report["variants"][key]["large_body"]["p50"] > 0, key
        assert report["variants"][key]["throughput_c4"]["cpu_per_request_us_by_process"]["envoy"] > 0, key
    assert all("extproc_cpu_per_request_ms" in v["throughput_c4"] for v in report["variants"].values())
    # Per-message figures on both sides: a whole translated answer costs three ext_proc messages, no response
    # headers among them.
    for key in ("X", "RX"):
        messages = report["variants"][key]["throughput_c4"]["extproc_messages"]
        assert messages["envoy_messages_per_request"] == pytest.approx(3, abs=0.1), key
        assert set(messages["kinds"]) == {"request_headers", "request_body", "response_body"}, key
    # A guarded request whose answer is checked too: request headers and body, answer headers and body, in one
    # stream; C, in the same gateway on a route without guardrails, never reaches the ext_proc.
    guarded = report["variants"]["G"]["throughput_c4"]["extproc_messages"]
    assert guarded["envoy_messages_per_request"] == pytest.approx(4, abs=0.1)
    assert set(guarded["kinds"]) == {"request_headers", "request_body", "response_headers", "response_body"}
    assert report["variants"]["C"]["throughput_c4"]["extproc_messages"]["envoy_messages_per_request"] == 0
    # the native Responses path has no Python on it
    assert report["variants"]["R"]["throughput_c4"]["extproc_messages"]["envoy_messages_per_request"] == 0
    assert "ext_proc messages at 4 connections" in result.stdout
    soak = report["soak"]
    assert set(soak["routes"]) == {"translated", "same_api"}
    assert all(r["requests"] > 0 and r["errors"] == 0 and r["non2xx"] == 0 for r in soak["routes"].values()), soak
    assert {"envoy", "controlplane"} <= set(soak["rss"]), soak["rss"]
    assert any(name.startswith("extproc") for name in soak["rss"]), soak["rss"]  # extproc, or extproc-1 … N
    assert all(p["end_mb"] for p in soak["rss"].values()), "a gateway process died during the soak"
    assert "soak: 2s" in result.stdout


def test_large_configs_bench_runs_and_envoy_takes_the_config(tmp_path: Path) -> None:
    """`python -m bench.large_configs` at a size past Envoy's 4 KiB direct-response default (the model list)."""
    result = _bench(["bench.large_configs", "80"], tmp_path, 120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.startswith("80 routes: Envoy "), result.stdout
