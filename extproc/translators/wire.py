"""JSON as it goes on the wire, shared by every translator and the ext_proc's exchange.

Read and written with orjson (about 5x faster than the json module on the bodies we translate, and most of a
translation's time), but never differently from the json module: what clients and providers get stays byte
for byte what it was. Where orjson would differ, the json module does the work instead:
- reading: integers over 64 bits (orjson makes them floats), and whatever orjson refuses that json accepts
  (NaN, Infinity, 1e400, a byte order mark, lone surrogates); numbers read that way come back as `JsonFloat`,
  which orjson refuses to write, so such a document is also written by json (NaN stays NaN, not null);
- writing: anything orjson refuses (integers over 64 bits, non-string keys, subclasses), and floats under 1e-4,
  which orjson writes as 0.00001 or 1e-5 where json writes 1e-05 (found by comparing both on random floats:
  tests/unit/test_translators_wire.py).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import orjson

_OVER_64_BITS = re.compile(rb"\d{20}")
_OVER_64_BITS_TEXT = re.compile(r"\d{20}")
_SMALL_FLOAT = re.compile(rb"0\.0000|e-\d(?!\d)")
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


class JsonFloat(float):
    """A number the json module read: orjson refuses to write it, so its document is written by json again."""


def loads(raw: bytes | str) -> Any:
    """The JSON value in `raw`, exactly as `json.loads` reads it; ValueError if it is no JSON."""
    if not (_OVER_64_BITS.search(raw) if isinstance(raw, bytes) else _OVER_64_BITS_TEXT.search(raw)):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw, parse_float=JsonFloat, parse_constant=JsonFloat)


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, the way both APIs send it (no ASCII escaping: fewer bytes, readable logs)."""
    try:
        out = orjson.dumps(value, option=_PASSTHROUGH)
    except TypeError:  # orjson.JSONEncodeError
        pass
    else:
        if not _SMALL_FLOAT.search(out):
            return out
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(raw: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None for anything else: providers and proxies do send HTML and garbage."""
    try:
        value = loads(raw)
    except ValueError:  # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def generated_id(prefix: str) -> str:
    """An id in the client API's style, for when the provider gave none to derive it from."""
    return prefix + uuid.uuid4().hex[:24]
