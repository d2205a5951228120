"""One answer's usage, read from Envoy's answer log entry (see controlplane/resources/access_logs.py).

Where the counts come from, in order: what the ext_proc measured of a stream it translated (the client may not
have asked for usage, so the translated stream need not carry it), else what the answer itself reported (a JSON
answer's `usage`, read by json_to_metadata; a stream's, read by envoy/lua/stream_usage.lua), in either API's
names. Prompt tokens count every input token, as OpenAI counts them; those read from or written to the prompt
cache are also counted apart (Anthropic's cache_read/cache_creation_input_tokens, OpenAI's cached_tokens) and
priced apart: each count at its own price (cost_usd).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha256
from operator import itemgetter
from typing import NamedTuple

from envoy.data.accesslog.v3 import accesslog_pb2

from controlplane import answer_summary as summary
from controlplane.answer_summary import DURATION_US, REQUEST_ID, START
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


class UsageRecord(NamedTuple):
    """A tuple rather than a frozen dataclass: one is made per answer, and a frozen dataclass's __init__ sets
    each field through object.__setattr__. Immutable, compared and built the same way."""

    id: str  # the same on every replica that receives the entry, distinct for every answer
    at: float  # epoch seconds the answer ended
    client: str  # "" without a clients section
    route: str
    target: str
    model: str
    prompt_tokens: int  # every input token, those read from or written to the cache included
    completion_tokens: int
    cost_usd: float
    cache_read_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens, written to it

    @property
    def day(self) -> str:
        return utc_day(int(self.at // DAY_S))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


DAY_S = 86_400


@lru_cache(maxsize=64)
def utc_day(day_number: int) -> str:
    """Every record of a day shares its name: formatted once, not once per answer (issue 21)."""
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y-%m-%d")


def cost_usd(
    price: Price | None, prompt_tokens: int, completion_tokens: int, cache_read: int = 0, cache_write: int = 0
) -> float:
    """Each count at its price; `prompt_tokens` includes the cache reads and writes."""
    if price is None:
        return 0.0
    plain = max(prompt_tokens - cache_read - cache_write, 0)
    return (
        plain * price.input
        + cache_read * price.cache_read_or_input
        + cache_write * price.cache_write_or_input
        + completion_tokens * price.output
    ) / 1_000_000


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
_TRANSLATED_READ, _TRANSLATED_WRITE = STREAM_TAGS["cache_read_tokens"], STREAM_TAGS["cache_write_tokens"]
_PROMPT, _COMPLETION = USAGE_TAGS["prompt_tokens"], USAGE_TAGS["completion_tokens"]
_INPUT, _OUTPUT = USAGE_TAGS["input_tokens"], USAGE_TAGS["output_tokens"]
_CACHE_WRITE, _CACHE_READ = USAGE_TAGS["cache_creation_input_tokens"], USAGE_TAGS["cache_read_input_tokens"]
_CACHED, _CACHED_WRITE = USAGE_TAGS["cached_tokens"], USAGE_TAGS["cache_write_tokens"]


class TokenCounts(NamedTuple):
    """A tuple, not a frozen dataclass: made once per answer, and cheaper to make."""

    prompt: int  # every input token
    completion: int
    cache_read: int = 0  # of prompt
    cache_write: int = 0  # of prompt


def token_counts(tags: Mapping[str, str]) -> TokenCounts:
    """The counts of the answer the entry describes, in whichever API's names it reported them.

    Anthropic's input_tokens leave out its cache reads and writes; OpenAI's prompt_tokens and the Responses API's
    input_tokens include their cached_tokens. An answer carries one API's names only, so adding both APIs'
    cache counts, and Anthropic's to its input, is right for each."""
    translated_in = _count(tags, _TRANSLATED_IN)
    translated_out = _count(tags, _TRANSLATED_OUT)
    if translated_in or translated_out:
        return TokenCounts(
            translated_in, translated_out, _count(tags, _TRANSLATED_READ), _count(tags, _TRANSLATED_WRITE)
        )
    anthropic_read, anthropic_write = _count(tags, _CACHE_READ), _count(tags, _CACHE_WRITE)
    prompt = _count(tags, _PROMPT) or (_count(tags, _INPUT) + anthropic_write + anthropic_read)
    return TokenCounts(
        prompt,
        _count(tags, _COMPLETION) or _count(tags, _OUTPUT),
        anthropic_read + _count(tags, _CACHED),
        anthropic_write + _count(tags, _CACHED_WRITE),
    )


def record_id(node: str, entry: accesslog_pb2.HTTPAccessLogEntry) -> str:
    """Start time, then a digest of node, request id and start time: every replica gets the same entry from a
    node, so they agree on it; a client that sends its own x-request-id twice still gets two records (the start
    times differ). Ids that grow with time go to the end of the store's primary-key index instead of anywhere in
    it: half the cost of a random digest per row in SQLite."""
    start = entry.common_properties.start_time
    return record_id_of(node, entry.request.request_id, start.seconds, start.nanos)


def record_id_of(node: str, request_id: str, start_seconds: int, start_nanos: int) -> str:
    return record_id_at(node, request_id, f"{start_seconds}.{start_nanos:09d}")


def record_id_at(node: str, request_id: str, start: str) -> str:
    """record_id_of with the start time as Envoy's `%START_TIME(%s.%9f)%` spells it (the answer summary):
    its 19 digits of nanoseconds (until 2286), then 13 hex digits of the digest."""
    digest = sha256(f"{node}\0{request_id}\0{start}".encode()).hexdigest()
    return start.replace(".", "") + digest[:13]


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
    counts = token_counts(tags)
    client = tags.get(CLIENT_TAG, "")
    return UsageRecord(
        id=record_id_of(node, request_id, start_seconds, start_nanos),
        at=start_seconds + start_nanos / 1e9 + duration_s,
        client="" if client == "-" else client,
        route=target.route,
        target=target.target,
        model=target.model,
        prompt_tokens=counts.prompt,
        completion_tokens=counts.completion,
        cost_usd=cost_usd(target.price, counts.prompt, counts.completion, counts.cache_read, counts.cache_write),
        cache_read_tokens=counts.cache_read,
        cache_write_tokens=counts.cache_write,
    )


def _summary_count(value: str) -> int:
    """A count in the answer summary: "" when the answer did not report it, else as Envoy formats a number."""
    if not value:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        try:
            return max(int(float(value)), 0)
        except ValueError:
            return 0


_S_IN, _S_OUT = summary.STREAM["input_tokens"], summary.STREAM["output_tokens"]
_S_READ, _S_WRITE = summary.STREAM["cache_read_tokens"], summary.STREAM["cache_write_tokens"]
_S_PROMPT, _S_COMPLETION = summary.USAGE["prompt_tokens"], summary.USAGE["completion_tokens"]
_S_INPUT, _S_OUTPUT = summary.USAGE["input_tokens"], summary.USAGE["output_tokens"]
_S_CACHE_WRITE, _S_CACHE_READ = summary.USAGE["cache_creation_input_tokens"], summary.USAGE["cache_read_input_tokens"]
_S_CACHED, _S_CACHED_WRITE = summary.USAGE["cached_tokens"], summary.USAGE["cache_write_tokens"]


def summary_token_counts(fields: Sequence[str]) -> TokenCounts:
    """token_counts on the fields of an answer summary (controlplane/answer_summary.py)."""
    if fields[_S_IN] or fields[_S_OUT]:
        translated_in, translated_out = _summary_count(fields[_S_IN]), _summary_count(fields[_S_OUT])
        if translated_in or translated_out:
            return TokenCounts(
                translated_in, translated_out, _summary_count(fields[_S_READ]), _summary_count(fields[_S_WRITE])
            )
    anthropic_read, anthropic_write = _summary_count(fields[_S_CACHE_READ]), _summary_count(fields[_S_CACHE_WRITE])
    prompt = _summary_count(fields[_S_PROMPT]) or (_summary_count(fields[_S_INPUT]) + anthropic_write + anthropic_read)
    return TokenCounts(
        prompt,
        _summary_count(fields[_S_COMPLETION]) or _summary_count(fields[_S_OUTPUT]),
        anthropic_read + _summary_count(fields[_S_CACHED]),
        anthropic_write + _summary_count(fields[_S_CACHED_WRITE]),
    )


# The summary's count fields other than an OpenAI answer's prompt and completion tokens: all empty in most
# answers, whose counts are then just those two (usage_from_summary's fast path).
_other_counts = itemgetter(
    _S_IN, _S_OUT, _S_INPUT, _S_OUTPUT, _S_CACHE_READ, _S_CACHE_WRITE, _S_CACHED, _S_CACHED_WRITE
)
_new_record = tuple.__new__  # UsageRecord(...) without its Python-level __new__: a third of the record's cost


def usage_from_summary(fields: Sequence[str], target: TargetInfo, node: str, client: str) -> UsageRecord:
    """usage_from_tags on an answer summary's fields; `client` is the answer log's client tag ("" without).

    Made once per request from the answer log (issue 21): an answer reporting only plain prompt and completion
    counts, the common case, skips summary_token_counts (same counts: every fallback it would take is 0)."""
    prompt_text, completion_text = fields[_S_PROMPT], fields[_S_COMPLETION]
    if prompt_text.isdecimal() and completion_text.isdecimal() and not any(_other_counts(fields)):
        prompt, completion, cache_read, cache_write = int(prompt_text), int(completion_text), 0, 0
    else:
        prompt, completion, cache_read, cache_write = summary_token_counts(fields)
    start = fields[START]
    duration_us = fields[DURATION_US]
    price = target.price
    record: UsageRecord = _new_record(
        UsageRecord,
        (
            record_id_at(node, fields[REQUEST_ID], start),
            float(start) + (int(duration_us) / 1e6 if duration_us else 0.0),
            "" if client == "-" else client,
            target.route,
            target.target,
            target.model,
            prompt,
            completion,
            0.0 if price is None else cost_usd(price, prompt, completion, cache_read, cache_write),
            cache_read,
            cache_write,
        ),
    )
    return record
