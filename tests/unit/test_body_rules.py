"""Per-target body rules: how each rule changes the provider's body, and what the config refuses."""

from __future__ import annotations

import pytest

from extproc import body_rules
from switchyard import contract
from switchyard.config import ConfigError, load_config_text

BODY = {"model": "m", "max_tokens": 900, "temperature": 0.3, "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"drop": ["temperature", "absent"]}, {"model": "m", "max_tokens": 900, "messages": BODY["messages"]}),
        (
            {"rename": {"max_tokens": "max_completion_tokens"}},
            {**{k: v for k, v in BODY.items() if k != "max_tokens"}, "max_completion_tokens": 900},
        ),
        ({"set": {"temperature": 1, "store": False}}, {**BODY, "temperature": 1, "store": False}),
        ({"default": {"temperature": 1, "top_p": 0.5}}, {**BODY, "top_p": 0.5}),
        ({"cap": {"max_tokens": 100, "n": 1}}, {**BODY, "max_tokens": 100}),
        ({"cap": {"max_tokens": 1000}}, BODY),
        # rename first, so a cap names the new member
        (
            {"rename": {"max_tokens": "max_completion_tokens"}, "cap": {"max_completion_tokens": 50}},
            {"model": "m", "temperature": 0.3, "messages": BODY["messages"], "max_completion_tokens": 50},
        ),
    ],
)
def test_each_rule(rules: dict[str, object], expected: dict[str, object]) -> None:
    assert body_rules.apply(rules, BODY) == expected
    assert BODY["max_tokens"] == 900, "the input is not changed"


def test_default_fills_a_null_member() -> None:
    assert body_rules.apply({"default": {"temperature": 1}}, {"temperature": None}) == {"temperature": 1}


def test_encoding_is_stable() -> None:
    assert (
        contract.encode_body_rules({"set": {"b": 1, "a": "é"}, "drop": ["x"]}) == '{"drop":["x"],"set":{"a":"é","b":1}}'
    )
    assert contract.decode_body_rules('{"drop":["x"]}') == {"drop": ["x"]}


CONFIG = """\
providers:
  oa: {kind: openai, base_url: "http://127.0.0.1:1", api_key: k}
routes:
  - model: r
    targets:
      - provider: oa
        model: o3
        body:
%s
"""


def _problems(rules: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(CONFIG % rules, source="t.yaml", environ={})
    return [(p.line, p.path, p.message) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("rules", "line", "path", "fragment"),
    [
        (
            "          dorp: [temperature]",
            9,
            "routes[0].targets[0].body.dorp",
            "unknown key 'dorp' (did you mean 'drop'?)",
        ),
        ("          drop: [temperature, model]", 9, "routes[0].targets[0].body.drop", "would remove `model`"),
        ("          rename: {model: engine}", 9, "routes[0].targets[0].body.rename", "would remove `model`"),
        ("          rename: {engine: model}", 9, "routes[0].targets[0].body.rename", "would replace `model`"),
        ("          set: {model: x}", 9, "routes[0].targets[0].body.set", "would replace `model`"),
        ("          default: {model: x}", 9, "routes[0].targets[0].body.default", "would replace `model`"),
        ("          cap: {max_tokens: 0}", 9, "routes[0].targets[0].body.cap.max_tokens", "greater than or equal to 1"),
        ("          cap: {max_tokens: lots}", 9, "routes[0].targets[0].body.cap.max_tokens", "whole number"),
    ],
)
def test_mistakes_are_reported_at_their_path_and_line(rules: str, line: int, path: str, fragment: str) -> None:
    problems = _problems(rules)
    assert any(p == (line, path, p[2]) and fragment in p[2] for p in problems), problems


def test_valid_rules_load() -> None:
    config = load_config_text(
        CONFIG % "          rename: {max_tokens: max_completion_tokens}\n          drop: [temperature]",
        source="t.yaml",
        environ={},
    )
    rules = config.routes[0].targets[0].body
    assert rules is not None and rules.drop == ("temperature",) and not rules.is_empty
