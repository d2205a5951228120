"""Config → what every attempt to a target must change, decided once per config version (pure).

Envoy applies it by itself on each attempt, with no Python on the request path: the control plane puts the
rewrite of each target into its endpoint's metadata (`rewrite`), an upstream `header_mutation` filter copies
the picked endpoint's value into a request header, and the Lua upstream filter `envoy/lua/attempt_rewrite.lua`
applies it (path, credentials, the body's `model`, content-length) and removes the header. Envoy re-runs
upstream filters on every retry, so a backup gets its own rewrite, not the primary's.

Everything provider-specific is decided here through the provider adapters; the Lua knows no provider.
The encoding is a form-encoded string (`name=value&…`, percent-encoded values) because a header value must
be a flat string and LuaJIT in Envoy has no JSON library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qsl, quote, urlencode

from controlplane.providers import ADAPTERS, MANAGED_HEADERS, SIGNATURE_HEADERS, upstream_path
from controlplane.serving_groups import ServingGroup
from switchyard.config import ClientEndpoint, Config, Route, Target
from switchyard.contract import COUNT_TOKENS, TranslationRequest, WireApi, encode_body_rules

REDACTED = "<redacted>"


@dataclass(frozen=True)
class TargetRewrite:
    """One target's rewrite within one cluster (a cluster may narrow a route to some of its targets)."""

    # client endpoint → upstream :path, query included; endpoints the target cannot serve are absent
    paths: Mapping[str, str]
    # headers every attempt to this target overwrites (credentials, API version)
    set_headers: Mapping[str, str]
    # headers every attempt to this target removes: the other providers' credentials, so neither the client's
    # own key nor a previous attempt's reaches this provider (Envoy keeps header changes across retries)
    remove_headers: tuple[str, ...]
    # the JSON literal the body's top-level `model` becomes on same-API attempts; "" leaves the body alone
    body_model: str
    # another attempt of the same request may change the body's length, so this one resets content-length
    fix_length: bool
    # client endpoint → what the ext_proc needs, where this target speaks another API than that endpoint's
    translations: Mapping[str, TranslationRequest]
    # the target speaks OpenAI's API: streamed requests of OpenAI clients ask it for `stream_options.include_usage`,
    # so the stream ends with its usage (read by envoy/lua/stream_usage.lua for usage accounting)
    asks_usage: bool = False

    def encode(self) -> str:
        """The value of the endpoint's `rewrite` metadata, as envoy/lua/attempt_rewrite.lua parses it."""
        pairs: list[tuple[str, str]] = [(f"path.{endpoint}", path) for endpoint, path in self.paths.items()]
        pairs.extend((f"set.{name}", value) for name, value in self.set_headers.items())
        pairs.append(("remove", ",".join(self.remove_headers)))
        if self.body_model:
            pairs.append(("model", self.body_model))
        if self.fix_length:
            pairs.append(("length", "1"))
        if self.asks_usage:
            pairs.append(("usage", "1"))
        pairs.extend((f"{_ext_proc_kind(request)}.{e}", request.encode()) for e, request in self.translations.items())
        return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def target_rewrite(
    config: Config, route: Route, target: Target, endpoints: frozenset[ClientEndpoint], fix_length: bool
) -> TargetRewrite:
    """The rewrite for attempts to `target` from clients of `endpoints` (one client API: the cluster's)."""
    provider = config.provider_of(target)
    adapter = ADAPTERS[provider.kind]
    headers = adapter.auth_headers(provider)
    model = adapter.body_model(target)
    paths = {
        e.value: path
        for e in ClientEndpoint
        if e in endpoints and (path := upstream_path(e, target, provider)) is not None
    }
    rules = _encoded_body_rules(target)
    signing = adapter.signing(provider)
    sigv4 = urlencode(signing, quote_via=quote) if signing else ""
    # The ext_proc gets the attempts to a target of another API (translation, then the target's body rules)
    # and the same-API attempts to a target with body rules ("rules only"); every other attempt skips it.
    # Body rules shape generation (sampling, limits, extra fields): a token count generates nothing, and the
    # counting endpoints refuse such fields, so counts go without them (same-API counts never reach Python).
    wire_apis = {endpoint: adapter.wire_api(ClientEndpoint(endpoint), provider) for endpoint in paths}
    counts = {endpoint for endpoint in paths if ClientEndpoint(endpoint).counts_tokens}
    translations = {
        endpoint: TranslationRequest(
            client_api=ClientEndpoint(endpoint).api,
            provider_api=wire_apis[endpoint],
            model=model or route.model,
            client_model=route.model,
            route=route.model,
            target=target.display_name,
            body_rules="" if endpoint in counts else rules,
            stream_path=adapter.stream_path(ClientEndpoint(endpoint), target, provider) or "",
            sigv4=sigv4,
            operation=COUNT_TOKENS if endpoint in counts else "",
        )
        for endpoint in paths
        if (rules and endpoint not in counts) or ClientEndpoint(endpoint).api != wire_apis[endpoint]
    }
    return TargetRewrite(
        paths=MappingProxyType(paths),
        set_headers=MappingProxyType(headers),
        remove_headers=tuple(h for h in (*MANAGED_HEADERS, *SIGNATURE_HEADERS) if h not in headers),
        body_model="" if model in ("", route.model) else json.dumps(model, ensure_ascii=False),
        fix_length=fix_length,
        translations=MappingProxyType(translations),
        asks_usage=adapter.api == WireApi.OPENAI and any(e in paths for e in _STREAMING_OPENAI_ENDPOINTS),
    )


# The OpenAI endpoints that stream (embeddings never do); their same-API attempts may ask for usage.
_STREAMING_OPENAI_ENDPOINTS = (ClientEndpoint.CHAT.value, ClientEndpoint.COMPLETIONS.value)


def _encoded_body_rules(target: Target) -> str:
    if target.body is None or target.body.is_empty:
        return ""
    return encode_body_rules(target.body.model_dump(mode="json", exclude_defaults=True))


def group_rewrites(config: Config, group: ServingGroup) -> tuple[TargetRewrite, ...]:
    """The rewrites of a cluster's targets, in order.

    When any attempt may change the body (a model rename, a translation), every attempt resets content-length:
    Envoy restores the original body for a retry but keeps the previous attempt's headers."""
    route, endpoints = group.route, group.endpoints
    plain = [target_rewrite(config, route, t, endpoints, fix_length=False) for t in route.targets]
    if not any(r.body_model or r.translations for r in plain):
        return tuple(plain)
    return tuple(target_rewrite(config, route, t, endpoints, fix_length=True) for t in route.targets)


def _ext_proc_kind(request: TranslationRequest) -> str:
    """`translate` for an attempt to a target of another API; `rules` for a same-API attempt with body rules only,
    which Envoy sends to an ext_proc filter that skips the response (envoy/lua/attempt_rewrite.lua sets RULES_HEADER
    rather than TRANSLATE_HEADER)."""
    return "rules" if request.client_api == request.provider_api else "translate"


def ext_proc_kinds(rewrites: tuple[TargetRewrite, ...]) -> frozenset[str]:
    """Which of the ext_proc filters the cluster's attempts need: `translate` (a target of another API), `rules`
    (a same-API target with body rules only)."""
    return frozenset(_ext_proc_kind(request) for r in rewrites for request in r.translations.values())


def describe(encoded: str) -> dict[str, str]:
    """An encoded rewrite as readable pairs, header values and signing credentials hidden: for the golden file
    and reviews."""
    return {
        name: REDACTED
        if name.startswith("set.")
        else _without_credentials(value)
        if name.startswith(("translate.", "rules."))
        else value
        for name, value in parse_qsl(encoded, keep_blank_values=True)
    }


def _without_credentials(translation: str) -> str:
    fields = dict(parse_qsl(translation, keep_blank_values=True))
    if "sigv4" in fields:
        fields["sigv4"] = REDACTED
    return urlencode(fields, quote_via=quote)
