"""The per-attempt rewrite, without Envoy: what each attempt's mutation sets, removes and sends."""

from __future__ import annotations

import json

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from google.protobuf import struct_pb2, text_format

from extproc.attempt import Attempt, TargetResolver, splice_model, unknown_target_response
from extproc.targets import PreparedTarget, TargetIndex
from switchyard.api.v1 import rewrite_pb2


def _rewrite(
    key: str, model: str = "gpt-3.5", auth: tuple[str, str] | None = ("authorization", "Bearer sk-b")
) -> rewrite_pb2.TargetRewrite:
    return rewrite_pb2.TargetRewrite(
        key=key,
        route="chatgpt-4",
        target=key,
        model=model,
        paths={"chat": f"/v1/engines/{model}/completions", "completions": "/v1/completions"},
        set_headers=[rewrite_pb2.HeaderValue(name=auth[0], value=auth[1])] if auth else [],
        remove_headers=[h for h in ("authorization", "api-key", "x-api-key") if not auth or h != auth[0]],
    )


def _headers(mutation: ep.HeaderMutation) -> dict[str, str]:
    return {h.header.key: h.header.raw_value.decode() for h in mutation.set_headers}


def _attempt(rewrite: rewrite_pb2.TargetRewrite, endpoint: str = "chat", client: str = "chatgpt-4") -> Attempt:
    return Attempt(PreparedTarget.from_rewrite(rewrite), endpoint, client)


def test_body_response_sets_path_credentials_and_exact_content_length() -> None:
    body = json.dumps({"model": "chatgpt-4", "messages": [{"role": "user", "content": "héllo"}]}).encode()

    response = _attempt(_rewrite("backup")).body_response(body)

    common = response.request_body.response
    sent = common.body_mutation.body
    assert json.loads(sent) == {"model": "gpt-3.5", "messages": [{"role": "user", "content": "héllo"}]}
    headers = _headers(common.header_mutation)
    assert headers[":path"] == "/v1/engines/gpt-3.5/completions"
    assert headers["authorization"] == "Bearer sk-b"
    assert headers["content-length"] == str(len(sent))
    assert set(common.header_mutation.remove_headers) == {"api-key", "x-api-key"}


def test_unchanged_body_still_resets_content_length_left_by_an_earlier_attempt() -> None:
    # Envoy restores the original body on a retry but keeps the previous attempt's headers.
    body = b'{"model":"gpt-3.5","messages":[]}'

    response = _attempt(_rewrite("backup")).body_response(body)

    common = response.request_body.response
    assert not common.HasField("body_mutation")
    assert _headers(common.header_mutation)["content-length"] == str(len(body))


def test_target_without_key_removes_every_credential_header() -> None:
    attempt = _attempt(_rewrite("local", model="llama", auth=None))

    mutation = attempt.header_mutation(10)

    assert "authorization" not in _headers(mutation)
    assert set(mutation.remove_headers) == {"authorization", "api-key", "x-api-key"}


def test_endpoint_picks_its_own_path() -> None:
    attempt = _attempt(_rewrite("backup"), endpoint="completions")

    assert _headers(attempt.header_mutation(None))[":path"] == "/v1/completions"


def test_headers_only_request_gets_mutation_without_content_length() -> None:
    response = _attempt(_rewrite("backup")).headers_only_response()

    headers = _headers(response.request_headers.response.header_mutation)
    assert headers[":path"] == "/v1/engines/gpt-3.5/completions"
    assert "content-length" not in headers


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_non_object_body_is_sent_unchanged(body: bytes) -> None:
    assert _attempt(_rewrite("backup")).rewrite_body(body) is None


def _processing_request(metadata_key: str, route: str = "chat:chatgpt-4") -> ep.ProcessingRequest:
    metadata = base_pb2.Metadata()
    metadata.filter_metadata["switchyard"].update({"key": metadata_key, "target": "backup"})
    attributes = struct_pb2.Struct()
    attributes.update({"xds.route_name": route, "xds.upstream_host_metadata": text_format.MessageToString(metadata)})
    request = ep.ProcessingRequest()
    request.attributes["envoy.filters.http.ext_proc"].CopyFrom(attributes)
    return request


def test_resolver_finds_target_from_envoy_attributes() -> None:
    index = TargetIndex()
    index.apply(rewrite_pb2.RewriteTable(version="1", targets=[_rewrite("k1"), _rewrite("k2", model="other")]))
    resolver = TargetResolver(index)

    target, endpoint, client_model = resolver.resolve(_processing_request("k2", route="completions:chatgpt-4"))

    assert target is not None and target.model == "other"
    assert endpoint == "completions"
    assert client_model == "chatgpt-4"


def test_resolver_returns_none_for_unknown_endpoint() -> None:
    index = TargetIndex()
    index.apply(rewrite_pb2.RewriteTable(version="1", targets=[_rewrite("k1")]))

    target, _, _ = TargetResolver(index).resolve(_processing_request("missing"))

    assert target is None


def test_targets_removed_by_a_reload_stay_resolvable_for_in_flight_retries() -> None:
    index = TargetIndex()
    index.apply(rewrite_pb2.RewriteTable(version="1", targets=[_rewrite("old"), _rewrite("kept")]))
    index.apply(rewrite_pb2.RewriteTable(version="2", targets=[_rewrite("kept", model="new-model")]))

    assert index.version == "2"
    assert index.get("old") is not None
    kept = index.get("kept")
    assert kept is not None and kept.model == "new-model"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the only unescaped `"model": "<client model>"` is the top-level member
        (
            b'{"messages":[{"content":"say \\"model\\": \\"chatgpt-4\\""}],"model" : "chatgpt-4","n":1}',
            b'{"messages":[{"content":"say \\"model\\": \\"chatgpt-4\\""}],"model":"gpt-3.5","n":1}',
        ),
        (
            '{"model":"chatgpt-4","messages":[{"content":"héllo"}]}'.encode(),
            '{"model":"gpt-3.5","messages":[{"content":"héllo"}]}'.encode(),
        ),
    ],
)
def test_model_is_spliced_without_reencoding_the_body(body: bytes, expected: bytes) -> None:
    assert splice_model(body, "chatgpt-4", "gpt-3.5") == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"tools":[{"model":"chatgpt-4"}],"model":"chatgpt-4"}',  # a nested member with the same text
        b'{"model":"chatgpt\\u002d4","tools":[{"model":"chatgpt-4"}]}',  # top-level value spelled with an escape
        b'{"model":"x"}',  # no occurrence at all
    ],
)
def test_ambiguous_bodies_are_not_spliced(body: bytes) -> None:
    assert splice_model(body, "chatgpt-4", "gpt-3.5") is None


def test_ambiguous_body_still_gets_the_top_level_model_through_a_parse() -> None:
    body = b'{"tools":[{"model":"chatgpt-4"}],"model":"chatgpt-4"}'

    rewritten = _attempt(_rewrite("backup")).rewrite_body(body)

    assert rewritten is not None
    assert json.loads(rewritten) == {"tools": [{"model": "chatgpt-4"}], "model": "gpt-3.5"}


def test_attempt_keeping_the_client_model_needs_no_body() -> None:
    assert not _attempt(_rewrite("same", model="chatgpt-4")).renames_model
    assert _attempt(_rewrite("other", model="gpt-3.5")).renames_model


@pytest.mark.parametrize("kind", ["response_headers", "response_body", "request_trailers", "response_trailers"])
def test_unexpected_messages_are_answered_not_left_to_time_out(kind: str) -> None:
    import asyncio

    from extproc.server import AttemptProcessor

    request = ep.ProcessingRequest(**{kind: getattr(ep, "HttpHeaders" if "headers" in kind else
                                                      "HttpBody" if "body" in kind else "HttpTrailers")()})  # fmt: skip

    async def one(item: ep.ProcessingRequest):  # type: ignore[no-untyped-def]
        yield item

    async def run() -> list[ep.ProcessingResponse]:
        processor = AttemptProcessor(TargetIndex())
        return [response async for response in processor.Process(one(request), None)]

    (response,) = asyncio.run(run())
    assert response.WhichOneof("response") == kind


def test_a_target_without_rewrite_is_refused_with_a_plain_message_envoy_puts_in_the_clients_shape() -> None:
    reply = unknown_target_response("table version 7").immediate_response
    assert reply.status.code == 503
    assert reply.body == b"Switchyard has no rewrite for this target (table version 7)."
    assert reply.details == "switchyard_no_rewrite"


def test_translations_are_decided_once_per_table_not_per_attempt() -> None:
    rewrite = rewrite_pb2.TargetRewrite(
        key="k", route="r", target="t", model="claude", paths={"chat": "/v1/messages", "messages": "/v1/messages"},
        api="anthropic",
    )  # fmt: skip
    target = PreparedTarget.from_rewrite(rewrite)
    translator, client_path = target.translations["chat"]
    assert (translator.client_api, translator.provider_api) == ("openai", "anthropic")
    assert client_path == "/v1/chat/completions"
    assert "messages" not in target.translations, "same API: the fast path, nothing through Python"
    assert "embeddings" in target.translations, "still refused with a 400 if Envoy ever routes it here"
    same_api = PreparedTarget.from_rewrite(rewrite_pb2.TargetRewrite(key="o", paths={"chat": "/v1/chat/completions"}))
    assert set(same_api.translations) == {"messages"}
