"""JSON as it goes on the wire, shared by every translator."""

from __future__ import annotations

import json
import uuid
from typing import Any


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, the way both APIs send it (no ASCII escaping: fewer bytes, readable logs)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None for anything else: providers and proxies do send HTML and garbage."""
    try:
        value = json.loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def generated_id(prefix: str) -> str:
    """An id in the client API's style, for when the provider gave none to derive it from."""
    return prefix + uuid.uuid4().hex[:24]
