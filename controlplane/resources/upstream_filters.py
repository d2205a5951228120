"""Each cluster's upstream filter chain: the per-attempt rewrite, which Envoy runs again for every attempt.

Retries never re-run the listener's filters, so whatever depends on the target Envoy picked happens here: a
`header_mutation` filter copies the picked endpoint's rewrite (controlplane/attempt_rewrite.py) into a
header, the Lua filter (envoy/lua/attempt_rewrite.lua) applies it, and, only in clusters with a target of
another API, the ext_proc translates the attempts to such a target.
"""

from __future__ import annotations

from typing import Any

from controlplane import failover
from controlplane.attempt_rewrite import TargetRewrite, needs_translation
from controlplane.envoy_api import METADATA_NAMESPACE, STREAM_METADATA_NAMESPACE, seconds, typed
from controlplane.envoy_code import attempt_rewrite_lua
from controlplane.resources.settings import TranslateSettings
from switchyard.contract import (
    EXTPROC_CLUSTER,
    REWRITE_HEADER,
    REWRITE_METADATA_KEY,
    TRANSLATE_HEADER,
    TRANSLATION_VALUE_PREFIX,
)


def attempt_filters(rewrites: tuple[TargetRewrite, ...] | None, settings: TranslateSettings) -> list[dict[str, Any]]:
    """The per-attempt rewrite, in Envoy: the picked endpoint's rewrite into a header, which the Lua filter
    applies and removes; then, in clusters with a target of another API, the ext_proc for those attempts.
    None (`rewrite_attempts` off, for `make bench`): no filters at all."""
    if rewrites is None:
        return []
    filters = [_rewrite_header_filter(), _lua_rewrite_filter()]
    if needs_translation(rewrites):
        filters.append(_translating_extproc_filter(settings))
    return filters


def upstream_codec() -> dict[str, Any]:
    """The last upstream filter, required by Envoy: it sends the attempt."""
    return {
        "name": "envoy.filters.http.upstream_codec",
        "typed_config": typed("envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"),
    }


def _rewrite_header_filter() -> dict[str, Any]:
    """`%UPSTREAM_METADATA%` resolves to the endpoint Envoy picked for this attempt: Lua has no access to it.

    The header is removed first: an endpoint without the metadata would otherwise leave a client's own
    `x-switchyard-rewrite` in place (measured on Envoy 1.40), and the Lua filter would apply it."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": typed(
            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            mutations={
                "request_mutations": [
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


def _translating_extproc_filter(settings: TranslateSettings) -> dict[str, Any]:
    """The ext_proc, skipped (per attempt, by Envoy) unless the Lua filter asked for a translation.

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
            # A same-API attempt that only has body rules applied skips the response (extproc/exchange.py).
            allow_mode_override=True,
            message_timeout=seconds(settings.extproc_message_timeout_s),
            # Only translated attempts get here (the matcher below), and each needs its body and the response.
            # The ext_proc reports what it measured (time to first token, output tokens) into the answer log.
            metadata_options={"receiving_namespaces": {"untyped": [STREAM_METADATA_NAMESPACE]}},
            processing_mode={
                "request_header_mode": "SEND",
                "response_header_mode": "SEND",
                "request_body_mode": "BUFFERED",
                # Chunks as they arrive: a stream's are translated at once, a whole answer's held to its end.
                "response_body_mode": "STREAMED",
                "request_trailer_mode": "SKIP",
                "response_trailer_mode": "SKIP",
            },
        ),
    }
    skip_unless_translated = {
        "matcher_list": {
            "matchers": [
                {
                    "predicate": {
                        "not_matcher": {
                            "single_predicate": {
                                "input": {
                                    "name": "translation",
                                    "typed_config": typed(
                                        "envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                                        header_name=TRANSLATE_HEADER,
                                    ),
                                },
                                "value_match": {"prefix": TRANSLATION_VALUE_PREFIX},
                            }
                        }
                    },
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
    return {
        "name": "switchyard.translate",
        "typed_config": typed(
            "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            xds_matcher=skip_unless_translated,
            extension_config=extproc,
        ),
    }
