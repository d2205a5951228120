"""One configured guardrail made runnable: its detector (for checks that find spans) and what it is called.

Built once per config (patterns compiled, plugins loaded), shared by every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from extproc.guardrails.matches import Detector
from extproc.guardrails.patterns import PatternDetector, TermsDetector
from extproc.guardrails.pii import PiiDetector
from extproc.guardrails.plugins import Plugin, load_plugin
from extproc.guardrails.secrets import SecretsDetector
from switchyard.config.guardrails import Guardrail as GuardrailConfig
from switchyard.config.guardrails import (
    GuardrailAction,
    GuardrailStage,
    JsonSchemaGuardrail,
    MaxInputTokensGuardrail,
    PiiGuardrail,
    PluginGuardrail,
    RegexGuardrail,
    SecretsGuardrail,
    TermsGuardrail,
)

PluginLoader = Callable[[str, Mapping[str, Any]], Plugin]


@dataclass(frozen=True)
class Rule:
    config: GuardrailConfig
    detector: Detector | None = None  # pii, secrets, regex, terms
    plugin: Plugin | None = None
    validator: Any = None  # json_schema: a jsonschema validator

    @property
    def name(self) -> str:
        return self.config.rule_name

    @property
    def check(self) -> str:
        return self.config.check

    @property
    def action(self) -> GuardrailAction:
        return self.config.action

    @property
    def stage(self) -> GuardrailStage:
        return self.config.stage


def build_rule(config: GuardrailConfig, load: PluginLoader = load_plugin) -> Rule:
    if isinstance(config, PiiGuardrail):
        return Rule(config, detector=PiiDetector(config.kinds))
    if isinstance(config, SecretsGuardrail):
        return Rule(config, detector=SecretsDetector(config.kinds))
    if isinstance(config, RegexGuardrail):
        kind = (config.label or "MATCH").upper().replace("-", "_").replace(".", "_")
        return Rule(config, detector=PatternDetector(config.pattern, ignore_case=config.ignore_case, kind=kind))
    if isinstance(config, TermsGuardrail):
        return Rule(config, detector=TermsDetector(config.terms, ignore_case=config.ignore_case))
    if isinstance(config, JsonSchemaGuardrail):
        cls = jsonschema.validators.validator_for(config.json_schema, default=jsonschema.Draft202012Validator)
        return Rule(config, validator=cls(config.json_schema))
    if isinstance(config, PluginGuardrail):
        return Rule(config, plugin=load(config.name, config.options))
    if isinstance(config, MaxInputTokensGuardrail):
        return Rule(config)
    raise TypeError(f"no rule for {type(config).__name__}")
