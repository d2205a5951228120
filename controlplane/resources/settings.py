"""What the translation needs beyond the YAML: facts about where it runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TranslateSettings:
    """What the translation needs beyond the YAML: facts about where it runs."""

    tls_ca_file: str = "/etc/ssl/certs/ca-certificates.crt"
    extproc_message_timeout_s: float = 2.0
    # False only to measure the floor of this design (`make bench`): no upstream filters at all, so requests
    # reach providers with the client's path, model and credentials.
    rewrite_attempts: bool = True


DEFAULT_SETTINGS = TranslateSettings()
