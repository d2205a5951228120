"""Checks that need the whole file: cross references and uniqueness.

Kept apart from the pydantic models so each problem can name the YAML path the user wrote
(including the `primary`/`backup` shorthand) instead of the expanded form.
"""

from __future__ import annotations

from switchyard.config.model import Config, ProviderKind
from switchyard.config.yaml_source import Path

Problem = tuple[Path, str]

_KEY_REQUIRED = {ProviderKind.OPENAI, ProviderKind.AZURE_OPENAI}


def check(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    for name, provider in config.providers.items():
        if provider.kind in _KEY_REQUIRED and provider.api_key is None:
            problems.append(
                (
                    ("providers", name, "api_key"),
                    f"{provider.kind} providers need an api_key (e.g. ${{OPENAI_API_KEY}})",
                )
            )
        if provider.api_version is not None and provider.kind is not ProviderKind.AZURE_OPENAI:
            problems.append((("providers", name, "api_version"), "only azure_openai providers take api_version"))
    seen_models: dict[str, int] = {}
    for r_index, route in enumerate(config.routes):
        if route.model in seen_models:
            problems.append(
                (
                    ("routes", r_index, "model"),
                    f"duplicate route for model {route.model!r} (first at routes[{seen_models[route.model]}])",
                )
            )
        seen_models.setdefault(route.model, r_index)
        seen_targets: set[str] = set()
        for t_index, target in enumerate(route.targets):
            where: Path = ("routes", r_index, *_split(route.seed_sources[t_index]))
            if target.provider not in config.providers:
                known = ", ".join(sorted(config.providers)) or "none defined"
                problems.append(((*where, "provider"), f"unknown provider {target.provider!r} (known: {known})"))
            name = target.display_name
            if name in seen_targets:
                problems.append(
                    (
                        (*where, "name"),
                        f"duplicate target name {name!r} in this route; give each target a distinct `name`",
                    )
                )
            seen_targets.add(name)
    return problems


def _split(source: str) -> Path:
    """'targets[2]' → ('targets', 2); 'primary' → ('primary',)."""
    if source.endswith("]"):
        key, _, index = source[:-1].partition("[")
        return (key, int(index))
    return (source,)
