"""What the ext_proc needs to translate one attempt, carried with the attempt itself.

The Lua upstream filter (envoy/lua/attempt_rewrite.lua) copies this from the picked endpoint's metadata into
the `x-switchyard-translate` request header on attempts that must be translated, and removes the header on
every other attempt. Envoy runs the ext_proc only when the header is present, and the ext_proc needs nothing
else: no table to hold, nothing to wait for after a restart, and no provider key, except for providers whose
requests are signed over the final body (Bedrock: `sigv4`), which only the ext_proc has. The control plane
encodes it (`encode`), the ext_proc decodes it (`decode`, cached: there are only as many values as endpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode

HEADER = "x-switchyard-translate"
# Every value starts so (`encode` writes `client_api` first): Envoy's matcher tells presence by this prefix.
VALUE_PREFIX = "client_api="


@dataclass(frozen=True)
class TranslationRequest:
    client_api: str  # the API the client called: "openai" or "anthropic"
    provider_api: str  # the API the picked target speaks
    model: str  # the target's model, written into the translated body
    client_model: str  # the model the client asked for, written into the translated answer
    route: str  # for messages only: which route and target could not serve
    target: str
    # the target's body rules as compact JSON (extproc/body_rules.py); "" for none. A same-API attempt comes
    # here only for them: "rules only", no translation.
    body_rules: str = ""
    # the upstream :path for a streamed request, where the provider streams at another path (Gemini); ""
    # when the body alone asks for a stream
    stream_path: str = ""
    # form-encoded SigV4 region, service and credentials (extproc/sigv4.py), for providers that sign the final
    # body (Bedrock); "" for every other. The only provider credential the ext_proc ever receives.
    sigv4: str = ""

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
        return urlencode(fields, quote_via=quote)


@lru_cache(maxsize=4096)
def decode(value: str) -> TranslationRequest | None:
    """None for a value the control plane did not write (a bug, or a header from elsewhere)."""
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
        )
    except KeyError:
        return None
