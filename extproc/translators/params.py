"""Request parameter screening shared by the request translators.

A parameter the target API cannot honour is refused by name (the gateway answers 400) rather than dropped:
a client that asked for seeded sampling or log probabilities must not silently get something else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from extproc.translators.base import UnsupportedParameterError

# parameter -> (does this value ask for something the target cannot do?, why)
Rules = Mapping[str, tuple[Callable[[Any], bool], str]]


def always(_: Any) -> bool:
    return True


def screen(body: Mapping[str, Any], unsupported: Rules, translated: frozenset[str]) -> dict[str, Any]:
    """The parameters given (null means not given), once none asks for what the target cannot do.

    Parameters neither translated nor explicitly judged harmless are refused too: a new client-side feature
    must not be dropped on the way without anyone noticing.
    """
    params = {name: value for name, value in body.items() if value is not None}
    for name, value in params.items():
        rule = unsupported.get(name)
        if rule is not None and rule[0](value):
            raise UnsupportedParameterError(name, rule[1])
        if rule is None and name not in translated:
            raise UnsupportedParameterError(name, "is not supported for this model")
    return params


def output_schema(config: Any) -> dict[str, Any] | None:
    """The JSON schema an Anthropic `output_config.format` asks the answer to follow; None without a format.

    Every provider can constrain an answer to a schema, and only to one: any other format is refused by name."""
    output_format = config.get("format") if isinstance(config, dict) else None
    if output_format is None:
        return None
    schema = output_format.get("schema") if isinstance(output_format, dict) else None
    if not isinstance(schema, dict) or output_format.get("type") != "json_schema":
        raise UnsupportedParameterError("output_config.format", "must be a json_schema with a schema")
    return schema
