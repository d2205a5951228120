"""Durations ("30s", "250ms") and sizes ("10MiB") as humans write them in YAML."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_duration(value: object) -> float:
    """Seconds as float; bare numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s or 500ms, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"expected a duration like 30s or 500ms, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes as int; bare numbers are bytes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 10MiB, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    raise ValueError(f"expected a size like 10MiB or 1048576, got {value!r}")


def format_duration(seconds: float) -> str:
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def at_least_a_millisecond(seconds: float) -> float:
    if seconds < 0.001:
        raise ValueError(f"must be at least 1ms, got {format_duration(seconds) if seconds > 0 else seconds}")
    return seconds
