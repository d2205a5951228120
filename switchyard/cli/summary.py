"""The one-screen summary `switchyard validate` prints. Credentials are shown as set/unset, never echoed."""

from __future__ import annotations

from controlplane.strategies import placements
from switchyard.config import Config, Strategy
from switchyard.config.model import OnUnsupported, redact_url
from switchyard.config.units import format_duration


def summarize(config: Config, source: str) -> str:
    targets = sum(len(r.targets) for r in config.routes)
    lines = [
        f"{source}: OK — {len(config.routes)} route(s), {targets} target(s); clients connect to {config.listen}",
        "providers:",
    ]
    width = max(len(n) for n in config.providers)
    for name, provider in config.providers.items():
        key = "key set" if provider.api_key is not None or provider.secret_access_key is not None else "no key"
        extra = f", api-version {provider.api_version}" if provider.api_version else ""
        lines.append(f"  {name:<{width}}  {provider.kind.value:<17} {redact_url(provider.base_url)}  ({key}{extra})")
    lines.append("routes:")
    for route in config.routes:
        codes = ",".join(str(c) for c in route.fallback_codes)
        notes = ""
        if route.strategy is Strategy.LEAST_LATENCY:
            notes += f"; weights follow {route.latency.measure.value} latency, {route.latency.exploration:.0%} explores"
        if route.on_unsupported_parameter is OnUnsupported.SKIP_TARGET:
            notes += "; requests another API cannot express skip its targets"
        lines.append(
            f"  {route.model}  [{route.strategy.value}]  fallback on {codes}, reset, refused, timeout "
            f"{format_duration(route.timeout)}{notes}"
        )
        placed = placements(route)
        order = sorted(range(len(route.targets)), key=lambda i: placed[i].priority)
        for index in order:
            target = route.targets[index]
            path = target.suffix or "(provider default path)"
            lines.append(
                f"    priority {placed[index].priority}  weight {placed[index].weight:<3} {target.display_name:<24} "
                f"→ {target.provider}: {target.model}  {path}"
            )
    return "\n".join(lines)
