"""Session affinity: which part of a request names its session, so a route keeps the session on one target.

Providers cache a conversation's prompt on the machine that served it; a session that hops between equal
targets pays full price for its prompt on every hop. A session is named either by a header the client sends
or by the session fields the APIs define in the body (`contract.SESSION_FIELDS`). Envoy hashes that name
onto the route's targets (controlplane/affinity.py); what it changes per strategy is in docs/configuration.md.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# An HTTP header name as Envoy's hash policy sees it: lowercase token characters.
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,100}")
# Headers that are gone or replaced before Envoy routes (credentials are checked and removed; the others are
# Switchyard's own or describe the body): hashing on them would pin nothing, or everyone alike.
_UNUSABLE_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "content-length", "content-type", "host"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Affinity(_Strict):
    """`header`: the client's own session header (it still reaches the provider). `body_fields`: OpenAI's
    `prompt_cache_key`, then `user`; Anthropic's `metadata.user_id`. With both, the header wins when sent."""

    header: str | None = Field(default=None, min_length=1)
    body_fields: bool = False

    @field_validator("header")
    @classmethod
    def _usable_header(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = value.lower()
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{value!r} is not an HTTP header name")
        if name in _UNUSABLE_HEADERS or name.startswith("x-switchyard-"):
            raise ValueError(
                f"{value!r} is a credential, describes the body or is Switchyard's own: name a session header"
            )
        return name

    @model_validator(mode="after")
    def _names_a_session(self) -> Affinity:
        if self.header is None and not self.body_fields:
            raise ValueError("names no session: set `header: <name>` and/or `body_fields: true`")
        return self
