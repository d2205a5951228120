"""`validate` and `up` warn where a URL suffix leaves a route unable to serve one of its endpoints: the target
is kept away from calls its path would answer in another shape (controlplane/providers/suffixes.py), and when
no other target of the route serves them, those calls get a 400. Each warning has its YAML path and line.
A target kept away from calls another target serves is a layout, not a mistake: no warning."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.providers import ADAPTERS, upstream_path
from controlplane.providers.suffixes import suffix_fits
from switchyard.config import ClientEndpoint, Config, Provider
from switchyard.config.endpoint_paths import endpoint_of_path
from switchyard.config.yaml_source import LocatedYaml, render_path


@dataclass(frozen=True)
class SuffixMismatch:
    route_index: int
    target_index: int
    serves: ClientEndpoint
    skipped: tuple[ClientEndpoint, ...]  # the endpoints this target is kept away from
    unserved: tuple[ClientEndpoint, ...]  # ... of which no target of the route serves any (never empty)


def suffix_mismatches(config: Config) -> list[SuffixMismatch]:
    found = []
    for r, route in enumerate(config.routes):
        served = {e for e in ClientEndpoint for t in route.targets if upstream_path(e, t, config.provider_of(t))}
        for t, target in enumerate(route.targets):
            provider: Provider = config.provider_of(target)
            adapter = ADAPTERS[provider.kind]
            skipped = tuple(
                e
                for e in ClientEndpoint
                if (path := adapter.upstream_path(e, target, provider)) is not None
                and not suffix_fits(path, e, target, adapter.wire_api(e, provider))
            )
            serves = endpoint_of_path(target.suffix or "")
            unserved = tuple(e for e in skipped if e not in served)
            if unserved and serves is not None:
                found.append(SuffixMismatch(r, t, serves, skipped, unserved))
    return found


def suffix_warnings(config: Config, text: str, source: str) -> list[str]:
    """One line per mismatched suffix, `FILE:LINE: PATH: warning: ...`, as `validate` prints problems."""
    located = LocatedYaml(text)
    routes = located.data.get("routes") if isinstance(located.data, dict) else None
    lines = []
    for found in suffix_mismatches(config):
        route = config.routes[found.route_index]
        target = route.targets[found.target_index]
        raw = routes[found.route_index] if isinstance(routes, list) else {}
        where: tuple[str | int, ...] = ("routes", found.route_index)
        if isinstance(raw, dict) and "targets" in raw:
            where += ("targets", found.target_index, "suffix")
        else:
            where += (("primary", "backup")[found.target_index], "suffix")
        line = located.line_of(where)
        skipped = ", ".join(e.path for e in found.skipped)
        message = (
            f"suffix {target.suffix} serves {found.serves.path} only: target {target.display_name} is not used "
            f"for {route.model}'s {skipped} calls"
        )
        message += f" (no target of {route.model} serves {', '.join(e.path for e in found.unserved)}: a 400)"
        lines.append(f"{source}:{line}: {render_path(where)}: warning: {message}")
    return lines
