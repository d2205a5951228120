"""Bedrock Runtime Converse API for the mock: bodies, AWS's binary event-stream frames, errors, and the
SigV4 check AWS makes before anything else.

The check recomputes the signature with botocore's signer for the mock's test credential
(`TEST_ACCESS_KEY_ID` / `TEST_SECRET_ACCESS_KEY`, fakes that sign nothing real) over exactly the bytes
received (method, raw path, the signed headers, body) and answers 403 as AWS does when it differs. The frame
encoder is the mock's own: it is what the gateway must decode (with botocore's decoder), so it follows
AWS's framing (prelude with lengths and CRC32, typed headers, payload, message CRC32).
"""

from __future__ import annotations

import hmac
import json
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from switchyard.mock_provider.caching import NO_CACHE, CacheCounts
from switchyard.mock_provider.responses import reply_text, split_text

TEST_ACCESS_KEY_ID = "AKIDSWITCHYARDMOCK01"
TEST_SECRET_ACCESS_KEY = "switchyard-mock-secret-access-key-not-real"

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
# status -> the AWS error type Bedrock names in `x-amzn-ErrorType` for it
ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(status: int, message: str) -> bytes:
    return _dumps({"message": message})


def error_headers(status: int, kind: str | None = None) -> dict[str, str]:
    """Bedrock names an error in this header; its body holds only a message."""
    if kind is None:
        kind = ERROR_TYPES.get(status) or ("InternalServerException" if status >= 500 else "ValidationException")
    return {"x-amzn-errortype": kind}


def signature_problem(method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[str, str] | None:
    """(AWS error type, message) when the request is not signed by the test credential; None when it is."""
    match = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if match is None:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    if match["key"] != TEST_ACCESS_KEY_ID:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed or any(h not in headers for h in signed):
        return "IncompleteSignatureException", "The request signature does not sign host and x-amz-date."
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{raw_path}",
        data=body,
        headers={name: headers[name] for name in signed},
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY), match["service"], match["region"])
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if match["date"] != headers["x-amz-date"][:8] or not hmac.compare_digest(expected, match["signature"]):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.",
        )
    return None


def _output_tokens(text: str, completion_tokens: int | None) -> int:
    return len(text.split()) if completion_tokens is None else completion_tokens


def _usage(prompt_tokens: int, output_tokens: int, cached: CacheCounts = NO_CACHE) -> dict[str, int]:
    """Converse's TokenUsage: inputTokens leave out the cache reads and writes, named apart when any."""
    usage = {
        "inputTokens": cached.plain(prompt_tokens),
        "outputTokens": output_tokens,
        "totalTokens": prompt_tokens + output_tokens,
    }
    if cached != NO_CACHE:
        usage["cacheReadInputTokens"] = cached.read
        usage["cacheWriteInputTokens"] = cached.write
    return usage


def response(
    name: str, model: str, input_tokens: int, completion_tokens: int | None, cached: CacheCounts = NO_CACHE
) -> bytes:
    text = reply_text(name, model)
    return _dumps(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": _usage(input_tokens, _output_tokens(text, completion_tokens), cached),
            "metrics": {"latencyMs": 1},
        }
    )


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC32), headers, payload, CRC32."""
    encoded = b"".join(_header(n, v) for n, v in headers.items())
    prelude = struct.pack("!II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message))


def event(kind: str, payload: Mapping[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, _dumps(payload))


def stream_error_event(message: str) -> bytes:
    """What Bedrock sends when a started stream fails: an exception frame; then the stream ends."""
    headers = {
        ":exception-type": "serviceUnavailableException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, _dumps({"message": message}))


def stream_events(
    *,
    name: str,
    model: str,
    chunks: int,
    input_tokens: int,
    completion_tokens: int | None,
    cached: CacheCounts = NO_CACHE,
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(head, paced text deltas, tail) of a converse-stream answer."""
    text = reply_text(name, model)
    head = [event("messageStart", {"role": "assistant"})]
    paced = [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        for piece in (split_text(text, chunks) if chunks > 0 else [])
    ]
    tail = [
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": "end_turn"}),
        event(
            "metadata",
            {
                "usage": _usage(input_tokens, _output_tokens(text, completion_tokens), cached),
                "metrics": {"latencyMs": 1},
            },
        ),
    ]
    return head, paced, tail
