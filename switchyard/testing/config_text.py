"""The routing YAML a test hands over, with the listener put where the test gateway listens.

A test's config names its routes and providers; where the gateway listens is the fixture's business (a free
port on loopback, or all interfaces inside a container). The text is edited, not re-serialised, so comments,
`${VAR}` references and key order stay as written.
"""

from __future__ import annotations

import re
from pathlib import Path

_LISTEN = re.compile(r"""^["']?listen["']?[ \t]*:.*$""", re.MULTILINE)


def config_text(config: str | Path) -> str:
    """YAML text from text (a `str`) or a file (a `Path`)."""
    return config.read_text() if isinstance(config, Path) else config


def with_listen(text: str, address: str) -> str:
    """`text` with its top-level `listen:` set to `address` (added when it has none)."""
    line = f'listen: "{address}"'
    if _LISTEN.search(text):
        return _LISTEN.sub(line, text, count=1)
    return f"{text.rstrip()}\n{line}\n"
