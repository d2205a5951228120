"""The upstream filter chain: the per-attempt rewrite, which Envoy runs again for every attempt.

Retries never re-run the listener's filters, so whatever depends on the target Envoy picked happens here: a
`header_mutation` filter copies the picked endpoint's rewrite (controlplane/attempt_rewrite.py) into a
header, the Lua filter (envoy/lua/attempt_rewrite.lua) applies it, and, only in clusters with a target of
another API or with body rules, the ext_proc does the body work for the attempts that need it.

Clusters whose attempts never need the ext_proc (most of them) have no filters of their own: the router's
`upstream_http_filters` (resources/listener.py) serve them all. A copy in each cluster cost Envoy its own Lua
states on every thread, about 0.7 MB per cluster (`python -m bench.large_configs`).

Which gRPC messages an attempt costs (each a round trip through Python, and the main cost of a translated
attempt): the request headers, the whole request body, and the response body, never the response headers.
envoy/lua/translated_response.lua (before it in the chain, so after it on the way back) does the headers' part:
it hands the ext_proc the provider's headers it reads as metadata when they pass, before any of the body, and
applies what the ext_proc answers (a whole answer's status, type and length), holding a whole answer until it is
translated. The ext_proc removes the marker that brought it the attempt, in its answer to the request headers,
as it does for body rules. So a whole
answer costs three messages (request headers and body, response body in one piece), a stream two plus one per
chunk (attempt_rewrite.lua marks a streamed request's attempt, and the ext_proc's answer to its request headers
switches the answer to chunks), a same-API
attempt with body rules two (its response skips the ext_proc). The request headers stay a message of their own:
with them skipped, Envoy 1.40 sends the body as the first message of a gRPC stream that may still be connecting,
and a body over 64 KiB then overflows that stream's buffer and crashed Envoy (a segfault, measured).
"""

from __future__ import annotations

from typing import Any

from controlplane import failover
from controlplane.attempt_rewrite import TargetRewrite, ext_proc_kinds
from controlplane.envoy_api import METADATA_NAMESPACE, STREAM_METADATA_NAMESPACE, seconds, typed
from controlplane.envoy_code import attempt_rewrite_lua, translated_response_lua
from controlplane.resources.settings import TranslateSettings
from switchyard.contract import (
    ALL_SESSION_FIELDS,
    ATTEMPT_METADATA_NAMESPACE,
    EXTPROC_CLUSTER,
    EXTPROC_READS_HEADERS,
    REWRITE_HEADER,
    REWRITE_METADATA_KEY,
    RULES_HEADER,
    TRANSLATE_HEADER,
    TRANSLATE_STREAM_HEADER,
    TRANSLATED_METADATA_NAMESPACE,
    TRANSLATED_STREAM_MODE,
    TRANSLATED_WHOLE_MODE,
    TRANSLATION_VALUE_PREFIX,
)


def router_upstream_filters(settings: TranslateSettings) -> list[Any]:
    """The router's upstream filters: the per-attempt rewrite and the codec, for every cluster whose attempts
    never need the ext_proc (most of them). `rewrite_attempts` off (for `make bench`): none at all.

    One chain in the router instead of a copy in each cluster: each copy cost Envoy its own Lua states on every
    thread, about 0.7 MB per cluster. It is the same whatever the config, so a listener update, which leaves the
    connections opened before it on the old listener for a while, never meets clusters it was not built for."""
    if not settings.rewrite_attempts:
        return []
    return [*_rewrite_filters(), upstream_codec()]


def cluster_upstream_filters(rewrites: tuple[TargetRewrite, ...] | None, settings: TranslateSettings) -> list[Any]:
    """A cluster's own upstream filters, which replace the router's: only where some attempt needs the ext_proc
    (a target of another API, or body rules), then the rewrite and the ext_proc filters it needs, each skipped
    by the attempts the Lua did not mark for it. They come with the cluster's endpoints, in one CDS update.

    Why not every cluster: an ext_proc or Lua filter skipped by an attempt is not free. With all of them in the
    router's chain, a same-API attempt cost Envoy about 28 µs more (`make bench` C, two pairs back to back:
    268 → 297 and 274 → 302 µs per request)."""
    kinds = frozenset() if rewrites is None else ext_proc_kinds(rewrites)
    if not kinds:
        return []
    filters = _rewrite_filters()
    if "translate" in kinds:
        translated = (TRANSLATE_HEADER, TRANSLATE_STREAM_HEADER)
        filters.append(_only_when(translated, "switchyard.translated_response", translated_response_lua()))
        filters.append(
            _extproc_filter("switchyard.translate", translated, settings, TRANSLATED_WHOLE_MODE, TRANSLATED_STREAM_MODE)
        )
    if "rules" in kinds:
        filters.append(_extproc_filter("switchyard.body_rules", (RULES_HEADER,), settings, _RULES_ONLY))
    return [*filters, upstream_codec()]


def _rewrite_filters() -> list[Any]:
    """The picked endpoint's rewrite into a header, which the Lua filter applies and removes. The session headers
    the listener sets for affinity routing (controlplane/affinity.py) are removed from every attempt: they are
    Switchyard's, no provider's."""
    return [_rewrite_header_filter(tuple(field.header for field in ALL_SESSION_FIELDS)), _lua_rewrite_filter()]


def upstream_codec() -> dict[str, Any]:
    """The last upstream filter, required by Envoy: it sends the attempt."""
    return {
        "name": "envoy.filters.http.upstream_codec",
        "typed_config": typed("envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"),
    }


def _rewrite_header_filter(remove: tuple[str, ...]) -> dict[str, Any]:
    """`%UPSTREAM_METADATA%` resolves to the endpoint Envoy picked for this attempt: Lua has no access to it.

    The header is removed first: an endpoint without the metadata would otherwise leave a client's own
    `x-switchyard-rewrite` in place (measured on Envoy 1.40), and the Lua filter would apply it."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": typed(
            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            mutations={
                "request_mutations": [
                    *({"remove": header} for header in remove),
                    {"remove": REWRITE_HEADER},
                    {
                        "append": {
                            "header": {
                                "key": REWRITE_HEADER,
                                "value": f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:{REWRITE_METADATA_KEY})%",
                            },
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                        }
                    },
                ]
            },
        ),
    }


def _lua_rewrite_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": typed(
            "envoy.extensions.filters.http.lua.v3.Lua",
            default_source_code={"inline_string": attempt_rewrite_lua()},
        ),
    }


# A same-API attempt with body rules: its request headers and body only; the response never passes through Python.
# (A translated attempt's: contract.TRANSLATED_WHOLE_MODE, or TRANSLATED_STREAM_MODE as the ext_proc asks.)
_RULES_ONLY = {**TRANSLATED_WHOLE_MODE, "response_body_mode": "NONE"}


def _extproc_filter(
    name: str,
    markers: tuple[str, ...],
    settings: TranslateSettings,
    processing_mode: dict[str, str],
    override: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ext_proc, skipped (per attempt, by Envoy) unless the Lua filter marked the attempt with one of
    `markers`, which the ext_proc removes in its answer to the request headers. There it may also switch the
    attempt to the `override` mode (a translated streamed request: the answer in chunks): one filter, not one
    per mode.

    Envoy evaluates the matcher on the request headers as the Lua filter left them, so attempts to a target of
    the client's own API never reach Python, even in a route that mixes APIs (measured on Envoy 1.40)."""
    extproc = {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": typed(
            "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            grpc_service={
                "envoy_grpc": {"cluster_name": EXTPROC_CLUSTER},
                "timeout": "5s",
                "retry_policy": failover.extproc_retry_policy(),
            },
            # Deliberate: an untranslated body would reach a provider of another API. A local reply from an
            # upstream filter is never retried, so keep the ext_proc up.
            failure_mode_allow=False,
            message_timeout=seconds(settings.extproc_message_timeout_s),
            # In: the provider's response headers (it gets no response headers message). Out: what
            # translated_response.lua applies for it, what it blanks once read, and what it measured of a stream
            # (time to first token, tokens) for the answer log.
            metadata_options={
                "forwarding_namespaces": {"untyped": [ATTEMPT_METADATA_NAMESPACE]},
                "receiving_namespaces": {
                    "untyped": [TRANSLATED_METADATA_NAMESPACE, STREAM_METADATA_NAMESPACE, ATTEMPT_METADATA_NAMESPACE]
                },
            },
            processing_mode=processing_mode,
            **({} if override is None else {"allow_mode_override": True, "allowed_override_modes": [override]}),
            forward_rules={"allowed_headers": {"patterns": [{"exact": name} for name in EXTPROC_READS_HEADERS]}},
        ),
    }
    return {
        "name": name,
        "typed_config": typed(
            "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            xds_matcher=_skip_unless_marked(markers),
            extension_config=extproc,
        ),
    }


def _only_when(headers: str | tuple[str, ...], name: str, code: str) -> dict[str, Any]:
    """A Lua filter that runs only on the attempts marked with one of `headers` (skipped by Envoy otherwise)."""
    lua = {
        "name": "envoy.filters.http.lua",
        "typed_config": typed("envoy.extensions.filters.http.lua.v3.Lua", default_source_code={"inline_string": code}),
    }
    markers = (headers,) if isinstance(headers, str) else headers
    return {
        "name": name,
        "typed_config": typed(
            "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            xds_matcher=_skip_unless_marked(markers),
            extension_config=lua,
        ),
    }


def _marked(header: str) -> dict[str, Any]:
    return {
        "single_predicate": {
            "input": {
                "name": "marker",
                "typed_config": typed("envoy.type.matcher.v3.HttpRequestHeaderMatchInput", header_name=header),
            },
            "value_match": {"prefix": TRANSLATION_VALUE_PREFIX},
        }
    }


def _skip_unless_marked(headers: tuple[str, ...]) -> dict[str, Any]:
    marked = _marked(headers[0]) if len(headers) == 1 else {"or_matcher": {"predicate": [_marked(h) for h in headers]}}
    return {
        "matcher_list": {
            "matchers": [
                {
                    "predicate": {"not_matcher": marked},
                    "on_match": {
                        "action": {
                            "name": "skip",
                            "typed_config": typed("envoy.extensions.filters.common.matcher.action.v3.SkipFilter"),
                        }
                    },
                }
            ]
        }
    }
