"""The ext_proc's hand-assembled answers (extproc/answer_bytes.py) are the messages protobuf itself would build:
Envoy parses them, so any difference (a missing empty body, a header's action) would change what it does."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep

from extproc.answer_bytes import REQUEST_BODY, RESPONSE_BODY, body_answer, set_header


def _option(name: str, value: bytes) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=name, raw_value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


@pytest.mark.parametrize("body", [b"", b"{}", "é".encode() * 40_000])
def test_a_response_body_answer_replaces_the_body_even_with_nothing(body: bytes) -> None:
    parsed = ep.ProcessingResponse.FromString(body_answer(RESPONSE_BODY, body))
    expected = ep.ProcessingResponse(
        response_body=ep.BodyResponse(response=ep.CommonResponse(body_mutation=ep.BodyMutation(body=body)))
    )
    assert parsed == expected
    assert parsed.response_body.response.body_mutation.WhichOneof("mutation") == "body"


def test_a_request_body_answer_sets_its_headers_in_order_and_overwrites_them() -> None:
    headers = [("content-length", b"2"), (":path", b"/v1/x?y=1"), ("x-amz-date", b"20260101T000000Z")]
    answer = body_answer(REQUEST_BODY, b"{}", b"".join(set_header(name, value) for name, value in headers))
    expected = ep.ProcessingResponse(
        request_body=ep.BodyResponse(
            response=ep.CommonResponse(
                header_mutation=ep.HeaderMutation(set_headers=[_option(name, value) for name, value in headers]),
                body_mutation=ep.BodyMutation(body=b"{}"),
            )
        )
    )
    assert ep.ProcessingResponse.FromString(answer) == expected


def test_metadata_appended_to_an_answer_merges_into_it() -> None:
    first = ep.ProcessingResponse()
    first.dynamic_metadata.fields["a"].struct_value.fields["status"].string_value = "503"
    second = ep.ProcessingResponse()
    second.dynamic_metadata.fields["b"].struct_value.fields["response_headers"].string_value = ""
    answer = body_answer(RESPONSE_BODY, b"x") + first.SerializeToString() + second.SerializeToString()

    parsed = ep.ProcessingResponse.FromString(answer)

    assert parsed.response_body.response.body_mutation.body == b"x"
    assert parsed.dynamic_metadata.fields["a"].struct_value.fields["status"].string_value == "503"
    assert "response_headers" in parsed.dynamic_metadata.fields["b"].struct_value.fields
