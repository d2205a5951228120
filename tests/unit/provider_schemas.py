"""Translated bodies checked against the providers' own definitions of their APIs, not against our idea of them.

- Bedrock: botocore's service model for `bedrock-runtime` and its `ParamValidator`, the code AWS's SDK runs
  on every request before sending it (Converse / ConverseStream input, ConverseResponse for answers).
- Anthropic and OpenAI: the official SDKs' types. Request params are TypedDicts, which nothing validates at
  run time, so `typed_dict_problems` walks them: required keys, no key the type does not define, every value
  of a type it allows. Responses are the SDKs' pydantic models; those accept unknown keys, so every model in
  the result is also checked for keys its class does not define.
- Gemini: google-genai's pydantic types, which forbid unknown keys by themselves; validated from JSON, so
  bytes fields (thoughtSignature, inlineData) must be the base64 the wire carries.

Each `assert_*` fails with every problem found, named by where it is in the body.
"""

from __future__ import annotations

import collections.abc
import json
import types
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import anthropic.types
import botocore.session
import openai.types.chat
import pydantic
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator
from google.genai import types as genai
from typing_extensions import is_typeddict  # the SDKs' TypedDicts are typing_extensions ones

JSON = dict[str, Any]

# --- Bedrock ---------------------------------------------------------------------------------------------------


@cache
def _bedrock_runtime() -> ServiceModel:
    return botocore.session.get_session().get_service_model("bedrock-runtime")


def _bedrock_problems(params: JSON, shape: Shape) -> str:
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else ""


def assert_converse_request(body: JSON, *, stream: bool = False) -> None:
    """`body` as the Converse (or ConverseStream) operation's input; the model id travels in the path."""
    operation = _bedrock_runtime().operation_model("ConverseStream" if stream else "Converse")
    assert operation.input_shape is not None
    problems = _bedrock_problems({"modelId": "anthropic.claude-sonnet-4-5", **body}, operation.input_shape)
    assert not problems, problems


def assert_converse_response(body: JSON) -> None:
    """A Converse answer (as a test fixture or the mock sends it) against the operation's output shape."""
    output = _bedrock_runtime().operation_model("Converse").output_shape
    assert output is not None
    problems = _bedrock_problems(body, output)
    assert not problems, problems


def assert_converse_stream_event(name: str, payload: JSON) -> None:
    """One ConverseStream event (`:event-type` and its JSON payload) against its member of the stream union."""
    stream_shape = _bedrock_runtime().shape_for("ConverseStreamOutput")
    members = stream_shape.members  # type: ignore[attr-defined]
    assert name in members, f"{name!r} is not a ConverseStream event"
    problems = _bedrock_problems(payload, members[name])
    assert not problems, problems


# --- TypedDict request params (Anthropic, OpenAI) ---------------------------------------------------------------


def typed_dict_problems(value: Any, annotation: Any, where: str = "body") -> list[str]:
    """Where `value` does not fit `annotation` (a TypedDict and what it is made of); empty when it fits."""
    if annotation is Any or annotation is object:
        return []
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Union or origin is types.UnionType:
        tries = [typed_dict_problems(value, member, where) for member in args]
        # Report the member that fit best: one whose problems lie inside the value, before a mismatch of type.
        return [] if [] in tries else min(tries, key=lambda t: (all(p.startswith(f"{where}:") for p in t), len(t)))
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if is_typeddict(annotation):
        return _typed_dict(value, annotation, where)
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or _is_sequence_not_str(origin):
        if not isinstance(value, list):
            return [f"{where}: a list is expected, not {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in typed_dict_problems(item, args[0], f"{where}[{i}]")]
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            return [f"{where}: an object is expected, not {type(value).__name__}"]
        return [p for k, v in value.items() for p in typed_dict_problems(v, args[1], f"{where}.{k}")]
    return _scalar(value, annotation, where)


def _is_sequence_not_str(origin: Any) -> bool:
    return getattr(origin, "__name__", "") == "SequenceNotStr"


def _typed_dict(value: Any, annotation: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: an object ({annotation.__name__}) is expected, not {type(value).__name__}"]
    hints = get_type_hints(annotation)
    problems = [
        f"{where}.{key}: required by {annotation.__name__}" for key in annotation.__required_keys__ - set(value)
    ]
    for key, item in value.items():
        if key not in hints:
            problems.append(f"{where}.{key}: not defined by {annotation.__name__}")
        else:
            problems += typed_dict_problems(item, hints[key], f"{where}.{key}")
    return problems


_SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), int: (int,), float: (int, float), bool: (bool,)}


def _scalar(value: Any, annotation: Any, where: str) -> list[str]:
    if annotation is None or annotation is type(None):
        return [] if value is None else [f"{where}: null is expected"]
    accepted = _SCALARS.get(annotation)
    if accepted is None:  # file handles, paths...: nothing JSON can be
        return [f"{where}: {annotation!r} cannot come from JSON"]
    if isinstance(value, bool) and annotation is not bool:
        return [f"{where}: {annotation.__name__} is expected, not a boolean"]
    return [] if isinstance(value, accepted) else [f"{where}: {annotation.__name__} is expected, not {value!r}"]


def _assert_fits(value: Any, annotation: Any) -> None:
    problems = typed_dict_problems(value, annotation)
    assert not problems, "\n".join(problems)


def assert_anthropic_request(body: JSON) -> None:
    params = anthropic.types.message_create_params
    _assert_fits(
        body, params.MessageCreateParamsStreaming if body.get("stream") else params.MessageCreateParamsNonStreaming
    )


def assert_openai_request(body: JSON) -> None:
    params = openai.types.chat.completion_create_params
    _assert_fits(
        body,
        params.CompletionCreateParamsStreaming if body.get("stream") else params.CompletionCreateParamsNonStreaming,
    )


# --- SDK response models (Anthropic, OpenAI) --------------------------------------------------------------------


def _extra_keys(value: Any, where: str) -> list[str]:
    """Keys the SDK's models received but do not define (they accept them silently)."""
    if isinstance(value, pydantic.BaseModel):
        problems = [f"{where}.{key}: not defined by {type(value).__name__}" for key in value.model_extra or {}]
        for name in type(value).model_fields:
            problems += _extra_keys(getattr(value, name), f"{where}.{name}")
        return problems
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _extra_keys(item, f"{where}[{i}]")]
    return []


def _assert_model(annotation: Any, body: Any) -> Any:
    value = pydantic.TypeAdapter(annotation).validate_python(body)
    problems = _extra_keys(value, "body")
    assert not problems, "\n".join(problems)
    return value


def assert_anthropic_message(body: JSON) -> anthropic.types.Message:
    message: anthropic.types.Message = _assert_model(anthropic.types.Message, body)
    return message


def assert_anthropic_event(event: JSON) -> None:
    _assert_model(anthropic.types.RawMessageStreamEvent, event)


def assert_openai_completion(body: JSON) -> openai.types.chat.ChatCompletion:
    completion: openai.types.chat.ChatCompletion = _assert_model(openai.types.chat.ChatCompletion, body)
    return completion


def assert_openai_chunk(body: JSON) -> None:
    _assert_model(openai.types.chat.ChatCompletionChunk, body)


# --- Gemini -----------------------------------------------------------------------------------------------------

# generateContent's request members, each as google-genai defines it (the REST body has no type of its own).
_GEMINI_REQUEST: dict[str, Any] = {
    "contents": list[genai.Content],
    "systemInstruction": genai.Content,
    "tools": list[genai.Tool],
    "toolConfig": genai.ToolConfig,
    "generationConfig": genai.GenerationConfig,
    "safetySettings": list[genai.SafetySetting],
    "cachedContent": str,
}


def assert_gemini_request(body: JSON) -> None:
    unknown = set(body) - set(_GEMINI_REQUEST)
    assert not unknown, f"not generateContent request members: {sorted(unknown)}"
    for name, value in body.items():
        pydantic.TypeAdapter(_GEMINI_REQUEST[name]).validate_json(json.dumps(value))


def assert_gemini_response(body: JSON) -> genai.GenerateContentResponse:
    return genai.GenerateContentResponse.model_validate_json(json.dumps(body))


# Exported for tests that build their own checks on the same definitions.
__all__ = [
    "assert_anthropic_event",
    "assert_anthropic_message",
    "assert_anthropic_request",
    "assert_converse_request",
    "assert_converse_response",
    "assert_converse_stream_event",
    "assert_gemini_request",
    "assert_gemini_response",
    "assert_openai_chunk",
    "assert_openai_completion",
    "assert_openai_request",
    "typed_dict_problems",
]
