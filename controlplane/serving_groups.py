"""Which targets of a route may serve which requests, as the clusters Envoy routes them to.

Not every provider has every endpoint: Anthropic has no embeddings. And a route may ask that requests with a
parameter another API cannot express (`logprobs`) skip the targets of that API. A target that cannot serve a
request must not be tried for it at all, or the request would end with an error while another target could
have served it (R1). So each distinct set of capable targets gets a cluster of its own.

OpenAI clients and Anthropic clients also get clusters of their own, because which attempts need translating
depends on the client's API: a route of OpenAI targets translates nothing for OpenAI clients, whose cluster then
has no ext_proc at all, and everything for Anthropic clients. Usually a route has just these two clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.providers import ADAPTERS, upstream_path
from switchyard import contract
from switchyard.config import ClientEndpoint, Config, Route, Target
from switchyard.config.model import OnUnsupported


def cluster_name(route: Route, client_api: str = "openai") -> str:
    """`route/<model>` for OpenAI clients (most traffic), `route/<model>@anthropic` for Anthropic clients,
    `route/<model>@responses` for clients of OpenAI's Responses API."""
    return contract.cluster_name(route.model, client_api)


@dataclass(frozen=True)
class Use:
    endpoint: ClientEndpoint
    # requests flagged as carrying a parameter another API may not express (json_to_metadata sets the flag)
    own_api_only: bool
    # Responses requests that only OpenAI's Responses API can serve (controlplane/responses_only.py), on every
    # route whatever its `on_unsupported_parameter`
    openai_only: bool = False


@dataclass(frozen=True)
class ServingGroup:
    cluster: str
    route: Route  # the route narrowed to the targets capable of `uses`
    uses: tuple[Use, ...]  # all of one client API

    @property
    def endpoints(self) -> frozenset[ClientEndpoint]:
        return frozenset(use.endpoint for use in self.uses)


def serving_groups(config: Config, route: Route) -> tuple[ServingGroup, ...]:
    """The clusters of a route, the whole route's for OpenAI clients first. Requests no target can serve
    belong to none, and flagged requests get a use of their own only when that narrows the route further."""
    everyone = tuple(t.display_name for t in route.targets)
    by_targets: dict[tuple[tuple[str, ...], str], list[Use]] = {}
    for endpoint in ClientEndpoint:
        capable = tuple(t for t in route.targets if can_serve(config, t, endpoint))
        by_targets.setdefault((tuple(t.display_name for t in capable), endpoint.api), []).append(Use(endpoint, False))
        own = tuple(t.display_name for t in own_api_targets(config, route, endpoint))
        narrows = bool(own) and len(own) < len(capable)
        if narrows and route.on_unsupported_parameter is OnUnsupported.SKIP_TARGET:
            by_targets.setdefault((own, endpoint.api), []).append(Use(endpoint, True))
        if narrows and endpoint.api == contract.WireApi.RESPONSES:  # Responses calls and their token counts
            by_targets.setdefault((own, endpoint.api), []).append(Use(endpoint, False, openai_only=True))
    groups = []
    for (names, api), uses in sorted(
        by_targets.items(), key=lambda item: (item[0][0] != everyone, item[0][1] != "openai")
    ):
        if not names:
            continue
        if names == everyone:
            groups.append(ServingGroup(cluster_name(route, api), route, tuple(uses)))
            continue
        narrowed = route.model_copy(update={"targets": tuple(t for t in route.targets if t.display_name in names)})
        groups.append(ServingGroup(f"{cluster_name(route, api)}~{'+'.join(names)}", narrowed, tuple(uses)))
    return tuple(groups)


def own_api_targets(config: Config, route: Route, endpoint: ClientEndpoint) -> tuple[Target, ...]:
    """The route's targets that speak the API of `endpoint`'s clients themselves (no translation)."""
    return tuple(
        t for t in route.targets if can_serve(config, t, endpoint) and _api(config, t, endpoint) == endpoint.api
    )


def can_serve(config: Config, target: Target, endpoint: ClientEndpoint) -> bool:
    return upstream_path(endpoint, target, config.provider_of(target)) is not None


def _api(config: Config, target: Target, endpoint: ClientEndpoint) -> str:
    provider = config.provider_of(target)
    return ADAPTERS[provider.kind].wire_api(endpoint, provider)
