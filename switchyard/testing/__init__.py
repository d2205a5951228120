"""Switchyard for an application's own integration tests: a real gateway in front of fake providers.

- `SwitchyardContainer`, `MockProviderContainer`: testcontainers containers of the Switchyard image
  (`pip install 'switchyard[testing]'`; imported on first use, so the gateway itself never needs testcontainers).
- `LocalSwitchyard`, `LocalMockProvider`: the same as local processes, for machines without a Docker engine; the
  pytest plugin (`switchyard.testing.pytest_plugin`) hands them out as fixtures and stops them after the test.

docs/testing.md shows a complete test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from switchyard.testing.local import LocalMockProvider, LocalSwitchyard
from switchyard.testing.mock_admin import MockProviderAdmin
from switchyard.testing.readiness import SwitchyardStartError

if TYPE_CHECKING:
    from switchyard.testing.containers import MockProviderContainer, SwitchyardContainer

__all__ = [
    "LocalMockProvider",
    "LocalSwitchyard",
    "MockProviderAdmin",
    "MockProviderContainer",
    "SwitchyardContainer",
    "SwitchyardStartError",
]

_CONTAINERS = ("MockProviderContainer", "SwitchyardContainer")


def __getattr__(name: str) -> Any:
    """The container classes, imported when first asked for: only they need testcontainers."""
    if name not in _CONTAINERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from switchyard.testing import containers
    except ImportError as error:
        raise ImportError(
            f"switchyard.testing.{name} needs testcontainers: pip install 'switchyard[testing]' ({error})"
        ) from error
    return getattr(containers, name)
