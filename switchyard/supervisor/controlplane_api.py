"""The control plane's HTTP API as its clients read it: `switchyard status`, and `switchyard up` when Envoy is
not ready in time (what Envoy rejected is in the status document)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def fetch_status(api: str, timeout: float = 5.0) -> dict[str, Any]:
    """`GET /status` of the control plane at `api` (HOST:PORT or a URL). Raises OSError when it does not answer."""
    url = api if api.startswith("http") else f"http://{api}"
    with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=timeout) as response:
        document: dict[str, Any] = json.load(response)
    return document
