"""AWS Signature Version 4 for attempts to providers that want it (Bedrock), with botocore's own signer.

The signature covers the method, path, query, Host, a timestamp and a hash of the body, so it can only be
made once the body is final: after the translation (and the target's body rules), which is why the ext_proc
signs rather than Envoy's per-attempt rewrite. Host, region, signing name and credentials arrive with the
attempt (`TranslationRequest.sigv4`, switchyard/contract.py), like everything else the stateless ext_proc
needs; they are never logged. The Host comes from the control plane because Envoy sets the upstream Host (the
endpoint's hostname) only after the upstream filters: the ext_proc sees the client's. Only `content-type` and `host`
are signed besides what SigV4 adds itself: Envoy adds forwarding headers later, and AWS accepts unsigned
extra headers.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@lru_cache(maxsize=256)
def _signer(encoded: str) -> tuple[SigV4Auth, str]:
    """The signer and the Host of one `sigv4` value (cached: there are as many as Bedrock providers)."""
    fields = dict(parse_qsl(encoded, keep_blank_values=True))
    credentials = Credentials(fields["access_key_id"], fields["secret_access_key"], fields.get("session_token"))
    return SigV4Auth(credentials, fields["service"], fields["region"]), fields.get("host", "")


def signature_headers(encoded: str, method: str, scheme: str, host: str, path: str, body: bytes) -> dict[str, str]:
    """The headers that sign this request: authorization, x-amz-date and (temporary credentials) the token.

    `path` is the :path as sent, query included; `host` the Host header, unless the signing fields name it."""
    signer, signed_host = _signer(encoded)
    request = AWSRequest(
        method=method,
        url=f"{scheme}://{signed_host or host}{path}",
        data=body,
        headers={"content-type": "application/json"},
    )
    signer.add_auth(request)
    return {name.lower(): value for name, value in request.headers.items() if name.lower() != "content-type"}
