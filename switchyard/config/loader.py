"""Load a routing YAML into a validated `Config`, or raise `ConfigError` listing every problem with its line."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

from pydantic import BaseModel, ValidationError

from switchyard.config import semantics
from switchyard.config.errors import ConfigError, ConfigProblem
from switchyard.config.guardrails import CHECK_NAMES, GUARDRAIL_MODELS
from switchyard.config.model import BodyRules, Config, Health, Price, Provider, Route, SeedTarget, Target
from switchyard.config.yaml_source import LocatedYaml, Path, render_path

_SECRET_KEYS = frozenset({"api_key", "access_key_id", "secret_access_key", "session_token"})
_MODELS: tuple[type[BaseModel], ...] = (
    Config,
    Provider,
    Route,
    Target,
    SeedTarget,
    Health,
    Price,
    BodyRules,
    *GUARDRAIL_MODELS,
)
_KNOWN_KEYS = sorted({info.alias or name for model in _MODELS for name, info in model.model_fields.items()})
# Members whose value picks the model of their mapping: pydantic puts that value in the error's path.
_DISCRIMINATORS = ("check",)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    source = str(path)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(source, [ConfigProblem(None, "", f"cannot read the file: {error.strerror}")]) from None
    return load_config_text(text, source=source, environ=environ)


def load_config_text(text: str, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    located = LocatedYaml(text)
    if located.data is None:
        raise ConfigError(source, located.problems)
    located.substitute_env(env.get)
    problems = list(located.problems)
    if not isinstance(located.data, dict):
        problems.append(ConfigProblem(1, "", "the top level must be a mapping with `providers` and `routes`"))
        raise ConfigError(source, problems)
    reported: set[Path] = set(located.env_problem_paths)
    for path, message in semantics.check(located.data):
        if path in located.env_problem_paths:
            continue  # "KEY is empty" only because its variable is unset: already said
        reported.add(path)
        problems.append(ConfigProblem(located.line_of(path), render_path(path), message))
    try:
        config = Config.model_validate(located.data)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            path = _data_path(located.data, item["loc"])
            if item["type"] == "invalid_key":  # a key YAML did not read as text (`on:` is True): name it as written
                path = (*_data_path(located.data, item["loc"][:-1]), str(item["input"]))
            if any(path[: len(p)] == p for p in reported):
                continue  # already explained (an unset variable, a missing key) more precisely
            problems.append(ConfigProblem(located.line_of(path), render_path(path), _humanise(item, path)))
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    return config


def _data_path(data: Any, loc: tuple[int | str, ...]) -> Path:
    """Pydantic's `loc` with its internal tags (union members, validator wrappers) dropped.

    Walks the actual data, so a provider that happens to be named `int` keeps its name.
    """
    path: list[str | int] = []
    node = data
    tag_skipped = False
    for part in loc:
        if not tag_skipped and isinstance(node, dict) and any(node.get(key) == part for key in _DISCRIMINATORS):
            tag_skipped = True  # the check kind pydantic chose the model by (once: `terms.terms` is a member)
            continue
        tag_skipped = False
        if _has_child(node, part):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _looks_like_tag(part):
            node = None  # a missing or unknown key: keep it in the path, stop walking
        else:
            continue
        path.append(str(part) if isinstance(part, bool) else part)  # YAML 1.1 reads `on:` as the key True
    return tuple(path)


def _has_child(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _looks_like_tag(part: str) -> bool:
    return "[" in part or part in ("str", "int", "float", "bool", "list", "dict", "tuple", "none")


def _humanise(item: Any, path: Path) -> str:
    kind: str = item["type"]
    message: str = item["msg"]
    value = item.get("input")
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else ""
        if key in _KNOWN_KEYS:
            return f"{key!r} is not a setting here (see docs/configuration.md)"
        close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see docs/configuration.md"
        return f"unknown key {key!r} ({hint})"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return f"needs `check:` (one of {', '.join(CHECK_NAMES)})"
    if kind == "union_tag_invalid":
        return f"unknown check {item['ctx']['tag']!r} (one of {', '.join(CHECK_NAMES)})"
    if kind in ("string_too_short", "too_short") and isinstance(value, str | list | tuple) and not value:
        return "must not be empty"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping (key: value pairs), got {_describe(value)}"
    if kind == "int_parsing":
        message = "must be a whole number"
    message = (
        message.removeprefix("Value error, ").removeprefix("Assertion failed, ").replace("Input should be", "must be")
    )
    if path and path[-1] in _SECRET_KEYS:
        return message  # never echo what may be a credential
    if kind.startswith(("greater", "less", "int_", "string_", "float_", "bool_")) and value is not None:
        return f"{message} (got {value!r})"
    return message


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
