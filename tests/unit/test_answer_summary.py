"""The answer log's summary tag (controlplane/answer_summary.py): what Envoy formats and the control plane reads
gives the same statistics and usage as the separate tags it replaced; token counts feed no latency."""

from __future__ import annotations

import pytest
from envoy.data.accesslog.v3 import accesslog_pb2

from controlplane import answer_summary as summary
from controlplane.health import TargetPolicy
from controlplane.resources.access_logs import answer_log
from controlplane.telemetry.answer_log import AnswerLogHandler
from controlplane.telemetry.target_stats import TargetStatsRecorder
from controlplane.usage.record import TargetInfo, usage_from_summary, usage_of
from switchyard.config import load_config_text
from switchyard.config.model import Latency
from switchyard.contract import ANSWER_SUMMARY_TAG, TARGET_KEY_TAG, USAGE_TAGS

_CONFIG = """
listen: 127.0.0.1:8080
providers: {p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: k}}
routes: [{model: m, targets: [{name: t, provider: p, model: x}]}]
"""


def _summary(route: str = "chat:m", **values: str) -> str:
    fields = [""] * len(summary.FIELDS)
    defaults = {"target": "k", "status": "200", "details": "via_upstream", "attempts": "1", "first_byte_us": "5000",
                "upstream_us": "9000", "start": "1796601193.795204000", "duration_us": "9500",
                "request_id": "req-1", "route": route}  # fmt: skip
    for name, value in {**defaults, **values}.items():
        fields[summary.INDEX[name]] = value
    return summary.SEPARATOR.join(fields)


def _entry(text: str) -> accesslog_pb2.HTTPAccessLogEntry:
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.common_properties.custom_tags[ANSWER_SUMMARY_TAG] = text
    return entry


def test_the_answer_log_sends_one_summary_tag_with_every_field_and_the_route_last() -> None:
    tags = answer_log(load_config_text(_CONFIG, source="t"))["typed_config"]["common_config"]["custom_tags"]
    assert [t["tag"] for t in tags] == [ANSWER_SUMMARY_TAG], "no clients section: no client tag"
    value = tags[0]["value"]
    assert value.count(summary.SEPARATOR) == len(summary.FIELDS) - 1
    assert value.endswith("%ROUTE_NAME%") and "%DYNAMIC_METADATA(switchyard.usage:prompt_tokens)%" in value


def test_a_route_name_holding_the_separator_stays_in_the_last_field() -> None:
    fields = _summary(route=f"chat:odd{summary.SEPARATOR}name").split(summary.SEPARATOR, summary.LAST)
    assert fields[summary.ROUTE] == f"chat:odd{summary.SEPARATOR}name"
    assert fields[summary.REQUEST_ID] == "req-1"


def test_usage_from_the_summary_equals_usage_from_the_tags_it_replaced() -> None:
    """Same answer, both shapes: same record, id included (replicas on either shape agree on it)."""
    target = TargetInfo("m", "t", "x", None)
    text = _summary(usage_input_tokens="7", usage_cache_read_input_tokens="3", usage_output_tokens="5.0")
    from_summary = usage_from_summary(text.split(summary.SEPARATOR, summary.LAST), target, "node-1", "team-a")
    entry = accesslog_pb2.HTTPAccessLogEntry()
    common = entry.common_properties
    tags = {TARGET_KEY_TAG: "k", "client": "team-a", USAGE_TAGS["input_tokens"]: "7"}
    tags |= {USAGE_TAGS["cache_read_input_tokens"]: "3", USAGE_TAGS["output_tokens"]: "5.0"}
    common.custom_tags.update(tags)
    common.start_time.seconds, common.start_time.nanos = 1796601193, 795204000
    common.time_to_last_downstream_tx_byte.nanos = 9_500_000
    entry.request.request_id = "req-1"
    from_tags = usage_of(entry, "node-1", {"k": target})
    assert from_tags is not None
    assert (from_summary.prompt_tokens, from_summary.completion_tokens) == (10, 5)
    assert from_summary._replace(at=0.0) == from_tags._replace(at=0.0)
    assert from_summary.at == pytest.approx(from_tags.at)
    assert from_summary.id.startswith("1796601193795204000"), "ids grow with time: appended to the store's index"


def test_token_counts_are_judged_but_feed_no_latency() -> None:
    policy = TargetPolicy(latency=Latency(warmup=1))
    recorder = TargetStatsRecorder(lambda _key: policy)
    handler = AnswerLogHandler(recorder, None)
    handler.handle([_entry(_summary(route="count_tokens:m", target="counting"))], "n", 0.0)
    handler.handle([_entry(_summary(route="input_tokens:m", target="counting"))], "n", 0.0)
    handler.handle([_entry(_summary(route="messages:m", target="generating"))], "n", 0.0)
    assert recorder.get("counting").requests == 2, "counted and judged like any answer"
    assert recorder.get("counting").latency_s is None
    assert recorder.get("generating").latency_s == pytest.approx(0.005)


def test_an_answer_the_gateway_made_is_not_a_served_attempt() -> None:
    recorder = TargetStatsRecorder()
    served = AnswerLogHandler(recorder, None).handle([_entry(_summary(details="ext_proc_error"))], "n", 0.0)
    assert served == 0 and recorder.get("k").requests == 0


@pytest.mark.parametrize(
    ("extra", "formatted", "empty"),
    [
        ("", (), ("guardrails_request", "guardrails_response", "output_tokens")),
        ("    guardrails: [{check: pii, action: mask}]\n", ("guardrails_request", "guardrails_response"), ()),
        ("    strategy: least_latency\n    latency: {measure: per_output_token}\n", ("output_tokens",), ()),
    ],
)
def test_fields_a_config_never_fills_are_empty_in_the_format_at_the_same_place(
    extra: str, formatted: tuple[str, ...], empty: tuple[str, ...]
) -> None:
    """Envoy formats no operator for them (each costs it CPU per request); the control plane's indexes hold."""
    text = _CONFIG.replace(
        "routes: [{model: m, targets: [{name: t, provider: p, model: x}]}]\n",
        "routes:\n  - model: m\n"
        + extra
        + "    targets: [{name: t, provider: p, model: x}, {name: u, provider: p, model: y}]\n",
    )
    tags = answer_log(load_config_text(text))["typed_config"]["common_config"]["custom_tags"]
    (tag,) = [t for t in tags if t["tag"] == ANSWER_SUMMARY_TAG]
    fields = tag["value"].split(summary.SEPARATOR)

    assert len(fields) == len(summary.FIELDS)
    for name in formatted:
        assert fields[summary.INDEX[name]] == dict(summary.FIELDS)[name]
    for name in empty:
        assert fields[summary.INDEX[name]] == ""
    assert fields[summary.ROUTE] == "%ROUTE_NAME%" and fields[summary.TARGET].startswith("%UPSTREAM_METADATA")
