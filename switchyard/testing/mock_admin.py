"""The mock provider's admin API (`/_mock/...`), for a test that scripts failures and reads what arrived.

The same client serves the mock as a local process and as a container: both are one HTTP address. Standard
library only, so `switchyard.testing` adds no HTTP client to a user's test environment.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from switchyard.mock_provider.rules import parse_rule_spec, rules_from_json

RuleSpec = str | dict[str, Any]


def rules_json(rules: tuple[RuleSpec, ...] | list[RuleSpec]) -> list[dict[str, Any]]:
    """`--rule` specs ("model=gpt-4o,status=503") or `PUT /_mock/rules` objects, checked here, so that a typo
    fails in the test that made it rather than as a mock that silently answers 200."""
    checked = []
    for rule in rules:
        parsed = parse_rule_spec(rule) if isinstance(rule, str) else rules_from_json([rule])[0]
        checked.append(parsed.to_json())
    return checked


class MockProviderAdmin:
    """What the mock at `url` received, and which failures it answers with (first matching rule wins)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/_mock/{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def set_rules(self, *rules: RuleSpec) -> None:
        """Replace the failure rules: e.g. `set_rules("model=gpt-4o,status=503", "latency_ms=200")`. Keys:
        match model, path, header; act with status, latency_ms, hang, reset, rate, times, retry_after, error_type,
        completion_tokens, stream_error_after (`switchyard mock-provider --help`). No rules: every answer is 200."""
        self._call("PUT", "rules", rules_json(rules))

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every request received (method, path, headers, body, and the rule's action), oldest first; only those
        whose JSON body names `model` when given."""
        recorded: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        if model is None:
            return recorded
        return [r for r in recorded if isinstance(r["body"], dict) and r["body"].get("model") == model]

    def clear(self) -> None:
        """Forget the requests received so far."""
        self._call("DELETE", "requests")
