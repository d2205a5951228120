"""An example guardrail plugin: refuses project code names a team must not send to an outside provider.

Installed (`pip install examples/guardrails/acme_compliance`), it is the entry point `acme.compliance` in the
`switchyard.guardrails` group, used as `{check: plugin, name: acme.compliance, options: {code_names: [...]}}`.
It shows the whole interface: a factory taking the YAML's `options`, and a `check` returning findings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from extproc.guardrails.plugins import PluginFinding, PluginText


class CodeNameCheck:
    def __init__(self, code_names: Sequence[str]) -> None:
        words = "|".join(re.escape(name) for name in code_names)
        self._pattern = re.compile(rf"\b(?:{words})\b", re.IGNORECASE)

    def check(self, texts: Sequence[PluginText]) -> list[PluginFinding]:
        return [
            PluginFinding(index, match.start(), match.end(), "CODE_NAME")
            for index, text in enumerate(texts)
            for match in self._pattern.finditer(text.text)
        ]


def factory(options: Mapping[str, Any]) -> CodeNameCheck:
    code_names = options.get("code_names")
    if not isinstance(code_names, list) or not all(isinstance(name, str) and name for name in code_names):
        raise ValueError("acme.compliance needs options.code_names: a list of names")
    return CodeNameCheck(code_names)
