"""Checks that need the whole file: cross references, uniqueness, credentials.

They run on the raw (env-substituted) data rather than on the validated models, so they are reported
together with shape errors elsewhere in the file: one edit-validate cycle fixes everything. Each check
looks only at values of the right type and leaves the rest to the models' own errors.
"""

from __future__ import annotations

import re
from typing import Any

from switchyard.config.model import key_digest
from switchyard.config.yaml_source import Path

Problem = tuple[Path, str]

_KEY_EXAMPLE = {
    "openai": "${OPENAI_API_KEY}",
    "azure_openai": "${AZURE_OPENAI_KEY}",
    "anthropic": "${ANTHROPIC_API_KEY}",
    "gemini": "${GEMINI_API_KEY}",
}


def check(data: dict[str, Any]) -> list[Problem]:
    providers = data.get("providers")
    providers = providers if isinstance(providers, dict) else None
    problems = _check_providers(providers or {})
    routes = data.get("routes")
    if isinstance(routes, list):
        if not routes:
            problems.append((("routes",), "needs at least one route"))
        problems.extend(_check_routes(routes, providers))
    clients = data.get("clients")
    if isinstance(clients, dict):
        models = {r.get("model") for r in routes if isinstance(r, dict)} if isinstance(routes, list) else None
        problems.extend(_check_clients(clients, models))
    problems.extend(_check_guardrail_keys(data))
    return problems


def _check_guardrail_keys(data: dict[str, Any]) -> list[Problem]:
    """YAML 1.1 reads a bare `on:`, `off:`, `yes:` or `no:` key as a boolean: `on: response` in a guardrail
    would otherwise be reported as an unknown key `True`, which nobody wrote."""
    lists: list[tuple[Path, Any]] = []
    routes, clients = data.get("routes"), data.get("clients")
    if isinstance(routes, list):
        lists.extend(
            (("routes", i, "guardrails"), r.get("guardrails")) for i, r in enumerate(routes) if isinstance(r, dict)
        )
    if isinstance(clients, dict):
        lists.extend(
            (("clients", name, "guardrails"), c.get("guardrails")) for name, c in clients.items() if isinstance(c, dict)
        )
    problems: list[Problem] = []
    for path, guardrails in lists:
        if not isinstance(guardrails, list):
            continue
        for index, guardrail in enumerate(guardrails):
            if not isinstance(guardrail, dict):
                continue
            problems.extend(
                (
                    (*path, index, str(key)),
                    "YAML reads an unquoted on/off/yes/no key as true/false: say when a check runs with "
                    "`stage: request | response | both`",
                )
                for key in guardrail
                if isinstance(key, bool)
            )
    return problems


def _check_clients(clients: dict[str, Any], models: set[Any] | None) -> list[Problem]:
    """Client names become Envoy identifiers and metric labels; a key (or its digest) names one client only;
    every model a client may use is a route (a typo would silently lock the client out of it)."""
    problems: list[Problem] = []
    if not clients:
        problems.append((("clients",), "is empty: remove it to leave the gateway open, or define a client"))
    owner: dict[str, str] = {}
    for name, client in clients.items():
        if not isinstance(name, str) or not _CLIENT_NAME.fullmatch(name):
            problems.append(
                (("clients", name), "a client name is 1-64 letters, digits, '-', '_' or '.' (it labels metrics)")
            )
        if not isinstance(client, dict):
            continue
        keys = client.get("keys")
        if isinstance(keys, list):
            for index, key in enumerate(keys):
                if not isinstance(key, str) or not key:
                    continue
                digest = key_digest(key.lower() if key.startswith("sha256:") else key)
                if digest in owner:
                    first = owner[digest]
                    where = "earlier in this list" if first == name else f"by client {first!r}"
                    problems.append((("clients", name, "keys", index), f"this key is already used {where}"))
                owner.setdefault(digest, name)
        allowed = client.get("models")
        if isinstance(allowed, list) and models is not None:
            for index, model in enumerate(allowed):
                if isinstance(model, str) and model not in models:
                    known = ", ".join(sorted(m for m in models if isinstance(m, str)))
                    problems.append(
                        (("clients", name, "models", index), f"no route for model {model!r} (routes: {known})")
                    )
    return problems


_CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _check_providers(providers: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for name, provider in providers.items():
        if not isinstance(provider, dict):
            continue
        kind = provider.get("kind")
        key = provider.get("api_key")
        if kind in _KEY_REQUIRED and (key is None or (isinstance(key, str) and not key.strip())):
            problem = "is empty" if "api_key" in provider else "is missing"
            problems.append(
                (("providers", name, "api_key"), f"{problem}: {kind} providers need a key (e.g. {_KEY_EXAMPLE[kind]})")
            )
        if "api_version" in provider and isinstance(kind, str) and kind in _KINDS and kind not in _VERSIONED:
            problems.append(
                (("providers", name, "api_version"), "only azure_openai and anthropic providers take api_version")
            )
        problems.extend(_check_bedrock(name, provider, kind))
    return problems


def _check_bedrock(name: str, provider: dict[str, Any], kind: Any) -> list[Problem]:
    problems: list[Problem] = []
    if kind == "bedrock":
        for key in _BEDROCK_REQUIRED:
            value = provider.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                problem = "is empty" if key in provider else "is missing"
                example = "us-east-1" if key == "region" else f"${{AWS_{key.upper()}}}"
                problems.append((("providers", name, key), f"{problem}: bedrock providers need it (e.g. {example})"))
        if "api_key" in provider:
            problems.append(
                (("providers", name, "api_key"), "bedrock providers sign with access_key_id and secret_access_key")
            )
    elif isinstance(kind, str) and kind in _KINDS:
        problems.extend(
            (("providers", name, key), "only bedrock providers take this") for key in _BEDROCK_ONLY if key in provider
        )
    return problems


_KINDS = ("openai", "azure_openai", "openai_compatible", "anthropic", "gemini", "bedrock")
# bedrock's settings: the region and the credentials every attempt is signed with (SigV4)
_BEDROCK_REQUIRED = ("region", "access_key_id", "secret_access_key")
_BEDROCK_ONLY = ("region", "access_key_id", "secret_access_key", "session_token")
_KEY_REQUIRED = ("openai", "azure_openai", "anthropic", "gemini")
_VERSIONED = ("azure_openai", "anthropic")


def _check_routes(routes: list[Any], providers: dict[str, Any] | None) -> list[Problem]:
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for r_index, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        model = route.get("model")
        if isinstance(model, str) and model:
            if model in first_index:
                problems.append(
                    (
                        ("routes", r_index, "model"),
                        f"duplicate route for model {model!r} (first at routes[{first_index[model]}])",
                    )
                )
            first_index.setdefault(model, r_index)
        names: set[str] = set()
        for where, target, default_name in _targets_of(route):
            path: Path = ("routes", r_index, *where)
            provider = target.get("provider")
            if isinstance(provider, str) and providers is not None and provider not in providers:
                known = ", ".join(sorted(providers)) or "none defined"
                problems.append(((*path, "provider"), f"unknown provider {provider!r} (known: {known})"))
            name = target.get("name") if default_name is None else default_name
            if name is None and isinstance(provider, str) and isinstance(target.get("model"), str):
                name = f"{provider}/{target['model']}"
            if isinstance(name, str):
                if name in names:
                    problems.append(
                        (
                            (*path, "name"),
                            f"duplicate target name {name!r} in this route; give each target a distinct `name`",
                        )
                    )
                names.add(name)
    return problems


def _targets_of(route: dict[str, Any]) -> list[tuple[Path, dict[str, Any], str | None]]:
    """(path within the route, raw target, fixed display name) for both vocabularies."""
    found: list[tuple[Path, dict[str, Any], str | None]] = []
    targets = route.get("targets")
    if isinstance(targets, list):
        found.extend((("targets", i), t, None) for i, t in enumerate(targets) if isinstance(t, dict))
    for seed in ("primary", "backup"):
        if isinstance(route.get(seed), dict):
            found.append(((seed,), route[seed], seed))
    return found
