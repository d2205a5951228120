"""The wire APIs the mock can speak: each knows its endpoints, success bodies, stream events and
error shape, so the server stays API-agnostic (recording, rules, pacing and transport only).

An answer is data (:class:`Reply` or :class:`Stream`), not an aiohttp response: the server owns
headers and pacing, which is what keeps failure injection identical across APIs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

import botocore.session

from switchyard.mock_provider import (
    anthropic_responses,
    bedrock_responses,
    caching,
    gemini_responses,
    responses,
    responses_api,
)


@dataclass(frozen=True, slots=True)
class Call:
    """One request as an API sees it; ``model`` is already resolved (body, path or a default)."""

    method: str
    path: str
    body: Any
    malformed: bool  # the body was not valid JSON
    model: str
    size: int
    seq: int
    completion_tokens: int | None = None
    # as received, for APIs that check a signature over them (Bedrock): lower-cased headers, the path
    # before percent-decoding (query included), the body's bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_path: str = ""
    raw_body: bytes = b""


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete JSON answer, success or error."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stream:
    """An SSE answer: ``head`` at once, ``paced`` with the chunk delay between events, ``tail`` at once.

    The first ``deltas`` paced events carry the content; ``stream_error_after`` cuts among them.
    """

    head: Sequence[bytes]
    paced: Sequence[bytes]
    tail: Sequence[bytes]
    deltas: int
    content_type: str = "text/event-stream"
    # the event that replaces the rest of this stream when a rule breaks it, where it is not the API's usual
    # one (an OpenAI mock's Responses streams)
    error_event: Callable[[str], bytes] | None = None


class Api(Protocol):
    def error_body(self, status: int, message: str) -> bytes: ...

    def injected_error(self, status: int, message: str, kind: str | None) -> Reply:
        """A rule's failure, as this API names errors; `kind` the rule's `error_type` (None: the status's)."""
        ...

    def stream_error(self, message: str) -> bytes:
        """The event that replaces the rest of a stream a rule breaks mid-way."""
        ...

    def answer(self, call: Call) -> Reply | Stream: ...


# A token count answers what the request's body holds, about as the answers' usage does: a deterministic number
# tests can compute from the body the mock recorded (`responses.estimate_prompt_tokens` of its size).
def _counted(call: Call) -> int:
    return responses.estimate_prompt_tokens(call.size)


# The members of each API's count request, as the official SDKs define them (tests/unit/test_mock_provider*.py
# checks these against openai's InputTokenCountParams and anthropic's MessageCountTokensParams). Both APIs
# refuse others: a generation parameter (max_tokens, stream) sent to a count endpoint is a 400.
RESPONSES_COUNT_MEMBERS = frozenset(
    {
        "conversation",
        "input",
        "instructions",
        "model",
        "parallel_tool_calls",
        "personality",
        "previous_response_id",
        "reasoning",
        "text",
        "tool_choice",
        "tools",
        "truncation",
    }
)
ANTHROPIC_COUNT_MEMBERS = frozenset(
    {
        "messages",
        "model",
        "cache_control",
        "output_config",
        "speed",
        "system",
        "thinking",
        "tool_choice",
        "tools",
        "user_profile_id",
        "workspace_id",
    }
)


class OpenAIApi:
    """OpenAI and Azure OpenAI: chat and legacy completions, embeddings, the Responses API (and its token
    counts) and the model list.

    Paths are matched by suffix so Azure's ``/openai/deployments/NAME/...`` works unchanged.
    """

    def __init__(self, name: str, stream_chunks: int) -> None:
        self.name = name
        self.stream_chunks = stream_chunks
        self._models = responses.models_list(name)

    def error_body(self, status: int, message: str) -> bytes:
        return responses.error_body(status, message)

    def injected_error(self, status: int, message: str, kind: str | None) -> Reply:
        return Reply(status, responses.error_body(status, message, kind=kind))

    def stream_error(self, message: str) -> bytes:
        return responses.stream_error_event(message)

    def answer(self, call: Call) -> Reply | Stream:
        method, tail = call.method, call.path.rstrip("/")
        if method == "GET" and tail.endswith("/models"):
            return Reply(200, self._models)
        if method == "POST" and tail.endswith("/responses/input_tokens"):
            return self._input_tokens(call)
        if method != "POST" or not tail.endswith(("/completions", "/embeddings", "/responses")):
            return Reply(404, self.error_body(404, f"Unknown request URL: {method} {call.path}"))
        if call.malformed:
            return Reply(400, self.error_body(400, "We could not parse the JSON body of your request."))
        body = call.body
        if not isinstance(body, dict):
            return Reply(400, self.error_body(400, "The request body must be a JSON object."))
        resp_id = f"{self.name}-{call.seq}"  # unique per request, and traceable to the recording
        created, tokens = int(time.time()), responses.estimate_prompt_tokens(call.size)
        if tail.endswith("/responses"):
            return self._responses(call, body, resp_id, created, tokens)
        if tail.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
            return Reply(200, responses.embeddings(call.model, count, tokens))
        chat = tail.endswith("/chat/completions")
        if body.get("stream") is True:
            opts = body.get("stream_options")
            paced, rest = responses.stream_events(
                chat=chat,
                resp_id=resp_id,
                created=created,
                name=self.name,
                model=call.model,
                chunks=self.stream_chunks,
                include_usage=isinstance(opts, dict) and opts.get("include_usage") is True,
                prompt_tokens=tokens,
                cached_tokens=caching.automatic(tokens).read if chat else 0,
            )
            return Stream(head=(), paced=paced, tail=rest, deltas=max(0, self.stream_chunks))
        if chat:
            cached = caching.automatic(tokens).read
            answer = responses.chat_completion(
                resp_id, created, self.name, call.model, tokens, call.completion_tokens, cached
            )
            return Reply(200, answer)
        return Reply(
            200, responses.text_completion(resp_id, created, self.name, call.model, tokens, call.completion_tokens)
        )

    def _input_tokens(self, call: Call) -> Reply:
        """`POST /v1/responses/input_tokens`: an InputTokenCountResponse."""
        if call.malformed or not isinstance(call.body, dict):
            return Reply(400, self.error_body(400, "We could not parse the JSON body of your request."))
        unknown = sorted(set(call.body) - RESPONSES_COUNT_MEMBERS)
        if unknown:
            message = f"Unknown parameter: '{unknown[0]}'."
            return Reply(400, responses.error_body(400, message, param=unknown[0]))
        answer = {"object": "response.input_tokens", "input_tokens": _counted(call)}
        return Reply(200, json.dumps(answer).encode())

    def _responses(self, call: Call, body: dict[str, Any], resp_id: str, created: int, tokens: int) -> Reply | Stream:
        if "input" not in body and "previous_response_id" not in body and "conversation" not in body:
            message = "Missing required parameter: 'input'."
            return Reply(400, responses.error_body(400, message, param="input"))
        if body.get("stream") is True:
            head, paced, tail = responses_api.stream_events(
                resp_id=resp_id,
                created=created,
                name=self.name,
                model=call.model,
                request=body,
                chunks=self.stream_chunks,
                input_tokens=tokens,
                output_tokens=call.completion_tokens,
                cached=caching.automatic(tokens),
            )
            return Stream(head, paced, tail, len(paced), error_event=responses_api.stream_error_event)
        answer = responses_api.response(
            resp_id, created, self.name, call.model, body, tokens, call.completion_tokens, caching.automatic(tokens)
        )
        return Reply(200, answer)


class AnthropicApi:
    """Anthropic's Messages API (``POST /v1/messages``), its token counts (``/v1/messages/count_tokens``) and
    model list, with their required fields."""

    _REQUIRED = ("model", "messages", "max_tokens")

    def __init__(self, name: str, stream_chunks: int) -> None:
        self.name = name
        self.stream_chunks = stream_chunks
        self._models = anthropic_responses.models_list()

    def error_body(self, status: int, message: str) -> bytes:
        return anthropic_responses.error_body(status, message)

    def injected_error(self, status: int, message: str, kind: str | None) -> Reply:
        return Reply(status, anthropic_responses.error_body(status, message, kind))

    def stream_error(self, message: str) -> bytes:
        return anthropic_responses.stream_error_event(message)

    def _invalid(self, message: str) -> Reply:
        return Reply(400, self.error_body(400, message))

    def answer(self, call: Call) -> Reply | Stream:
        method, tail = call.method, call.path.rstrip("/")
        if method == "GET" and tail.endswith("/models"):
            return Reply(200, self._models)
        if method == "POST" and tail.endswith("/messages/count_tokens"):
            return self._count_tokens(call)
        if method != "POST" or not tail.endswith("/messages"):
            return Reply(404, self.error_body(404, f"Unknown request URL: {method} {call.path}"))
        if call.malformed:
            return self._invalid("There was an error parsing the body of your request: invalid JSON.")
        body = call.body
        if not isinstance(body, dict):
            return self._invalid("The request body must be a JSON object.")
        for key in self._REQUIRED:  # Anthropic rejects these up front, naming the field like this
            if key not in body:
                return self._invalid(f"{key}: Field required")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return self._invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            return self._invalid("max_tokens: Input should be greater than or equal to 1")
        msg_id = f"msg_{self.name}-{call.seq}"  # unique per request, and traceable to the recording
        tokens = responses.estimate_prompt_tokens(call.size)
        cached = caching.marked(call.raw_body, tokens)
        if body.get("stream") is True:
            head, deltas, rest = anthropic_responses.stream_events(
                msg_id=msg_id,
                name=self.name,
                model=call.model,
                chunks=self.stream_chunks,
                input_tokens=tokens,
                completion_tokens=call.completion_tokens,
                cached=cached,
            )
            return Stream(head=head, paced=deltas, tail=rest, deltas=len(deltas))
        answer = anthropic_responses.message(msg_id, self.name, call.model, tokens, call.completion_tokens, cached)
        return Reply(200, answer)

    def _count_tokens(self, call: Call) -> Reply:
        """A MessageTokensCount, for a body with `model` and `messages` and nothing a count does not take."""
        if call.malformed or not isinstance(call.body, dict):
            return self._invalid("There was an error parsing the body of your request: invalid JSON.")
        for key in ("model", "messages"):
            if key not in call.body:
                return self._invalid(f"{key}: Field required")
        extra = sorted(set(call.body) - ANTHROPIC_COUNT_MEMBERS)
        if extra:
            return self._invalid(f"{extra[0]}: Extra inputs are not permitted")
        return Reply(200, json.dumps({"input_tokens": _counted(call)}).encode())


class GeminiApi:
    """Google's Gemini API: ``POST .../models/{model}:generateContent`` and ``:streamGenerateContent``
    (served as SSE, as with ``?alt=sse``), and ``:countTokens``; the model comes from the path."""

    def __init__(self, name: str, stream_chunks: int) -> None:
        self.name = name
        self.stream_chunks = stream_chunks

    def error_body(self, status: int, message: str) -> bytes:
        return gemini_responses.error_body(status, message)

    def injected_error(self, status: int, message: str, kind: str | None) -> Reply:
        return Reply(status, gemini_responses.error_body(status, message, kind))

    def stream_error(self, message: str) -> bytes:
        return gemini_responses.stream_error_event(message)

    def answer(self, call: Call) -> Reply | Stream:
        method, path = call.method, call.path
        if method == "POST" and path.endswith(":countTokens"):
            return self._count_tokens(call)
        streaming = path.endswith(":streamGenerateContent")
        if method != "POST" or not (streaming or path.endswith(":generateContent")):
            return Reply(404, self.error_body(404, f"Unknown request URL: {method} {path}"))
        if call.malformed or not isinstance(call.body, dict):
            return Reply(400, self.error_body(400, "Invalid JSON payload received."))
        contents = call.body.get("contents")
        if not isinstance(contents, list) or not contents:
            return Reply(400, self.error_body(400, "* GenerateContentRequest.contents: contents is not specified"))
        if "model" in call.body or "messages" in call.body:
            unknown = "model" if "model" in call.body else "messages"
            return Reply(400, self.error_body(400, f'Invalid JSON payload received. Unknown name "{unknown}"'))
        response_id = f"{self.name}-{call.seq}"
        tokens = responses.estimate_prompt_tokens(call.size)
        if streaming:
            paced, tail = gemini_responses.stream_events(
                response_id=response_id,
                name=self.name,
                model=call.model,
                chunks=self.stream_chunks,
                prompt_tokens=tokens,
                completion_tokens=call.completion_tokens,
                cached_tokens=caching.automatic(tokens).read,
            )
            return Stream(head=(), paced=paced, tail=tail, deltas=len(paced))
        cached = caching.automatic(tokens).read
        answer = gemini_responses.response(response_id, self.name, call.model, tokens, call.completion_tokens, cached)
        return Reply(200, answer)

    def _count_tokens(self, call: Call) -> Reply:
        """A CountTokensResponse, for `contents` or a whole `generateContentRequest` (which names its model as
        `models/{model}`), never both."""
        if call.malformed or not isinstance(call.body, dict):
            return Reply(400, self.error_body(400, "Invalid JSON payload received."))
        unknown = sorted(set(call.body) - {"contents", "generateContentRequest"})
        if unknown:
            return Reply(400, self.error_body(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}"'))
        request = call.body.get("generateContentRequest")
        if request is not None and "contents" in call.body:
            return Reply(400, self.error_body(400, "contents and generateContentRequest are mutually exclusive"))
        if request is not None and not (
            isinstance(request, dict) and str(request.get("model", "")).startswith("models/")
        ):
            return Reply(400, self.error_body(400, "* GenerateContentRequest.model: model is not specified"))
        contents = request.get("contents") if isinstance(request, dict) else call.body.get("contents")
        if not isinstance(contents, list) or not contents:
            return Reply(400, self.error_body(400, "* CountTokensRequest.contents: contents is not specified"))
        return Reply(200, json.dumps({"totalTokens": _counted(call)}).encode())


class BedrockApi:
    """AWS Bedrock Runtime's Converse API: ``POST /model/{modelId}/converse`` and ``/converse-stream`` (AWS's
    binary event stream), and CountTokens (``/model/{modelId}/count-tokens``). Like AWS, it answers 403 before
    anything else when the SigV4 signature is not the test credential's (:mod:`bedrock_responses`)."""

    def __init__(self, name: str, stream_chunks: int) -> None:
        self.name = name
        self.stream_chunks = stream_chunks

    def error_body(self, status: int, message: str) -> bytes:
        return bedrock_responses.error_body(status, message)

    def injected_error(self, status: int, message: str, kind: str | None) -> Reply:
        return Reply(status, self.error_body(status, message), bedrock_responses.error_headers(status, kind))

    def stream_error(self, message: str) -> bytes:
        return bedrock_responses.stream_error_event(message)

    def _error(self, status: int, kind: str, message: str) -> Reply:
        return Reply(status, self.error_body(status, message), {"x-amzn-errortype": kind})

    def answer(self, call: Call) -> Reply | Stream:
        problem = bedrock_responses.signature_problem(call.method, call.raw_path, call.headers, call.raw_body)
        if problem is not None:
            return self._error(403, *problem)
        if call.method == "POST" and call.path.startswith("/model/") and call.path.endswith("/count-tokens"):
            return self._count_tokens(call)
        streaming = call.path.endswith("/converse-stream")
        if (
            call.method != "POST"
            or not call.path.startswith("/model/")
            or not (streaming or call.path.endswith("/converse"))
        ):
            return self._error(404, "UnknownOperationException", f"Unknown operation: {call.method} {call.path}")
        if call.malformed or not isinstance(call.body, dict):
            return self._error(400, "SerializationException", "The request body is not valid JSON.")
        extraneous = sorted(set(call.body) - _converse_fields())
        if extraneous:
            return self._error(400, "ValidationException", f"extraneous key [{extraneous[0]}] is not permitted")
        if not isinstance(call.body.get("messages"), list) or not call.body["messages"]:
            return self._error(400, "ValidationException", "A conversation must start with a user message.")
        tokens = responses.estimate_prompt_tokens(call.size)
        cached = caching.marked(call.raw_body, tokens)
        if streaming:
            head, paced, tail = bedrock_responses.stream_events(
                name=self.name,
                model=call.model,
                chunks=self.stream_chunks,
                input_tokens=tokens,
                completion_tokens=call.completion_tokens,
                cached=cached,
            )
            return Stream(head, paced, tail, len(paced), content_type="application/vnd.amazon.eventstream")
        return Reply(200, bedrock_responses.response(self.name, call.model, tokens, call.completion_tokens, cached))

    def _count_tokens(self, call: Call) -> Reply:
        """A CountTokensResponse, for an `input` holding exactly one of `converse` (a ConverseTokensRequest,
        members as botocore's model defines them) and `invokeModel`."""
        body = call.body
        if call.malformed or not isinstance(body, dict):
            return self._error(400, "SerializationException", "The request body is not valid JSON.")
        extraneous = sorted(set(body) - {"input"})
        if extraneous:
            return self._error(400, "ValidationException", f"extraneous key [{extraneous[0]}] is not permitted")
        given = body.get("input")
        if not isinstance(given, dict) or len(given) != 1 or not set(given) <= {"converse", "invokeModel"}:
            return self._error(400, "ValidationException", "input must hold exactly one of converse, invokeModel")
        converse = given.get("converse")
        if converse is not None:
            extraneous = sorted(set(converse) - _member_names("ConverseTokensRequest"))
            if extraneous:
                return self._error(400, "ValidationException", f"extraneous key [{extraneous[0]}] is not permitted")
            if not isinstance(converse.get("messages"), list) or not converse["messages"]:
                return self._error(400, "ValidationException", "A conversation must start with a user message.")
        return Reply(200, json.dumps({"inputTokens": _counted(call)}).encode())


@cache
def _member_names(shape: str) -> frozenset[str]:
    """A bedrock-runtime structure's members, from botocore's model."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return frozenset(model.shape_for(shape).members)  # type: ignore[attr-defined]


@cache  # loaded on the first Bedrock request, not by every command that imports the mock
def _converse_fields() -> frozenset[str]:
    """Converse's body members as botocore's bedrock-runtime model defines them (the model id is in the path):
    the list follows AWS's service model rather than a copy of it that would fall behind (`outputConfig`...)."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = model.operation_model("Converse").input_shape
    assert shape is not None
    return frozenset(shape.members) - {"modelId"}


APIS: dict[str, Callable[[str, int], Api]] = {
    "openai": OpenAIApi,
    "anthropic": AnthropicApi,
    "gemini": GeminiApi,
    "bedrock": BedrockApi,
}


def make_api(kind: str, name: str, stream_chunks: int) -> Api:
    try:
        factory = APIS[kind]
    except KeyError:
        raise ValueError(f"unknown api {kind!r} (expected one of {', '.join(APIS)})") from None
    return factory(name, stream_chunks)
