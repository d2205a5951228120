"""The `guardrails:` lists of routes and clients: what they accept, and each mistake at its YAML path and line."""

from __future__ import annotations

import pytest

from switchyard.config.guardrails import (
    GuardrailAction,
    GuardrailStage,
    JsonSchemaGuardrail,
    PiiGuardrail,
    PiiKind,
    PluginGuardrail,
    SecretsGuardrail,
)
from tests.unit.test_config import BASE, load, problems_of, the_problem


def _route_guardrails(block: str) -> str:
    return BASE + "    guardrails:\n" + block  # `guardrails:` is line 10, its first item line 11


def test_route_and_client_guardrails_load_with_their_defaults() -> None:
    config = load(
        _route_guardrails(
            """\
      - {check: pii, stage: request, action: mask}
      - {check: secrets}
      - {check: regex, pattern: 'ACME-\\d{6}', action: flag, label: tickets}
      - {check: terms, terms: [project falcon]}
      - {check: max_input_tokens, limit: 20000}
      - {check: json_schema, schema: {type: object, required: [answer]}}
      - {check: plugin, name: acme.compliance, options: {code_names: [falcon]}, timeout: 250ms, on_error: pass}
clients:
  team-a:
    keys: [sk-team-a-0123456789]
    guardrails:
      - {check: pii, kinds: [email, card], stage: both}
"""
        )
    )
    route = config.routes[0].guardrails
    assert isinstance(route[0], PiiGuardrail) and route[0].action is GuardrailAction.MASK
    assert isinstance(route[1], SecretsGuardrail) and route[1].action is GuardrailAction.BLOCK
    assert route[1].stage is GuardrailStage.REQUEST
    assert route[2].rule_name == "tickets"
    assert isinstance(route[5], JsonSchemaGuardrail) and route[5].stage is GuardrailStage.RESPONSE
    assert (
        isinstance(route[6], PluginGuardrail) and route[6].timeout == 0.25 and route[6].rule_name == "acme.compliance"
    )
    both = config.guardrails_for("gpt-4", "team-a")
    assert len(both) == 8 and isinstance(both[0], PiiGuardrail) and both[0].kinds == (PiiKind.EMAIL, PiiKind.CARD)
    assert config.guardrails_for("gpt-4", None) == route  # no client: the route's own
    assert load(BASE).routes[0].guardrails == ()


@pytest.mark.parametrize(
    ("block", "line", "path", "fragment"),
    [
        ("      - {check: piii}\n", 11, "routes[0].guardrails[0]", "unknown check 'piii'"),
        ("      - {action: block}\n", 11, "routes[0].guardrails[0]", "needs `check:`"),
        ("      - {check: pii, action: redact}\n", 11, "routes[0].guardrails[0].action", "'mask', 'block' or 'flag'"),
        ("      - {check: pii, pattern: x}\n", 11, "routes[0].guardrails[0].pattern", "not a setting here"),
        ("      - {check: pii, kinds: [email, ssn]}\n", 11, "routes[0].guardrails[0].kinds[1]", "'email'"),
        (
            "      - check: regex\n        pattern: '(unclosed'\n",
            12,
            "routes[0].guardrails[0].pattern",
            "not a valid regular expression",
        ),
        ("      - {check: regex, pattern: 'a*'}\n", 11, "routes[0].guardrails[0].pattern", "matches the empty text"),
        ("      - {check: terms, terms: []}\n", 11, "routes[0].guardrails[0].terms", "must not be empty"),
        ("      - {check: max_input_tokens}\n", 11, "routes[0].guardrails[0].limit", "required key is missing"),
        (
            "      - {check: max_input_tokens, limit: 10, stage: response}\n",
            11,
            "routes[0].guardrails[0]",
            "`stage` can only be request",
        ),
        (
            "      - {check: max_input_tokens, limit: 10, action: mask}\n",
            11,
            "routes[0].guardrails[0]",
            "nothing to mask",
        ),
        (
            "      - check: json_schema\n        schema: {type: objekt}\n",
            12,
            "routes[0].guardrails[0].schema",
            "not a valid JSON Schema",
        ),
        (
            "      - {check: json_schema, schema: {type: object}, stage: request}\n",
            11,
            "routes[0].guardrails[0]",
            "`stage` can only be response",
        ),
        ("      - {check: plugin, name: 'acme compliance'}\n", 11, "routes[0].guardrails[0].name", "entry point name"),
        (
            "      - {check: plugin, name: acme.x, timeout: 2m}\n",
            11,
            "routes[0].guardrails[0].timeout",
            "less than or equal to 60",
        ),
        (
            "      - check: pii\n        on: response\n",
            12,
            "routes[0].guardrails[0].True",
            "`stage: request | response | both`",
        ),
    ],
)
def test_each_guardrail_mistake_is_reported_at_its_path_and_line(
    block: str, line: int, path: str, fragment: str
) -> None:
    problem = the_problem(problems_of(_route_guardrails(block)), path, fragment)
    assert problem.line == line


def test_client_guardrail_mistakes_name_the_client() -> None:
    text = BASE + "clients:\n  team-a:\n    keys: [sk-team-a-0123456789]\n    guardrails:\n      - {check: secret}\n"
    problem = the_problem(problems_of(text), "clients.team-a.guardrails[0]", "unknown check 'secret'")
    assert problem.line == 14


def test_a_yaml_boolean_key_is_one_problem() -> None:
    problems = problems_of(_route_guardrails("      - check: pii\n        on: response\n"))
    assert len(problems) == 1, problems
