"""The names two processes or two languages share, in one place.

The control plane writes Envoy's config; Envoy's Lua filters (envoy/lua/*.lua), the ext_proc and the bootstrap
template read what it wrote. A header, metadata namespace or cluster name spelled differently on one side does not
fail loudly: the header is simply absent, the metadata empty, the cluster unknown. So every such name lives here,
and `tests/unit/test_contract.py` reads the Lua files and the bootstrap template and fails when a constant there
differs from this module. This module imports nothing of the project: everything may depend on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

# --- The wire APIs: what a client speaks on an endpoint, and what a provider speaks ------------------------------


class WireApi(StrEnum):
    """An LLM API as it travels: a client endpoint's (controlplane picks routes by it), a provider's (translators
    are keyed by the pair), and in the translation request the ext_proc receives. Values are the strings on the
    wire, so a `WireApi` compares equal to its name in a header or a log."""

    OPENAI = "openai"  # chat completions, completions, embeddings
    RESPONSES = "responses"  # OpenAI's Responses API: its own wire format, translated on its own
    ANTHROPIC = "anthropic"  # messages
    GEMINI = "gemini"  # generateContent
    BEDROCK = "bedrock"  # Converse


# --- Envoy resources the control plane sends and the bootstrap or the other processes name -----------------------

LISTENER_NAME = "switchyard_http"
ROUTE_CONFIG_NAME = "switchyard_routes"
# Bootstrap clusters (envoy/bootstrap.yaml): the control plane(s) for ADS and the attempt log, and the ext_procs.
CONTROLPLANE_CLUSTER = "switchyard_xds"
EXTPROC_CLUSTER = "switchyard_extproc"
# The gRPC access logs each Envoy streams to the control plane: one entry per attempt, one per answer.
ATTEMPT_LOG_NAME = "switchyard_attempts"
ANSWER_LOG_NAME = "switchyard_answers"
# HTTP filter names the control plane looks up in a node's running config (and names in its own).
CLIENT_AUTH_FILTER = "switchyard.client_auth"
CLIENT_LIMITS_FILTER = "switchyard.client_limits"
# The listener's ext_proc filter for guardrails (controlplane/resources/guardrails.py), enabled per route.
GUARDRAILS_FILTER = "switchyard.guardrails"
ROUTE_KEY_FILTER = "switchyard.route_key"

# --- Node metadata the bootstrap sets and the control plane reads -------------------------------------------------

LISTEN_METADATA_KEY = "switchyard_listen"  # the node's own listener address (`switchyard node --listen`)
# One random value per rendered bootstrap: an Envoy that reconnects carries the same one, a second node started
# under the same name does not, and the control plane shows that as a conflict.
INSTANCE_METADATA_KEY = "switchyard_instance"
# With several control-plane replicas: the bootstrap clusters, one per replica, that the attempt log goes to.
LOG_CLUSTERS_METADATA_KEY = "switchyard_log_clusters"


ROUTE_NAME_SEPARATOR = ":"


def route_name(endpoint: str, model: str) -> str:
    """`<endpoint>:<model>`: the Lua filters read the client endpoint from it (an attempt's path is no guide: an
    earlier attempt may have rewritten it), and so do the local-reply mappers that pick the error shape."""
    return f"{endpoint}{ROUTE_NAME_SEPARATOR}{model}"


def cluster_name(model: str, client_api: str) -> str:
    """`route/<model>` for OpenAI clients (most traffic), `route/<model>@<api>` for clients of another API."""
    return f"route/{model}" if client_api == "openai" else f"route/{model}@{client_api}"


# --- Dynamic and endpoint metadata --------------------------------------------------------------------------------

# The request's own facts (lifted from the body by json_to_metadata, or set by the Lua filters); also the
# namespace of each endpoint's metadata, where its rewrite travels.
METADATA_NAMESPACE = "switchyard"
# What the ext_proc measured of a stream it translated.
STREAM_METADATA_NAMESPACE = "switchyard.stream"
# The ext_proc is sent no response headers message (a gRPC round trip less per attempt): the provider's response
# headers come as metadata, which envoy/lua/translated_response.lua sets and the ext_proc blanks once read (Envoy's
# access logs carry the request's metadata).
ATTEMPT_METADATA_NAMESPACE = "switchyard.attempt"
ATTEMPT_RESPONSE_HEADERS_KEY = "response_headers"
# The ext_proc's answer to what it can no longer change itself without a response headers message, for
# envoy/lua/translated_response.lua: whether the answer streams, and the client's status of a whole answer.
TRANSLATED_METADATA_NAMESPACE = "switchyard.translated"
TRANSLATED_STREAM_KEY = "stream"
TRANSLATED_STATUS_KEY = "status"
# the provider statuses the client gets as another (Anthropic's 529 is OpenAI's 503), for an answer without a body,
# which the ext_proc never sees
TRANSLATED_STATUSES_KEY = "statuses"
# What the guardrails did to a client request (extproc/guard_exchange.py), for the answer log: by stage
# ("request", "response"), the `GuardEvents` of that stage, encoded.
GUARDRAILS_METADATA_NAMESPACE = "switchyard.guardrails"
GUARDRAILS_STAGES = ("request", "response")
# The response code details of a guardrail's 400: the local-reply mappers give OpenAI-shaped ones their `code`.
GUARDRAIL_BLOCK_DETAILS = "switchyard_guardrail_blocked"
# The usage an answer reported (JSON answers: json_to_metadata; streams: envoy/lua/stream_usage.lua).
USAGE_METADATA_NAMESPACE = "switchyard.usage"
# The body's `model`, lifted by json_to_metadata: routes match on it, client_auth.lua checks it.
MODEL_KEY = "model"
# Endpoint metadata key holding the target's rewrite (controlplane/attempt_rewrite.py).
REWRITE_METADATA_KEY = "rewrite"
# Request members lifted into metadata: whether the client streams, whether it asked for usage itself.
STREAM_KEY = "stream"
CLIENT_USAGE_KEY = "client_usage"
# Set by client_auth.lua: the authenticated client, and how long a refused one should wait.
CLIENT_METADATA_KEY = "client"
RETRY_AFTER_METADATA_KEY = "retry_after"
# The usage counts an answer may report, in any client API's names, by key in the usage metadata. Anthropic's
# input_tokens leave out its cache reads and writes; OpenAI's prompt_tokens (chat) and input_tokens (Responses)
# include the cached ones, which they name in a details object (`cached_tokens`, and `cache_write_tokens` where a
# translation knows it): usage accounting counts and prices those apart (controlplane/usage/record.py).
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cached_tokens",
    "cache_write_tokens",
)
# Where a whole JSON answer carries each count, when not at `usage.<key>`: OpenAI nests its cached tokens in
# `prompt_tokens_details` (chat) or `input_tokens_details` (Responses); an answer has one or the other.
USAGE_DETAILS = ("prompt_tokens_details", "input_tokens_details")
USAGE_DETAIL_KEYS = ("cached_tokens", "cache_write_tokens")

# Request parameters some translation may refuse (each pair's `may_refuse`, extproc/translators): the listener
# flags a request carrying one under `OWN_API_ONLY_KEY`, and its route then skips targets of another API. A unit
# test checks this set against the translators.
PARAMETERS_THAT_MAY_NOT_TRANSLATE = frozenset(
    {
        "conversation",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_tool_calls",
        "n",
        "presence_penalty",
        "previous_response_id",
        "prompt",
        "response_format",
        "seed",
        "thinking",
        "top_k",
        "top_logprobs",
    }
)
OWN_API_ONLY_KEY = "own_api_only"

# Custom tags of the two access logs (resources/access_logs.py writes them, telemetry/ reads them).
TARGET_KEY_TAG = "switchyard_target"
# The answer log's one tag summing up the answer (controlplane/answer_summary.py); the tags below are what an
# answer log carried before it, still read from entries that have no summary.
ANSWER_SUMMARY_TAG = "switchyard_answer"
OUTPUT_TOKENS_TAG = "switchyard_output_tokens"
# What the ext_proc measured of a stream it translated (extproc/exchange.py), by key in STREAM_METADATA_NAMESPACE
# → the attempt log's tag.
STREAM_TAGS = {
    "ttft_ms": "switchyard_ttft_ms",
    "output_tokens": "switchyard_stream_tokens",
    "input_tokens": "switchyard_stream_input_tokens",
    "cache_read_tokens": "switchyard_stream_cache_read_tokens",
    "cache_write_tokens": "switchyard_stream_cache_write_tokens",
    "generation_ms": "switchyard_generation_ms",
}
# The usage counts, by key in USAGE_METADATA_NAMESPACE → the answer log's tag.
USAGE_TAGS = {key: f"switchyard_usage_{key}" for key in USAGE_KEYS}

# --- Headers ------------------------------------------------------------------------------------------------------

# Carries the picked endpoint's rewrite from the header_mutation filter to attempt_rewrite.lua (never upstream).
REWRITE_HEADER = "x-switchyard-rewrite"
# Carries a TranslationRequest from attempt_rewrite.lua to the ext_proc (never upstream): to a target of another API
TRANSLATE_HEADER = "x-switchyard-translate"
# the same when the client asked for a stream: the ext_proc then has Envoy send it the answer chunk by chunk, not
# whole (TRANSLATED_STREAM_MODE)
TRANSLATE_STREAM_HEADER = "x-switchyard-translate-stream"
# the same for a same-API attempt with body rules only ("rules only"), which Envoy sends to an ext_proc filter that
# skips the response
RULES_HEADER = "x-switchyard-rules"
# What Envoy sends the ext_proc of a translated attempt (ext_proc's ProcessingMode, as JSON): the request headers
# and whole body, the answer's body whole, never the response headers (they come as metadata). For a streamed
# request the ext_proc answers the request headers with TRANSLATED_STREAM_MODE (a mode override): the answer's
# chunks then come as they arrive, to be translated at once. One filter for both, not one per mode: a filter that
# Envoy skips still costs a same-API attempt of the cluster about 15 us.
TRANSLATED_WHOLE_MODE = {
    "request_header_mode": "SEND",
    "response_header_mode": "SKIP",
    "request_body_mode": "BUFFERED",
    "response_body_mode": "BUFFERED",
    "request_trailer_mode": "SKIP",
    "response_trailer_mode": "SKIP",
}
TRANSLATED_STREAM_MODE = {**TRANSLATED_WHOLE_MODE, "response_body_mode": "STREAMED"}
# The attempt's request headers a SigV4 signature covers, which the ext_proc reads from the request-headers message.
SIGNED_HEADERS = (":authority", ":path")
# All the ext_proc reads of an attempt's request headers: Envoy sends it nothing else (its `forward_rules`), so
# less to encode and decode per attempt, and the provider's credentials never reach it (Bedrock's excepted,
# which it holds to sign).
EXTPROC_READS_HEADERS = (TRANSLATE_HEADER, TRANSLATE_STREAM_HEADER, RULES_HEADER, *SIGNED_HEADERS)
# The provider's response headers the translators read (its status, the answer's type, Bedrock's error type):
# all envoy/lua/translated_response.lua hands the ext_proc, in the metadata Envoy forwards with the response body.
PROVIDER_HEADERS_READ = (":status", "content-type", "x-amzn-errortype")
# The request's routing key, set by envoy/lua/route_key.lua once the body's `model` is lifted: method, path
# without its query and model, joined by ROUTE_KEY_SEPARATOR, which neither of the first two can hold (never
# upstream). The virtual host looks it up in one exact map of the routes matched on those three alone
# (controlplane/resources/route_index.py).
ROUTE_KEY_HEADER = "x-switchyard-route-key"
ROUTE_KEY_SEPARATOR = " "
# The authenticated client's name, from client_auth.lua to the request limiter (never upstream).
CLIENT_HEADER = "x-switchyard-client"
# gRPC initial metadata of the guardrails filter's streams (not an HTTP header of the client request): the rule
# sets of the route and of its clients (`GuardSpec`). Tells a guard stream from an attempt's translation stream.
GUARDRAILS_HEADER = "x-switchyard-guardrails"
# All the guardrails filter's ext_proc stream reads of the client request's and the answer's headers (its
# `forward_rules`): the client's name, and whether the answer is a success and a stream. Never the client's key.
GUARD_READS_HEADERS = (CLIENT_HEADER, ":status", "content-type")
# Answer headers telling the client which target served, and in how many attempts.
TARGET_HEADER = "x-switchyard-target"
ATTEMPTS_HEADER = "x-switchyard-attempts"
# The client port's readiness path (503 while draining).
READINESS_PATH = "/healthz"


# --- The translation request: what the ext_proc needs for one attempt, carried with the attempt ------------------


@dataclass(frozen=True)
class TranslationRequest:
    """What the ext_proc needs to translate one attempt, carried in the `TRANSLATE_HEADER` of the attempt itself.

    attempt_rewrite.lua copies it from the picked endpoint's metadata into the header on attempts that must be
    translated (or have body rules), and removes the header on every other attempt. Envoy runs the ext_proc only
    when the header is present, and the ext_proc needs nothing else: no table to hold, nothing to wait for after a
    restart, and no provider key, except for providers whose requests are signed over the final body (Bedrock:
    `sigv4`), which only the ext_proc has. The control plane encodes it, the ext_proc decodes it.
    """

    client_api: str  # the API the client called
    provider_api: str  # the API the picked target speaks
    model: str  # the target's model, written into the translated body
    client_model: str  # the model the client asked for, written into the translated answer
    route: str  # for messages only: which route and target could not serve
    target: str
    # the target's body rules (`encode_body_rules`); "" for none. A same-API attempt comes to the ext_proc only
    # for them: "rules only", no translation.
    body_rules: str = ""
    # the upstream :path for a streamed request, where the provider streams at another path (Gemini); "" when
    # the body alone asks for a stream
    stream_path: str = ""
    # form-encoded SigV4 region, service and credentials (extproc/sigv4.py), for providers that sign the final
    # body (Bedrock); "" for every other. The only provider credential the ext_proc ever receives.
    sigv4: str = ""
    # what the client asks of the API: "" to generate, `COUNT_TOKENS` to count a request's input tokens (the
    # body is the same request, the answer a count: the pair translates both another way)
    operation: str = ""

    def encode(self) -> str:
        fields = {
            "client_api": self.client_api,
            "provider_api": self.provider_api,
            "model": self.model,
            "client_model": self.client_model,
            "route": self.route,
            "target": self.target,
        }
        # Optional members only when set, so attempts without them keep the same header value.
        if self.body_rules:
            fields["body_rules"] = self.body_rules
        if self.stream_path:
            fields["stream_path"] = self.stream_path
        if self.sigv4:
            fields["sigv4"] = self.sigv4
        if self.operation:
            fields["operation"] = self.operation
        return urlencode(fields, quote_via=quote)


# The `operation` of a translation request for a token-counting endpoint.
COUNT_TOKENS = "count_tokens"


# Every encoded value starts so (`encode` writes `client_api` first): Envoy's matcher tells presence by this prefix.
TRANSLATION_VALUE_PREFIX = "client_api="


@lru_cache(maxsize=4096)
def decode_translation_request(value: str) -> TranslationRequest | None:
    """None for a value the control plane did not write (a bug, or a header from elsewhere). Cached: there are only
    as many values as endpoints."""
    fields = dict(parse_qsl(value, keep_blank_values=True))
    try:
        return TranslationRequest(
            client_api=fields["client_api"],
            provider_api=fields["provider_api"],
            model=fields["model"],
            client_model=fields["client_model"],
            route=fields["route"],
            target=fields["target"],
            body_rules=fields.get("body_rules", ""),
            stream_path=fields.get("stream_path", ""),
            sigv4=fields.get("sigv4", ""),
            operation=fields.get("operation", ""),
        )
    except KeyError:
        return None


def encode_body_rules(rules: dict[str, Any]) -> str:
    """Compact, key-sorted JSON: the same rules always give the same header value (and golden file)."""
    return json.dumps(rules, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@lru_cache(maxsize=1024)
def decode_body_rules(encoded: str) -> dict[str, Any]:
    """The rules of one header value (cached: there are only as many as targets with rules)."""
    rules = json.loads(encoded) if encoded else {}
    if not isinstance(rules, dict):
        raise ValueError("body rules must be a JSON object")
    return rules


# --- Guardrails: the rule sets a guarded client request is checked with, carried by its ext_proc stream ---------


@dataclass(frozen=True)
class GuardSpec:
    """What the guardrails filter's stream carries in `GUARDRAILS_HEADER`: the client API of the route (the
    shape of its texts and of a block's 400), the route's own rules, and the rules of each client that may call
    the route, as the YAML's dicts. The control plane encodes it per Envoy route; the ext_proc decodes each
    distinct value once and picks the client's rules by the client name client_auth.lua put in CLIENT_HEADER."""

    api: str
    route: tuple[dict[str, Any], ...] = ()
    clients: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()

    def encode(self) -> str:
        """Compact, key-sorted, ASCII-only JSON: a valid header value, the same for the same rules."""
        document = {"api": self.api, "route": list(self.route), "clients": {n: list(r) for n, r in self.clients}}
        return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


@lru_cache(maxsize=1024)
def decode_guard_spec(value: str) -> GuardSpec | None:
    """None for a value the control plane did not write. Cached: there are only as many values as routes."""
    try:
        document = json.loads(value)
        clients = document.get("clients") or {}
        return GuardSpec(
            api=str(document["api"]),
            route=tuple(document.get("route") or ()),
            clients=tuple((str(name), tuple(rules)) for name, rules in sorted(clients.items())),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


# --- Tracing ------------------------------------------------------------------------------------------------------

# The cluster of the OTLP/gRPC receiver Envoy's OpenTelemetry tracer exports to (the YAML's `tracing.otlp`).
OTLP_CLUSTER = "switchyard_otlp"


# --- Session affinity ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionField:
    """A body member an API defines to name a session (or the end user behind it), lifted by json_to_metadata
    into `metadata_key` and copied into `header` by the listener, because Envoy's hash policy reads headers but
    not metadata (and a filter-state string did not hash on Envoy 1.40, measured). Attempts go without it."""

    path: tuple[str, ...]

    @property
    def metadata_key(self) -> str:
        return "session_" + "_".join(self.path)

    @property
    def header(self) -> str:
        return "x-switchyard-session-" + "-".join(self.path).replace("_", "-")


# Per client API, first sent wins: OpenAI's `prompt_cache_key` exists to route for its prompt cache and replaces
# `user` there (openai SDK: CompletionCreateParams, ResponseCreateParams); Anthropic's `metadata.user_id`
# (anthropic SDK: MetadataParam).
_OPENAI_SESSION = (SessionField(("prompt_cache_key",)), SessionField(("user",)))
SESSION_FIELDS: dict[WireApi, tuple[SessionField, ...]] = {
    WireApi.OPENAI: _OPENAI_SESSION,
    WireApi.RESPONSES: _OPENAI_SESSION,
    WireApi.ANTHROPIC: (SessionField(("metadata", "user_id")),),
}
ALL_SESSION_FIELDS = tuple(dict.fromkeys(f for fields in SESSION_FIELDS.values() for f in fields))
