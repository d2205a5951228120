"""Responses requests that only OpenAI's Responses API can serve stay on a route's OpenAI targets.

A request that continues a stored response (`previous_response_id`), belongs to a stored conversation
(`conversation`), uses a stored prompt template (`prompt`), asks to be stored (`store: true`) or to run in the
background (`background: true`) needs OpenAI's own state: another provider could only answer something else.
Envoy flags such requests from the body (json_to_metadata, as `own_api_only` requests are flagged: see
resources/listener.py) and routes them to the route's targets of the Responses API only, in the route's
usual order with its usual fallback; a route with none answers a 400 that says why. This holds on every route,
whatever its `on_unsupported_parameter`: nothing can be translated here. The same holds for counting the input
tokens of such a request (`/v1/responses/input_tokens` takes `previous_response_id` and `conversation` too).

What an absent `store` means, deliberately: OpenAI stores a response unless told `store: false`, but a client
that does not say `store` has not asked for storage (most SDK calls do not say it), so its request may fall
back to any target. Served by OpenAI it is stored as usual; served by another provider it is not, and a later
`previous_response_id` naming it is answered by OpenAI (not found). Only an explicit `store: true` pins a
request to OpenAI targets.

Built-in tools (web search, file search, ...) are also OpenAI's own, but they sit in the `tools` array, which
json_to_metadata cannot look into: an attempt translated for another provider refuses them with a 400 naming
the tool (extproc/translators/responses_to_anthropic/request.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from controlplane.envoy_api import METADATA_NAMESPACE
from controlplane.serving_groups import can_serve, own_api_targets
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.contract import WireApi


@dataclass(frozen=True)
class OpenAIOnly:
    key: str  # the request metadata key json_to_metadata sets
    selectors: tuple[tuple[str, ...], ...]  # body paths whose presence sets it (a primitive value: see translate)
    value_match: dict[str, Any]  # how the route matches the key's value
    why: str  # for the 400 of a route without an OpenAI target


_PRESENT = {"present_match": True}
_TRUE = {"bool_match": True}
FLAGS = (
    OpenAIOnly(
        "openai_only_previous_response",
        (("previous_response_id",),),
        _PRESENT,
        "`previous_response_id` continues a response stored at OpenAI",
    ),
    OpenAIOnly(
        "openai_only_conversation",
        (("conversation",), ("conversation", "id")),
        _PRESENT,
        "`conversation` names a conversation stored at OpenAI",
    ),
    OpenAIOnly(
        "openai_only_prompt", (("prompt", "id"),), _PRESENT, "`prompt` names a prompt template stored at OpenAI"
    ),
    OpenAIOnly("openai_only_store", (("store",),), _TRUE, "`store: true` asks OpenAI to store the response"),
    OpenAIOnly("openai_only_background", (("background",),), _TRUE, "`background: true` runs the response at OpenAI"),
)


def listener_rules() -> list[dict[str, Any]]:
    """json_to_metadata rules copying each flagging parameter's value into its key (store and background keep
    their boolean, so `store: false` flags nothing)."""
    return [
        {
            "selectors": [{"key": name} for name in path],
            "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": flag.key},
        }
        for flag in FLAGS
        for path in flag.selectors
    ]


def routes(
    config: Config, endpoint: ClientEndpoint, route: Route, served: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The flagged routes of `route` on `endpoint`, to go before its other routes: each a copy of `served` (the
    Envoy route to the route's Responses API targets) matching its flag, or, when the route has no such target,
    a 400 saying why. None when every target (or none) can serve the Responses API itself."""
    if endpoint.api != WireApi.RESPONSES:  # Responses calls, and their token counts (`input_tokens`)
        return []
    capable = [t for t in route.targets if can_serve(config, t, endpoint)]
    own = own_api_targets(config, route, endpoint)
    if not capable or len(own) == len(capable):
        return []
    out = []
    for flag in FLAGS:
        if served is not None:
            flagged = copy.deepcopy(served)
            flagged["match"]["dynamic_metadata"].append(_flagged(flag))
        else:
            flagged = {"name": served_name(endpoint, route), "match": _match(endpoint, route, flag)}
            flagged["direct_response"] = {"status": 400, "body": {"inline_string": _refusal(config, route, flag)}}
        out.append(flagged)
    return out


def served_name(endpoint: ClientEndpoint, route: Route) -> str:
    """As translate.route_name: the Lua rewrite and the error shapes read the client endpoint from it."""
    return f"{endpoint.value}:{route.model}"


def _flagged(flag: OpenAIOnly) -> dict[str, Any]:
    return {"filter": METADATA_NAMESPACE, "path": [{"key": flag.key}], "value": flag.value_match}


def _match(endpoint: ClientEndpoint, route: Route, flag: OpenAIOnly) -> dict[str, Any]:
    model = {
        "filter": METADATA_NAMESPACE,
        "path": [{"key": "model"}],
        "value": {"string_match": {"exact": route.model}},
    }
    return {
        "path": endpoint.path,
        "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
        "dynamic_metadata": [model, _flagged(flag)],
    }


def _refusal(config: Config, route: Route, flag: OpenAIOnly) -> str:
    """Names the provider kinds, not the targets: a target's model can change without the routes changing."""
    kinds = ", ".join(sorted({config.provider_of(t).kind.value for t in route.targets}))
    return (
        f"{flag.why[0].upper()}{flag.why[1:]}: only a target of OpenAI's Responses API can serve this request, "
        f"and model {route.model} has none (its targets: {kinds})."
    )
