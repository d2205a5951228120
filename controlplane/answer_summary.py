"""The answer log's one summary tag: everything the control plane reads of an answer, in one string (issue 21).

Envoy formats it per client request (a custom tag whose value is a substitution format) and the control plane
reads it with one map lookup and one `str.split`, never touching the rest of the entry. Reading a dozen tags
and four protobuf durations field by field cost more Python per request than all of health, statistics and
usage together; the summary also replaces those tags, so Envoy sends and formats less.

Values Envoy has not got (no upstream, no metadata) format as "". Fields are separated by a control
character no header, metadata value or target key can hold; the route name, which holds a configured model
name, comes last, so whatever it contains stays in that field. `resources/access_logs.py` writes the tag,
`telemetry/answer_log.py` and `usage/record.py` read the fields by the indexes below.
"""

from __future__ import annotations

from switchyard.contract import (
    GUARDRAILS_METADATA_NAMESPACE,
    GUARDRAILS_STAGES,
    METADATA_NAMESPACE,
    STREAM_METADATA_NAMESPACE,
    STREAM_TAGS,
    USAGE_KEYS,
    USAGE_METADATA_NAMESPACE,
)

SEPARATOR = "\x1f"


def _metadata(namespace: str, key: str) -> str:
    return f"%DYNAMIC_METADATA({namespace}:{key})%"


# (name, Envoy substitution format), in the order of the summary's fields.
FIELDS: tuple[tuple[str, str], ...] = (
    ("target", f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:key)%"),  # the picked endpoint's target key
    ("status", "%RESPONSE_CODE%"),
    ("details", "%RESPONSE_CODE_DETAILS%"),
    ("attempts", "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"),
    # microseconds from the serving attempt's first byte sent upstream to its first and last byte received
    ("first_byte_us", "%COMMON_DURATION(US_TX_BEG:US_RX_BEG:us)%"),
    ("upstream_us", "%COMMON_DURATION(US_TX_BEG:US_RX_END:us)%"),
    ("start", "%START_TIME(%s.%9f)%"),  # as the usage record id has always spelled it
    ("duration_us", "%COMMON_DURATION(DS_RX_BEG:DS_TX_END:us)%"),  # to the answer's last byte to the client
    ("output_tokens", _metadata(METADATA_NAMESPACE, "completion_tokens")),  # routes measuring per output token
    *((f"stream_{key}", _metadata(STREAM_METADATA_NAMESPACE, key)) for key in STREAM_TAGS),
    *((f"usage_{key}", _metadata(USAGE_METADATA_NAMESPACE, key)) for key in USAGE_KEYS),
    # what the guardrails did, per stage (extproc/guard_exchange.py: rule names and counts, never text)
    *((f"guardrails_{stage}", _metadata(GUARDRAILS_METADATA_NAMESPACE, stage)) for stage in GUARDRAILS_STAGES),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("route", "%ROUTE_NAME%"),  # last: `<endpoint>:<model>`, the model as configured
)
INDEX = {name: i for i, (name, _) in enumerate(FIELDS)}
LAST = len(FIELDS) - 1  # str.split's maxsplit: the route keeps any separator its model name may hold

TARGET, STATUS, DETAILS, ATTEMPTS = INDEX["target"], INDEX["status"], INDEX["details"], INDEX["attempts"]
FIRST_BYTE_US, UPSTREAM_US, START, DURATION_US = (
    INDEX["first_byte_us"],
    INDEX["upstream_us"],
    INDEX["start"],
    INDEX["duration_us"],
)
OUTPUT_TOKENS, REQUEST_ID, ROUTE = INDEX["output_tokens"], INDEX["request_id"], INDEX["route"]
STREAM = {key: INDEX[f"stream_{key}"] for key in STREAM_TAGS}
USAGE = {key: INDEX[f"usage_{key}"] for key in USAGE_KEYS}
GUARDRAILS = {stage: INDEX[f"guardrails_{stage}"] for stage in GUARDRAILS_STAGES}


def envoy_format(guardrails: bool = True, output_tokens: bool = True) -> str:
    """The custom tag's value: Envoy's substitution format for the whole summary.

    Fields the config can never fill (the guardrails' without guardrails, the output tokens without a route
    ranking by them) are left empty in the format itself: the same fields at the same indexes, but Envoy formats
    no operator for them (about 1.3 us of its CPU per operator and request, `make bench-envoy-costs`)."""
    never = {name for name, _ in FIELDS if name.startswith("guardrails_")} if not guardrails else set()
    if not output_tokens:
        never.add("output_tokens")
    return SEPARATOR.join("" if name in never else command for name, command in FIELDS)
