"""The one identity of a target that every part of the gateway shares.

Envoy carries it in endpoint metadata, the attempt log reports by it and the health and latency state is
kept under it."""

from __future__ import annotations

import hashlib

from switchyard.config import Route, Target


def target_key(route: Route, target: Target) -> str:
    """Stable across reloads and reorderings, and free of characters that need escaping in metadata."""
    digest = hashlib.sha256(f"{route.model}\0{target.display_name}".encode()).hexdigest()
    return digest[:16]
