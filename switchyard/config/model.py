"""Pydantic models of the routing YAML.

The models only check the shape of each value; checks that need the whole file (a target naming an
unknown provider, duplicate routes) live in `semantics.py`, which knows the YAML path of every value.
"""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from switchyard.config.affinity import Affinity
from switchyard.config.guardrails import Guardrails
from switchyard.config.units import at_least_a_millisecond, parse_duration, parse_size
from switchyard.contract import WireApi

# Envoy durations here are written with millisecond precision; anything shorter would become 0 (= no timeout).
Seconds = Annotated[float, BeforeValidator(parse_duration), AfterValidator(at_least_a_millisecond)]
Bytes = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]

# 529 is Anthropic's "overloaded": the classic reason to try another provider.
DEFAULT_FALLBACK_CODES = (429, 500, 502, 503, 504, 529)


class _Strict(BaseModel):
    # Unknown keys are errors: a typo such as `fallback_code:` must not silently disable fallback.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderKind(StrEnum):
    OPENAI = "openai"
    AZURE_OPENAI = "azure_openai"
    OPENAI_COMPATIBLE = "openai_compatible"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    BEDROCK = "bedrock"


class Strategy(StrEnum):
    PRIORITY = "priority"
    WEIGHTED = "weighted"
    ROUND_ROBIN = "round_robin"
    LOWEST_COST = "lowest_cost"
    LEAST_LATENCY = "least_latency"


class ClientEndpoint(StrEnum):
    """The API endpoints clients may call (OpenAI's and Anthropic's); each becomes one Envoy route per model."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    RESPONSES = "responses"
    # Token counting: the input a call to the endpoint above it would carry, counted by the provider's tokenizer
    MESSAGES_COUNT_TOKENS = "count_tokens"
    RESPONSES_INPUT_TOKENS = "input_tokens"

    @property
    def path(self) -> str:
        return _CLIENT_PATHS[self]

    @property
    def api(self) -> WireApi:
        """The API the client speaks on this endpoint: OpenAI's (chat completions and the older endpoints),
        OpenAI's Responses API (another wire format, translated on its own) or Anthropic's."""
        return _CLIENT_APIS.get(self, WireApi.OPENAI)

    @property
    def error_shape(self) -> WireApi:
        """Whose error body the client expects: the Responses API answers errors as OpenAI's other endpoints do."""
        return WireApi.ANTHROPIC if self.api is WireApi.ANTHROPIC else WireApi.OPENAI

    @property
    def counts_tokens(self) -> bool:
        """A token-counting endpoint: it generates nothing, so its answer carries a count and no usage."""
        return self in (ClientEndpoint.MESSAGES_COUNT_TOKENS, ClientEndpoint.RESPONSES_INPUT_TOKENS)


_CLIENT_PATHS = {
    ClientEndpoint.CHAT: "/v1/chat/completions",
    ClientEndpoint.COMPLETIONS: "/v1/completions",
    ClientEndpoint.EMBEDDINGS: "/v1/embeddings",
    ClientEndpoint.MESSAGES: "/v1/messages",
    ClientEndpoint.RESPONSES: "/v1/responses",
    ClientEndpoint.MESSAGES_COUNT_TOKENS: "/v1/messages/count_tokens",
    ClientEndpoint.RESPONSES_INPUT_TOKENS: "/v1/responses/input_tokens",
}
_CLIENT_APIS = {
    ClientEndpoint.MESSAGES: WireApi.ANTHROPIC,
    ClientEndpoint.RESPONSES: WireApi.RESPONSES,
    ClientEndpoint.MESSAGES_COUNT_TOKENS: WireApi.ANTHROPIC,
    ClientEndpoint.RESPONSES_INPUT_TOKENS: WireApi.RESPONSES,
}


def _date_as_text(value: Any) -> Any:
    """YAML reads an unquoted 2024-10-21 as a date; Azure api-versions look exactly like that."""
    return value.isoformat() if isinstance(value, date) else value


def redact_url(url: str) -> str:
    """A URL without any user:password@ part, for messages and summaries."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[-1]).geturl()


class Provider(_Strict):
    kind: ProviderKind
    base_url: str
    api_key: SecretStr | None = None
    api_version: Annotated[str | None, BeforeValidator(_date_as_text)] = Field(
        default=None,
        description="azure_openai: the api-version query parameter; anthropic: the anthropic-version header",
    )
    # bedrock: every attempt is signed (SigV4) with these, by the ext_proc, once its body is final
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z0-9]+)+$")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    # openai_compatible only: the server has OpenAI's Responses API itself (`/v1/responses`). Without it,
    # Responses calls are translated to chat completions, which every OpenAI-compatible server has.
    responses_api: bool = False
    # How long a connection to this provider may sit idle before Switchyard closes it. A server closes idle
    # connections too (uvicorn, which serves vLLM and many others, after 5 s); when it does just as a request
    # leaves on one, that request fails and fails over (or, on a one-target route, fails). Closing first avoids
    # the race: 4 s, below uvicorn's 5 s and the official OpenAI and Anthropic SDKs' 5 s. A route's targets share
    # Envoy's connection settings, so a route uses the shortest of its providers'.
    idle_timeout: Seconds = 4.0

    @model_validator(mode="after")
    def _responses_api_is_for_compatible_servers(self) -> Provider:
        """OpenAI and Azure OpenAI always have the Responses API and the other kinds never do: the flag would
        say nothing there, or something false."""
        if self.responses_api and self.kind is not ProviderKind.OPENAI_COMPATIBLE:
            raise ValueError("`responses_api` is for openai_compatible providers only")
        return self

    @model_validator(mode="before")
    @classmethod
    def _bedrock_default_url(cls, data: Any) -> Any:
        """Bedrock's endpoint follows from the region; `base_url` is only for VPC endpoints (and tests)."""
        if isinstance(data, dict) and data.get("kind") == "bedrock" and "base_url" not in data:
            region = data.get("region")
            if isinstance(region, str) and region:
                return {**data, "base_url": f"https://bedrock-runtime.{region}.amazonaws.com"}
        return data

    @field_validator("session_token", mode="before")
    @classmethod
    def _blank_token_is_no_token(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_no_key(cls, value: Any) -> Any:
        """`${KEY:-}` or an empty variable means "no key", never an empty credential on the wire."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {redact_url(value)!r}")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            port = parts.netloc.rpartition(":")[2]
            raise ValueError(f"has an invalid port {port!r} (expected 1-65535)") from None
        return value.rstrip("/")

    @property
    def scheme(self) -> str:
        return urlsplit(self.base_url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def authority(self) -> str:
        """The Host header value: the port only when it is not the scheme's default."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        default = 443 if parts.scheme == "https" else 80
        return host if parts.port in (None, default) else f"{host}:{parts.port}"

    @property
    def path_prefix(self) -> str:
        return urlsplit(self.base_url).path.rstrip("/")

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "https"


INPUT_TOKENS_PER_OUTPUT_TOKEN = 3


class Price(_Strict):
    """USD per 1M tokens, as providers publish them; `lowest_cost` routes rank targets by input and output.

    Prompt tokens read from or written to the provider's cache are priced apart, as providers bill them (reads
    well below the input price, Anthropic's writes above it). Without `cache_read` / `cache_write` they cost the
    input price: a price written before caching was counted keeps costing what it did."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)

    @property
    def blended(self) -> float:
        """Per 1M tokens of typical chat traffic (three input tokens per output token): what lowest_cost ranks."""
        return (self.input * INPUT_TOKENS_PER_OUTPUT_TOKEN + self.output) / (INPUT_TOKENS_PER_OUTPUT_TOKEN + 1)

    @property
    def cache_read_or_input(self) -> float:
        return self.input if self.cache_read is None else self.cache_read

    @property
    def cache_write_or_input(self) -> float:
        return self.input if self.cache_write is None else self.cache_write


BodyKey = Annotated[str, Field(min_length=1)]
# The top-level member a body rule must never remove or replace: the target's `model` already says what it is.
_PROTECTED = "model"
_MODEL_RULE_PROBLEMS = {
    "drop": "would remove `model` (the target's `model` sets it)",
    "rename": "would remove `model` (the target's `model` sets it)",
    "set": "would replace `model` (the target's `model` sets it)",
    "default": "would replace `model` (the target's `model` sets it)",
    "cap": "`model` is not a number",
}


class BodyRules(_Strict):
    """Per-target fix-ups of the request body, applied by the ext_proc on attempts to that target only.

    Top-level members only, in this order: `rename`, `drop`, `default` (only where absent or null), `set`,
    `cap` (numbers above the cap are lowered; absent ones stay absent). For the provider's body: on an
    attempt translated to another API, after the translation."""

    drop: tuple[BodyKey, ...] = ()
    rename: dict[BodyKey, BodyKey] = Field(default_factory=dict)
    set: dict[BodyKey, Any] = Field(default_factory=dict)
    default: dict[BodyKey, Any] = Field(default_factory=dict)
    cap: dict[BodyKey, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)

    @field_validator("drop", "rename", "set", "default", "cap")
    @classmethod
    def _leaves_model_alone(cls, value: Any, info: ValidationInfo) -> Any:
        """The target's `model` sets the body's `model`: no rule may remove, replace or cap it."""
        if _PROTECTED in value:
            raise ValueError(_MODEL_RULE_PROBLEMS[str(info.field_name)])
        if info.field_name == "rename" and _PROTECTED in value.values():
            raise ValueError("would replace `model` (the target's `model` sets it)")
        return value

    @property
    def is_empty(self) -> bool:
        return not (self.drop or self.rename or self.set or self.default or self.cap)


class Target(_Strict):
    name: str | None = Field(default=None, min_length=1)
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    suffix: str | None = None
    priority: int | None = Field(default=None, ge=0, le=127)
    weight: int = Field(default=1, ge=1, le=1000)
    price: Price | None = None
    body: BodyRules | None = None

    @field_validator("suffix")
    @classmethod
    def _check_suffix(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @property
    def display_name(self) -> str:
        return self.name or f"{self.provider}/{self.model}"


class SeedTarget(_Strict):
    """The seed vocabulary (`primary:`/`backup:`), where `name` is the provider's model name."""

    provider: str = Field(min_length=1)
    name: str = Field(min_length=1)
    suffix: str | None = None

    @field_validator("suffix")
    @classmethod
    def _check_suffix(cls, value: str | None) -> str | None:
        return Target._check_suffix(value)


def _share(value: Any) -> Any:
    """A share of traffic or of attempts, as 0.05 or "5%"."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        try:
            return float(number) / 100
        except ValueError:
            raise ValueError(f"expected a share like 0.5 or 50%, got {value!r}") from None
    return value


Share = Annotated[float, BeforeValidator(_share)]


class FailureRate(_Strict):
    """Eject a target whose share of failed attempts over a sliding window reaches `threshold`.

    Judged by the control plane over every Envoy's attempts together, so one gateway-wide view decides,
    and a handful of attempts (`min_requests`) cannot eject a target on bad luck alone."""

    threshold: Share = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1, le=1_000_000)
    window: Seconds = 10.0


class Health(_Strict):
    """Passive health from real traffic: a target failing in a row, or failing too often, is skipped by the
    following requests until `ejection_time` has passed."""

    consecutive_failures: int = Field(default=3, ge=0, le=1000, description="0 never ejects")
    failure_rate: FailureRate | None = FailureRate()
    ejection_time: Seconds = 10.0
    # A 429 parks its target for its Retry-After; this long when the provider sends none.
    rate_limited_for: Seconds = 10.0


class LatencyMeasure(StrEnum):
    # time to the response's first byte: time to first token for streams, the whole generation otherwise
    FIRST_BYTE = "first_byte"
    # a whole (non-streamed) answer's time divided by the output tokens its `usage` reports
    PER_OUTPUT_TOKEN = "per_output_token"
    # time to the first token where the gateway sees tokens (streams translated across APIs), else to the
    # first byte; from answers served in one attempt
    FIRST_TOKEN = "first_token"


class OnUnsupported(StrEnum):
    """What a route does with a request its target's API cannot express (`logprobs` for an Anthropic model)."""

    REJECT = "reject"  # a 400 naming the parameter: the client learns its request cannot be honoured here
    SKIP_TARGET = "skip_target"  # such requests go to the targets of the client's own API only


class Latency(_Strict):
    """How each target's latency average is kept, and (for `least_latency`) how much traffic explores.

    The average is plain over the first `warmup` samples, then moves by `decay` toward each new sample: 0.1
    follows a change within a few dozen attempts without chasing every outlier. `per_output_token` suits
    routes of whole answers of very different lengths, where a long answer is not a slow target."""

    measure: LatencyMeasure = LatencyMeasure.FIRST_BYTE
    decay: float = Field(default=0.1, gt=0, le=1)
    warmup: int = Field(default=3, ge=1, le=1000)
    # least_latency only: the share of traffic the slower targets keep, so a recovered one is noticed
    exploration: Share = Field(default=0.05, ge=0, lt=1)


class Route(_Strict):
    model: str = Field(min_length=1)
    strategy: Strategy = Strategy.PRIORITY
    fallback_codes: tuple[Annotated[int, Field(ge=400, le=599)], ...] = DEFAULT_FALLBACK_CODES
    timeout: Seconds = 30.0
    health: Health = Health()
    latency: Latency = Latency()
    on_unsupported_parameter: OnUnsupported = OnUnsupported.REJECT
    targets: tuple[Target, ...] = ()
    primary: SeedTarget | None = None
    backup: SeedTarget | None = None
    # Checks on every request to this route and its answers (extproc/guardrails); a client's own come first.
    guardrails: Guardrails = ()
    # Keeps a session on one target of a priority level while it is healthy (after `targets`: its check reads them)
    affinity: Affinity | None = None

    @field_validator("affinity")
    @classmethod
    def _affinity_has_a_choice(cls, value: Affinity | None, info: ValidationInfo) -> Affinity | None:
        """Affinity chooses among the targets that share a priority level; where every target is alone at its
        level (a plain primary/backup route), it would change nothing, and a user would believe it did."""
        if value is None:
            return None
        strategy, targets = info.data.get("strategy"), info.data.get("targets")
        if strategy is None or targets is None:  # invalid, and reported as such
            return value
        if not targets:  # the primary/backup shorthand: one target at each of two levels
            raise ValueError("pins nothing: `primary`/`backup` puts one target at each level; list `targets` instead")
        levels = [_level(strategy, index, target) for index, target in enumerate(targets)]
        if len(set(levels)) == len(levels):
            why = "a price of its own" if strategy is Strategy.LOWEST_COST else "a priority level of its own"
            raise ValueError(
                f"pins nothing: every target of this {strategy.value} route has {why}, and affinity only chooses "
                "among targets sharing one"
            )
        return value

    @model_validator(mode="after")
    def _expand_seed_vocabulary(self) -> Route:
        """`primary`/`backup` are sugar for a two-target priority route; mixing both styles is ambiguous."""
        if self.primary is None and self.backup is None:
            if not self.targets:
                raise ValueError("needs `targets` (or the `primary`/`backup` shorthand)")
            return self
        if self.targets:
            raise ValueError("use either `targets` or `primary`/`backup`, not both")
        if self.primary is None:
            raise ValueError("`backup` needs a `primary`")
        seeds = [("primary", self.primary, 0), ("backup", self.backup, 1)]
        targets = tuple(
            Target(name=label, provider=seed.provider, model=seed.name, suffix=seed.suffix, priority=prio)
            for label, seed, prio in seeds
            if seed is not None
        )
        object.__setattr__(self, "targets", targets)
        return self

    @model_validator(mode="after")
    def _lowest_cost_needs_prices(self) -> Route:
        """Price decides the order of a lowest_cost route, so every target needs one and none may say otherwise."""
        if self.strategy is Strategy.LOWEST_COST:
            unpriced = [t.display_name for t in self.targets if t.price is None]
            if unpriced:
                missing = ", ".join(unpriced)
                raise ValueError(
                    "lowest_cost needs `price: {input: ..., output: ...}` (USD per 1M tokens) on every target; "
                    f"missing on {missing}"
                )
            if any(t.priority is not None for t in self.targets):
                raise ValueError("lowest_cost orders targets by price: remove their `priority`")
        return self

    @field_validator("fallback_codes")
    @classmethod
    def _unique_codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a status code more than once")
        return tuple(sorted(value))


def _level(strategy: Strategy, index: int, target: Target) -> float:
    """The priority level a strategy gives a target, as far as the YAML alone decides it (see
    controlplane/strategies/): list order for priority, price for lowest_cost, one shared level otherwise."""
    if strategy is Strategy.LOWEST_COST:
        return target.price.blended if target.price is not None else 0.0
    default = index if strategy is Strategy.PRIORITY else 0
    return default if target.priority is None else target.priority


class BudgetPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ClientLimits(_Strict):
    """Per client, across the whole fleet (not per node). A limit per minute admits the minute's allowance at
    any pace, all at once included, as providers and other gateways mean it; `burst` caps how many requests
    may arrive at once for clients that must be smoothed."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    tokens_per_minute: int | None = Field(default=None, ge=1, le=1_000_000_000)
    burst: int | None = Field(
        default=None, ge=1, le=10_000_000, description="most requests admitted at once; absent: requests_per_minute"
    )

    @model_validator(mode="after")
    def _burst_tightens_the_request_limit(self) -> ClientLimits:
        if self.burst is None:
            return self
        if self.requests_per_minute is None:
            raise ValueError("`burst` limits requests: it needs `requests_per_minute`")
        if self.burst > self.requests_per_minute:
            raise ValueError(
                f"`burst` ({self.burst}) can only tighten `requests_per_minute` ({self.requests_per_minute}), "
                "which already admits the minute's allowance at once"
            )
        return self


class Budget(_Strict):
    """Spend in USD per calendar period (UTC), priced with the targets' `price`."""

    usd: float = Field(gt=0)
    per: BudgetPeriod = BudgetPeriod.MONTH


_DIGEST_PREFIX = "sha256:"


def _client_key(value: Any) -> Any:
    """A key as clients send it, or `sha256:` + 64 hex digits of it, so the YAML need not hold a usable key."""
    if not isinstance(value, str):
        return value
    if value.startswith(_DIGEST_PREFIX):
        digest = value[len(_DIGEST_PREFIX) :]
        if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
            raise ValueError('a sha256: key is 64 hex digits (e.g. `printf %s "$KEY" | sha256sum`)')
        return _DIGEST_PREFIX + digest.lower()
    if len(value) < 16:
        raise ValueError("a client key needs at least 16 characters (or give its sha256: digest)")
    if any(c.isspace() for c in value):
        raise ValueError("a client key cannot contain whitespace")
    return value


ClientKey = Annotated[SecretStr, BeforeValidator(_client_key)]


class Client(_Strict):
    """Who may call: the keys that identify this client, the models (routes) it may use, its limits."""

    keys: tuple[ClientKey, ...] = Field(min_length=1)
    models: tuple[str, ...] | None = Field(default=None, description="route models it may call; absent: all")
    limits: ClientLimits = ClientLimits()
    budget: Budget | None = None
    # Checks on every request this client makes, whatever the route: they run before the route's own.
    guardrails: Guardrails = ()

    def key_digests(self) -> tuple[str, ...]:
        """Every key as a hex sha256 digest: how keys are compared and stored (a literal key never leaves memory)."""
        return tuple(key_digest(key.get_secret_value()) for key in self.keys)


def key_digest(key: str) -> str:
    """The hex sha256 of a client key, or the digest a `sha256:` key already is."""
    if key.startswith(_DIGEST_PREFIX):
        return key[len(_DIGEST_PREFIX) :]
    return hashlib.sha256(key.encode()).hexdigest()


def _listen_address(value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return value


ListenAddress = Annotated[str, BeforeValidator(_listen_address)]


def _tracing_off(value: Any) -> Any:
    """`tracing: off` (YAML 1.1 reads `off`/`no`/`false` as a boolean) means no tracing, like leaving it out."""
    return None if value is False else value


class Tracing(_Strict):
    """OpenTelemetry traces from Envoy's own tracer, sent over OTLP/gRPC (plaintext) to a collector."""

    otlp: ListenAddress = Field(description="HOST:PORT of an OTLP/gRPC receiver (an OpenTelemetry collector)")
    sampling: float = Field(default=0.1, ge=0.0, le=1.0, description="share of client requests traced")
    service_name: str = Field(default="switchyard", min_length=1, max_length=200)


class Config(_Strict):
    listen: ListenAddress = "127.0.0.1:8080"
    max_request_body: Bytes = Field(
        default=8 * 1024 * 1024,
        le=1024**3,  # Envoy's buffer limits are 32-bit; a gateway buffering over 1 GiB per request is a mistake
        description="larger bodies get 413",
    )
    providers: dict[str, Provider]
    routes: tuple[Route, ...]
    # Absent: the gateway is open (anyone who reaches the listener may call any route), as before.
    clients: dict[str, Client] | None = None
    # Absent (or `off`): no traces.
    tracing: Annotated[Tracing | None, BeforeValidator(_tracing_off)] = None

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def provider_of(self, target: Target) -> Provider:
        return self.providers[target.provider]

    @property
    def measures_output_tokens(self) -> bool:
        """Whether any route ranks its targets by time per output token: only then does Envoy lift each whole
        answer's `completion_tokens` for the latency average and put it in the answer log."""
        return any(route.latency.measure is LatencyMeasure.PER_OUTPUT_TOKEN for route in self.routes)

    @property
    def has_guardrails(self) -> bool:
        """Whether any route or client has guardrails: only then does Envoy's listener carry the guard filter
        (and its reply shape), so a gateway without them pays nothing for the feature."""
        return any(route.guardrails for route in self.routes) or any(
            client.guardrails for client in (self.clients or {}).values()
        )

    def guardrails_for(self, model: str, client: str | None) -> Guardrails:
        """Every check a request by `client` to the route `model` passes: the client's first, then the route's.

        A client applies its own on every route it calls, so a team's data rules need not be repeated per route."""
        own = self.clients[client].guardrails if self.clients and client in self.clients else ()
        route = next((r for r in self.routes if r.model == model), None)
        return own + (route.guardrails if route is not None else ())
