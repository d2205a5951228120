"""The `guardrails:` lists of routes and clients: which checks run on a request or its answer, and what they do.

Only the shape and the values are checked here (a pattern that compiles, a schema that is a JSON Schema, a stage
and an action that make sense for the check); running the checks is the ext_proc's (`extproc/guardrails/`), so
this module imports nothing of it. Each check kind is its own model, chosen by `check:`, so a key that belongs to
another kind (`pattern:` on a `pii` check) is an error at its line rather than silently ignored.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import jsonschema
import regex
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from switchyard.config.units import at_least_a_millisecond, parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuardrailStage(StrEnum):
    """When a check runs: on what the client sends, on what it gets back, or on both."""

    REQUEST = "request"
    RESPONSE = "response"
    BOTH = "both"

    @property
    def on_request(self) -> bool:
        return self is not GuardrailStage.RESPONSE

    @property
    def on_response(self) -> bool:
        return self is not GuardrailStage.REQUEST


class GuardrailAction(StrEnum):
    MASK = "mask"  # replace each match with a typed placeholder ([EMAIL_1]), the same one for the same value
    BLOCK = "block"  # refuse with a 400 naming the check, never the matched text
    FLAG = "flag"  # let it pass; count and log the rule


class OnGuardrailError(StrEnum):
    """What a check that fails or overruns its time budget does: refuse the request (closed) or let it by (open)."""

    BLOCK = "block"
    PASS = "pass"


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"  # 13-19 digits passing the Luhn check
    IBAN = "iban"  # passing its mod-97 checksum
    IP_ADDRESS = "ip_address"


class SecretKind(StrEnum):
    PROVIDER_KEY = "provider_key"  # OpenAI, Anthropic, Google, Hugging Face, GitHub, Slack, Stripe API keys
    CLOUD_CREDENTIAL = "cloud_credential"  # AWS access key ids and secret keys, Azure storage keys
    PRIVATE_KEY = "private_key"  # PEM / OpenSSH private key blocks
    JWT = "jwt"


# A plugin's time budget: long enough for a call to a local service, short enough not to stall every request.
TimeBudget = Annotated[float, BeforeValidator(parse_duration), AfterValidator(at_least_a_millisecond), Field(le=60)]


class _Guardrail(_Strict):
    # A name for metrics, logs and the block message, where the check's own name is not enough (two regexes).
    label: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    stage: GuardrailStage = GuardrailStage.REQUEST

    @property
    def rule_name(self) -> str:
        """What a block reply, a metric label and a log line call this rule (never what it matched)."""
        return self.label or str(getattr(self, "check", "guardrail"))


class PiiGuardrail(_Guardrail):
    check: Literal["pii"]
    kinds: tuple[PiiKind, ...] = Field(default=tuple(PiiKind), min_length=1)
    action: GuardrailAction = GuardrailAction.MASK


class SecretsGuardrail(_Guardrail):
    check: Literal["secrets"]
    kinds: tuple[SecretKind, ...] = Field(default=tuple(SecretKind), min_length=1)
    action: GuardrailAction = GuardrailAction.BLOCK


class RegexGuardrail(_Guardrail):
    """A pattern of the team's own, in Python's `re` syntax (run by the `regex` package, which can stop a
    pattern that backtracks too long: a hostile prompt must not hang the gateway)."""

    check: Literal["regex"]
    pattern: str = Field(min_length=1)
    ignore_case: bool = False
    action: GuardrailAction = GuardrailAction.BLOCK

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = regex.compile(value, regex.VERSION0)
        except regex.error as error:
            raise ValueError(f"is not a valid regular expression: {error}") from None
        if compiled.search(""):
            raise ValueError("matches the empty text, so it would match everywhere")
        return value


class TermsGuardrail(_Guardrail):
    """Words or phrases, matched as whole words (a term `secret` does not match `secretary`)."""

    check: Literal["terms"]
    terms: tuple[Annotated[str, Field(min_length=1)], ...] = Field(min_length=1)
    ignore_case: bool = True
    action: GuardrailAction = GuardrailAction.BLOCK

    @field_validator("terms")
    @classmethod
    def _no_blank_terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not term.strip() for term in value):
            raise ValueError("a term must not be blank")
        return tuple(term.strip() for term in value)


class MaxInputTokensGuardrail(_Guardrail):
    """An upper bound on the prompt's size, estimated before it leaves (no provider tokenizer is at hand)."""

    check: Literal["max_input_tokens"]
    limit: int = Field(ge=1, le=100_000_000)
    action: GuardrailAction = GuardrailAction.BLOCK

    @model_validator(mode="after")
    def _request_only(self) -> MaxInputTokensGuardrail:
        if self.stage is not GuardrailStage.REQUEST:
            raise ValueError("max_input_tokens checks the request: `stage` can only be request")
        if self.action is GuardrailAction.MASK:
            raise ValueError("max_input_tokens has nothing to mask: `action` is block or flag")
        return self


class JsonSchemaGuardrail(_Guardrail):
    """The answer's text must be JSON valid against `schema` (JSON Schema, draft given by its `$schema`,
    2020-12 without one)."""

    check: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")
    stage: GuardrailStage = GuardrailStage.RESPONSE
    action: GuardrailAction = GuardrailAction.BLOCK

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        validator = jsonschema.validators.validator_for(value, default=jsonschema.Draft202012Validator)
        try:
            validator.check_schema(value)
        except jsonschema.SchemaError as error:
            where = "/".join(str(part) for part in error.path) or "the top level"
            raise ValueError(f"is not a valid JSON Schema at {where}: {error.message}") from None
        return value

    @model_validator(mode="after")
    def _response_only(self) -> JsonSchemaGuardrail:
        if self.stage is not GuardrailStage.RESPONSE:
            raise ValueError("json_schema checks the answer: `stage` can only be response")
        if self.action is GuardrailAction.MASK:
            raise ValueError("json_schema has nothing to mask: `action` is block or flag")
        return self


_ENTRY_POINT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")


class PluginGuardrail(_Guardrail):
    """A team's own check: the entry point `name` in the `switchyard.guardrails` group, built with `options`.

    It runs within `timeout`; a plugin that raises or overruns blocks the request (`on_error: block`, closed)
    or lets it pass (`on_error: pass`, open)."""

    check: Literal["plugin"]
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    timeout: TimeBudget = 1.0
    on_error: OnGuardrailError = OnGuardrailError.BLOCK
    action: GuardrailAction = GuardrailAction.BLOCK

    @field_validator("name")
    @classmethod
    def _entry_point_name(cls, value: str) -> str:
        if not _ENTRY_POINT_NAME.fullmatch(value):
            raise ValueError("is an entry point name in the switchyard.guardrails group, such as acme.compliance")
        return value

    @property
    def rule_name(self) -> str:
        return self.label or self.name


Guardrail = Annotated[
    PiiGuardrail
    | SecretsGuardrail
    | RegexGuardrail
    | TermsGuardrail
    | MaxInputTokensGuardrail
    | JsonSchemaGuardrail
    | PluginGuardrail,
    Field(discriminator="check"),
]
Guardrails = tuple[Guardrail, ...]
CHECK_NAMES = ("pii", "secrets", "regex", "terms", "max_input_tokens", "json_schema", "plugin")
GUARDRAIL_MODELS: tuple[type[BaseModel], ...] = (
    PiiGuardrail,
    SecretsGuardrail,
    RegexGuardrail,
    TermsGuardrail,
    MaxInputTokensGuardrail,
    JsonSchemaGuardrail,
    PluginGuardrail,
)
