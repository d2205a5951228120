"""The per-attempt rewrite: make the request Envoy is about to send fit the target Envoy just picked.

Runs as an *upstream* filter, once per attempt. Envoy keeps the previous attempt's header mutations but
restores the original body, so every header any attempt may touch is overwritten or removed every time,
and `content-length` always matches the body actually sent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.type.v3 import http_status_pb2
from google.protobuf import text_format

from controlplane.envoy_api import METADATA_NAMESPACE
from extproc.targets import PreparedTarget, TargetIndex, header

_ATTRIBUTES_KEY = "envoy.filters.http.ext_proc"
_CACHE_LIMIT = 4096


class TargetResolver:
    """Maps Envoy's per-attempt attributes to a prepared target.

    Envoy sends the picked endpoint's metadata as protobuf text; parsing it costs more than the rest of
    the attempt, and there are only as many distinct strings as endpoints, so each is parsed once.
    """

    def __init__(self, index: TargetIndex) -> None:
        self.index = index
        self._keys: dict[str, str] = {}

    def resolve(self, request: ep.ProcessingRequest) -> tuple[PreparedTarget | None, str, str]:
        """(target, client endpoint, client model): the route name is `<endpoint>:<model>`."""
        fields = request.attributes[_ATTRIBUTES_KEY].fields
        endpoint, _, client_model = fields["xds.route_name"].string_value.partition(":")
        metadata_text = fields["xds.upstream_host_metadata"].string_value
        key = self._keys.get(metadata_text)
        if key is None:
            key = _key_from_metadata(metadata_text)
            if len(self._keys) >= _CACHE_LIMIT:
                self._keys.clear()
            self._keys[metadata_text] = key
        return self.index.get(key), endpoint, client_model


def _key_from_metadata(text: str) -> str:
    metadata = base_pb2.Metadata()
    text_format.Parse(text, metadata, allow_unknown_field=True)
    if METADATA_NAMESPACE not in metadata.filter_metadata:
        return ""
    return str(metadata.filter_metadata[METADATA_NAMESPACE].fields["key"].string_value)


@dataclass(frozen=True)
class Attempt:
    target: PreparedTarget
    endpoint: str
    client_model: str = ""

    @property
    def renames_model(self) -> bool:
        return bool(self.target.model) and self.target.model != self.client_model

    def header_mutation(self, content_length: int | None) -> ep.HeaderMutation:
        set_headers = list(self.target.set_headers.get(self.endpoint, ()))
        if content_length is not None:
            set_headers.append(header("content-length", str(content_length)))
        return ep.HeaderMutation(set_headers=set_headers, remove_headers=self.target.remove_headers)

    def rewrite_body(self, body: bytes) -> bytes | None:
        """The body for this target, or None when the original is already right."""
        target_model = self.target.model
        if not target_model or target_model == self.client_model:
            return None
        spliced = splice_model(body, self.client_model, target_model)
        if spliced is not None:
            return spliced
        try:
            document = json.loads(body)
        except ValueError:
            return None  # Envoy's json_to_metadata only lets JSON through; never fail an attempt here
        if not isinstance(document, dict) or document.get("model") == target_model:
            return None
        document["model"] = target_model
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def headers_only_response(self) -> ep.ProcessingResponse:
        return self.target.headers_only.get(self.endpoint, CONTINUE_HEADERS)

    def body_response(self, body: bytes) -> ep.ProcessingResponse:
        rewritten = self.rewrite_body(body)
        final = body if rewritten is None else rewritten
        common = ep.CommonResponse(header_mutation=self.header_mutation(len(final)))
        if rewritten is not None:
            common.body_mutation.body = rewritten
        return ep.ProcessingResponse(request_body=ep.BodyResponse(response=common))


_ESCAPES_THAT_HIDE_A_VALUE = re.compile(rb"\\[u/]")


@lru_cache(maxsize=1024)
def _model_member(model: str) -> re.Pattern[bytes]:
    encoded = json.dumps(model, ensure_ascii=False).encode()
    return re.compile(rb'"model"\s*:\s*' + re.escape(encoded))


@lru_cache(maxsize=1024)
def _encoded_member(model: str) -> bytes:
    return b'"model":' + json.dumps(model, ensure_ascii=False).encode()


def splice_model(body: bytes, client_model: str, target_model: str) -> bytes | None:
    """Replace the top-level model in the raw bytes, without parsing a possibly large body.

    Routing matched the top-level `model` exactly, so its member is `"model": "<client model>"`. When that
    text occurs exactly once it must be the top-level member: inside a JSON string its quotes would be
    escaped. Escapes that could spell the top-level value differently (`\\u`, `\\/`) or a second occurrence
    (a nested object with a `model` key) return None, and the caller parses instead.
    """
    if not client_model or _ESCAPES_THAT_HIDE_A_VALUE.search(body):
        return None
    matches = _model_member(client_model).finditer(body)
    first = next(matches, None)
    if first is None or next(matches, None) is not None:
        return None
    return body[: first.start()] + _encoded_member(target_model) + body[first.end() :]


CONTINUE_HEADERS = ep.ProcessingResponse(request_headers=ep.HeadersResponse())


def local_error(status: int, message: str, details: str) -> ep.ProcessingResponse:
    """A reply from the gateway itself. The body is the plain message: Envoy's local-reply mappers put it in
    the error shape of the API the client called, like every other reply Envoy makes by itself."""
    return ep.ProcessingResponse(
        immediate_response=ep.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=ep.HeaderMutation(set_headers=[header("content-type", "text/plain")]),
            body=message.encode(),
            details=details,
        )
    )


def unknown_target_response(detail: str) -> ep.ProcessingResponse:
    """No rewrite entry: answer rather than send an unrewritten request (wrong model, client's credentials)."""
    return local_error(503, f"Switchyard has no rewrite for this target ({detail}).", "switchyard_no_rewrite")
