"""Credentials in free text: provider API keys, cloud credentials, private keys and JWTs.

Each pattern is anchored on what the issuer puts in every key (a documented prefix such as `sk-ant-`, `AKIA`,
`ghp_`, `-----BEGIN ... PRIVATE KEY-----`), so ordinary words and hashes do not match. An AWS secret access key
has no prefix: it is 40 base64 characters, found only next to words that name it (`aws_secret_access_key`,
`secret key`), since a bare 40-character string is as likely a git hash's cousin as a key.
"""

from __future__ import annotations

import re

from extproc.guardrails.matches import Match
from switchyard.config.guardrails import SecretKind

_WORD_START = r"(?<![A-Za-z0-9_-])"
_WORD_END = r"(?![A-Za-z0-9_-])"

_PATTERNS: dict[SecretKind, tuple[tuple[str, re.Pattern[str]], ...]] = {
    SecretKind.PROVIDER_KEY: (
        ("ANTHROPIC_KEY", re.compile(_WORD_START + r"sk-ant-[A-Za-z0-9]{2,8}-[A-Za-z0-9_-]{20,200}" + _WORD_END)),
        ("OPENAI_KEY", re.compile(_WORD_START + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}" + _WORD_END)),
        ("GOOGLE_API_KEY", re.compile(_WORD_START + r"AIza[0-9A-Za-z_-]{35}" + _WORD_END)),
        ("HUGGINGFACE_TOKEN", re.compile(_WORD_START + r"hf_[A-Za-z0-9]{30,40}" + _WORD_END)),
        (
            "GITHUB_TOKEN",
            re.compile(_WORD_START + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        ),
        ("SLACK_TOKEN", re.compile(_WORD_START + r"xox[abposr]-[A-Za-z0-9-]{10,200}" + _WORD_END)),
        ("STRIPE_KEY", re.compile(_WORD_START + r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,200}" + _WORD_END)),
    ),
    SecretKind.CLOUD_CREDENTIAL: (
        ("AWS_ACCESS_KEY_ID", re.compile(_WORD_START + r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}" + _WORD_END)),
        (
            "AWS_SECRET_KEY",
            re.compile(
                r"(?i:aws_?secret_?access_?key|aws_?secret|secret_?access_?key|secret key)"
                r"[\"']?\s{0,4}[:=]?\s{0,4}[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
            ),
        ),
        (
            "AZURE_STORAGE_KEY",
            re.compile(r"(?i:AccountKey)=(?P<secret>[A-Za-z0-9/+]{86}==)"),
        ),
    ),
    SecretKind.PRIVATE_KEY: (
        (
            "PRIVATE_KEY",
            # the header, the base64 body and the footer where it is in the text (a key cut off is still a key);
            # the body's characters exclude `-`, so the footer ends it without any backtracking
            re.compile(
                r"-----BEGIN (?:[A-Z0-9]{1,10} )?PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,]{0,16384}"
                r"(?:-----END (?:[A-Z0-9]{1,10} )?PRIVATE KEY(?: BLOCK)?-----)?"
            ),
        ),
    ),
    SecretKind.JWT: (
        (
            "JWT",
            re.compile(
                _WORD_START + r"eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,16384}\.[A-Za-z0-9_-]{0,4096}" + _WORD_END
            ),
        ),
    ),
}


class SecretsDetector:
    def __init__(self, kinds: tuple[SecretKind, ...] = tuple(SecretKind)) -> None:
        self._patterns = [pattern for kind, patterns in _PATTERNS.items() if kind in kinds for pattern in patterns]

    def find(self, text: str) -> list[Match]:
        found: list[Match] = []
        for kind, pattern in self._patterns:
            for m in pattern.finditer(text):
                # a secret named by the words before it: mask the secret, keep the words
                start, end = m.span("secret") if "secret" in pattern.groupindex else m.span()
                found.append(Match(start, end, kind))
        return found
