"""Load a routing YAML into a validated `Config`, or raise `ConfigError` listing every problem with its line."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path as FilePath

from pydantic import ValidationError

from switchyard.config import semantics
from switchyard.config.errors import ConfigError, ConfigProblem
from switchyard.config.model import Config
from switchyard.config.yaml_source import LocatedYaml, render_path


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    source = str(path)
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(source, [ConfigProblem(None, "", f"cannot read the file: {error.strerror}")]) from None
    return load_config_text(text, source=source, environ=environ)


def load_config_text(text: str, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    lookup: Callable[[str], str | None] = env.get
    located = LocatedYaml(text)
    if located.problems and located.data is None:
        raise ConfigError(source, located.problems)
    located.substitute_env(lookup)
    problems = list(located.problems)
    if not isinstance(located.data, dict):
        problems.append(ConfigProblem(1, "", "the top level must be a mapping with `providers` and `routes`"))
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(located.data)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            path = tuple(part for part in item["loc"] if not _is_pydantic_tag(part))
            message = _humanise(item["msg"], item["type"], item.get("input"))
            problems.append(ConfigProblem(located.line_of(path), render_path(path), message))
        raise ConfigError(source, problems) from None
    for path, message in semantics.check(config):
        problems.append(ConfigProblem(located.line_of(path), render_path(path), message))
    if problems:
        raise ConfigError(source, problems)
    return config


def _is_pydantic_tag(part: object) -> bool:
    # Union members and validator wrappers show up in `loc` as strings like "function-before[...]".
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool"))


def _humanise(message: str, kind: str, value: object) -> str:
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the config reference in README.md)"
    if kind == "missing":
        return "required key is missing"
    if kind == "enum":
        return message.replace("Input should be", "must be")
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message.replace("Input should be", "must be")
    if kind.startswith(("greater", "less", "int_", "string_", "float_")) and value is not None:
        return f"{message} (got {value!r})"
    return message
