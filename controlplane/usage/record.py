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
from functools import lru_cache

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
        return _utc_day(int(self.at // 86_400))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@lru_cache(maxsize=64)
def _utc_day(day_number: int) -> str:
    """Every record of a day shares its name: formatted once, not once per answer (issue 21)."""
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")


def cost_usd(price: Price | None, prompt_tokens: int, completion_tokens: int) -> float:
    if price is None:
        return 0.0
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def _count(tags: Mapping[str, str], tag: str) -> int:
    """A count the entry carries, 0 when it carries none: Envoy leaves out the tags of absent metadata, so
    most lookups miss, and a present one is almost always a plain integer."""
    value = tags.get(tag)
    if value is None:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        try:
            return max(int(float(value)), 0)
        except ValueError:  # "-": the metadata was there without a value
            return 0


_TRANSLATED_IN, _TRANSLATED_OUT = STREAM_TAGS["input_tokens"], STREAM_TAGS["output_tokens"]
_PROMPT, _COMPLETION = USAGE_TAGS["prompt_tokens"], USAGE_TAGS["completion_tokens"]
_INPUT, _OUTPUT = USAGE_TAGS["input_tokens"], USAGE_TAGS["output_tokens"]
_CACHE_WRITE, _CACHE_READ = USAGE_TAGS["cache_creation_input_tokens"], USAGE_TAGS["cache_read_input_tokens"]


def token_counts(tags: Mapping[str, str]) -> tuple[int, int]:
    """(prompt, completion) tokens of the answer the entry describes."""
    translated_in = _count(tags, _TRANSLATED_IN)
    translated_out = _count(tags, _TRANSLATED_OUT)
    if translated_in or translated_out:
        return translated_in, translated_out
    prompt = _count(tags, _PROMPT) or (_count(tags, _INPUT) + _count(tags, _CACHE_WRITE) + _count(tags, _CACHE_READ))
    return prompt, _count(tags, _COMPLETION) or _count(tags, _OUTPUT)


def record_id(node: str, entry: accesslog_pb2.HTTPAccessLogEntry) -> str:
    """Node, request id and start time: every replica gets the same entry from a node, so they agree on it; a
    client that sends its own x-request-id twice still gets two records (the start times differ)."""
    start = entry.common_properties.start_time
    return record_id_of(node, entry.request.request_id, start.seconds, start.nanos)


def record_id_of(node: str, request_id: str, start_seconds: int, start_nanos: int) -> str:
    text = f"{node}\0{request_id}\0{start_seconds}.{start_nanos:09d}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def usage_of(
    entry: accesslog_pb2.HTTPAccessLogEntry, node: str, targets: Mapping[str, TargetInfo]
) -> UsageRecord | None:
    """The usage of an answer a target gave; None for answers no target gave (refused by the gateway)."""
    common = entry.common_properties
    tags = dict(common.custom_tags)
    target = targets.get(tags.get(TARGET_KEY_TAG, "-"))
    if target is None:
        return None
    start, ended = common.start_time, common.time_to_last_downstream_tx_byte
    return usage_from_tags(
        tags, target, node, entry.request.request_id, start.seconds, start.nanos, ended.seconds + ended.nanos / 1e9
    )


def usage_from_tags(
    tags: Mapping[str, str],
    target: TargetInfo,
    node: str,
    request_id: str,
    start_seconds: int,
    start_nanos: int,
    duration_s: float,
) -> UsageRecord:
    """usage_of on fields already read from the entry: the answer log's handler reads each field once for
    health, latency and usage alike."""
    prompt, completion = token_counts(tags)
    client = tags.get(CLIENT_TAG, "")
    return UsageRecord(
        id=record_id_of(node, request_id, start_seconds, start_nanos),
        at=start_seconds + start_nanos / 1e9 + duration_s,
        client="" if client == "-" else client,
        route=target.route,
        target=target.target,
        model=target.model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost_usd(target.price, prompt, completion),
    )
