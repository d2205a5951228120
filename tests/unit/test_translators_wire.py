"""JSON on the wire (extproc/translators/wire.py) reads and writes exactly as the json module does, though orjson
does most of the work: clients and providers must get the same bytes as before, floats and odd inputs included."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import pytest

from extproc.translators import wire


def _json_dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _random_float(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.4:  # any bit pattern
        return float(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
    if pick < 0.8:
        return rng.uniform(-1e6, 1e6) * 10.0 ** rng.randint(-30, 30)
    return round(rng.random(), rng.randint(0, 6)) * 10.0 ** rng.randint(-8, 20)


def test_floats_are_written_as_the_json_module_writes_them() -> None:
    rng = random.Random(25)
    floats = [f for f in (_random_float(rng) for _ in range(50_000)) if math.isfinite(f)]
    floats += [0.0, -0.0, 1e-4, 9.99e-5, 1e-5, 1e-7, 1e-10, 1e15, 1e16, 1e22, 0.1 + 0.2, 5e-324, 1.7976931348623157e308]
    for value in floats:
        document = {"temperature": value, "list": [value, 1]}
        assert wire.dumps(document) == _json_dumps(document), repr(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, False, None], "é": '\u2028<>&/\x00\x1f\x7f\b\f\n\r\t"\\', "emoji": "\U0001f600"},
        {"seed": 2**64 - 1, "low": -(2**63), "big": 10**25, "negative_big": -(10**30)},
        {1: "non-string key", "nested": {"x": [[[]]]}},
        [wire.JsonFloat("nan"), wire.JsonFloat("inf"), 0.5],  # non-finite numbers only come read by json
        {"text": "5e-3 looks like a small float"},
    ],
)
def test_values_orjson_would_write_otherwise_are_written_by_the_json_module(value: Any) -> None:
    assert wire.dumps(value) == _json_dumps(value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"m","messages":[{"role":"user","content":"h\\u00e9llo"}],"temperature":0.7}',
        b'{"seed":123456789012345678901234567890,"n":18446744073709551615}',
        b'{"t":NaN,"u":Infinity,"v":-Infinity,"w":1e400}',
        b'\xef\xbb\xbf{"bom":1}',
        b'{"lone":"\\ud800"}',
        b'{"a":1,"a":2}',
        b" [1.0, -0, 1E5, 0.1000000000000000055511151231257827] ",
    ],
)
def test_documents_read_as_the_json_module_reads_them_and_go_back_out_the_same(raw: bytes) -> None:
    expected = json.loads(raw)
    read = wire.loads(raw)
    assert repr(read) == repr(expected)
    try:
        written = _json_dumps(expected)
    except UnicodeEncodeError:  # a lone surrogate: neither writes it
        with pytest.raises(UnicodeEncodeError):
            wire.dumps(read)
        return
    assert wire.dumps(read) == written


@pytest.mark.parametrize("raw", [b"", b"{", b"<html>", b'{"a":1,}', b"\xff\xfe", b'{"a":"\x01"}'])
def test_what_the_json_module_refuses_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        wire.loads(raw)
    assert wire.loads_object(raw) is None
