"""Which targets of a route can serve which client endpoint, as the clusters Envoy routes each endpoint to.

Not every provider has every endpoint: Anthropic has no embeddings. A target that cannot serve a call must
not be tried for it at all, or the request would end with an error while another target could have served
it (R1). So each distinct set of capable targets gets a cluster of its own: usually one, the whole route.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.providers import ADAPTERS
from switchyard.config import ClientEndpoint, Config, Route, Target


def cluster_name(route: Route) -> str:
    return f"route/{route.model}"


@dataclass(frozen=True)
class ServingGroup:
    cluster: str
    route: Route  # the route narrowed to the targets that can serve `endpoints`
    endpoints: tuple[ClientEndpoint, ...]


def serving_groups(config: Config, route: Route) -> tuple[ServingGroup, ...]:
    """The clusters of a route, the whole route's first; endpoints no target serves belong to none."""
    by_targets: dict[tuple[str, ...], list[ClientEndpoint]] = {}
    for endpoint in ClientEndpoint:
        capable = tuple(t.display_name for t in route.targets if can_serve(config, t, endpoint))
        by_targets.setdefault(capable, []).append(endpoint)
    everyone = tuple(t.display_name for t in route.targets)
    groups = []
    for capable, endpoints in sorted(by_targets.items(), key=lambda item: item[0] != everyone):
        if not capable:
            continue
        if capable == everyone:
            groups.append(ServingGroup(cluster_name(route), route, tuple(endpoints)))
            continue
        narrowed = route.model_copy(update={"targets": tuple(t for t in route.targets if t.display_name in capable)})
        name = f"{cluster_name(route)}~{'+'.join(e.value for e in endpoints)}"
        groups.append(ServingGroup(name, narrowed, tuple(endpoints)))
    return tuple(groups)


def can_serve(config: Config, target: Target, endpoint: ClientEndpoint) -> bool:
    provider = config.provider_of(target)
    return ADAPTERS[provider.kind].upstream_path(endpoint, target, provider) is not None
