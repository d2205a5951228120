"""The routing YAML: pydantic models, loading with line-accurate errors, and env-var substitution.

Every other part of Switchyard (control plane, `validate`, `up`) reads configuration only through
`load_config`, so an error is reported the same way wherever it is found.
"""

from switchyard.config.errors import ConfigError, ConfigProblem
from switchyard.config.loader import load_config, load_config_text
from switchyard.config.model import (
    ClientEndpoint,
    Config,
    Provider,
    ProviderKind,
    Route,
    Strategy,
    Target,
)

__all__ = [
    "ClientEndpoint",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Provider",
    "ProviderKind",
    "Route",
    "Strategy",
    "Target",
    "load_config",
    "load_config_text",
]
