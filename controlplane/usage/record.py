"""One answer's usage, read from Envoy's answer log entry (see controlplane/resources/access_logs.py).

Where the counts come from, in order: what the ext_proc measured of a stream it translated (the client may not
have asked for usage, so the translated stream need not carry it), else what the answer itself reported (a JSON
answer's `usage`, read by json_to_metadata; a stream's, read by envoy/lua/stream_usage.lua), in either API's
names. Anthropic's cache reads and writes count as prompt tokens, at the input price.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from envoy.data.accesslog.v3 import accesslog_pb2

from controlplane.clients import CLIENT_TAG  # set by authentication; absent without a clients section
from switchyard.config.model import Price
from switchyard.contract import STREAM_TAGS, TARGET_KEY_TAG, USAGE_TAGS


@dataclass(frozen=True)
class TargetInfo:
    """What usage accounting names and prices a target by; the log entry only has its key."""

    route: str  # the model clients ask for
    target: str  # the target's display name
    model: str  # the provider's model
    price: Price | None


@dataclass(frozen=True)
class UsageRecord:
    id: str  # the same on every replica that receives the entry, distinct for every answer
    at: float  # epoch seconds the answer ended
    client: str  # "" without a clients section
    route: str
    target: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%d")

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def cost_usd(price: Price | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def _count(tags: Mapping[str, str], tag: str) -> int:
    try:
        return max(int(float(tags.get(tag, "-"))), 0)
    except ValueError:
        return 0


def token_counts(tags: Mapping[str, str]) -> tuple[int, int]:
    """(prompt, completion) tokens of the answer the entry describes."""
    translated_in = _count(tags, STREAM_TAGS["input_tokens"])
    translated_out = _count(tags, STREAM_TAGS["output_tokens"])
    if translated_in or translated_out:
        return translated_in, translated_out
    usage = {key: _count(tags, tag) for key, tag in USAGE_TAGS.items()}
    prompt = usage["prompt_tokens"] or (
        usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
    )
    return prompt, usage["completion_tokens"] or usage["output_tokens"]


def record_id(node: str, entry: accesslog_pb2.HTTPAccessLogEntry) -> str:
    """Node, request id and start time: every replica gets the same entry from a node, so they agree on it; a
    client that sends its own x-request-id twice still gets two records (the start times differ)."""
    start = entry.common_properties.start_time
    text = f"{node}\0{entry.request.request_id}\0{start.seconds}.{start.nanos:09d}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def usage_of(
    entry: accesslog_pb2.HTTPAccessLogEntry, node: str, targets: Mapping[str, TargetInfo]
) -> UsageRecord | None:
    """The usage of an answer a target gave; None for answers no target gave (refused by the gateway)."""
    common = entry.common_properties
    tags = common.custom_tags
    target = targets.get(tags.get(TARGET_KEY_TAG, "-"))
    if target is None:
        return None
    prompt, completion = token_counts(tags)
    start = common.start_time.ToDatetime(UTC).timestamp() if common.HasField("start_time") else 0.0
    duration = common.time_to_last_downstream_tx_byte.ToTimedelta().total_seconds()
    client = tags.get(CLIENT_TAG, "")
    return UsageRecord(
        id=record_id(node, entry),
        at=start + duration,
        client="" if client == "-" else client,
        route=target.route,
        target=target.target,
        model=target.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost_usd(target.price, prompt, completion),
    )
