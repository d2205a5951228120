"""Failure rules: which requests get a failure instead of a normal answer.

Kept free of any HTTP machinery so matching, rate and ``times`` bookkeeping can be unit
tested directly; the server only asks :meth:`RuleEngine.decide` once per request.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MATCH_KEYS = ("model", "path", "header")
ACTION_KEYS = (
    "status",
    "latency_ms",
    "hang",
    "reset",
    "rate",
    "times",
    "retry_after",
    "error_type",
    "completion_tokens",
    "stream_error_after",
)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions that must all hold; an empty match selects every request.

    ``header`` stores a lowercase name, so the headers passed to :meth:`matches` must be
    looked up case-insensitively (aiohttp's ``CIMultiDictProxy`` is) or use lowercase keys.
    """

    model: str | None = None
    path: str | None = None
    header: tuple[str, str] | None = None

    def matches(self, model: str | None, path: str, headers: Mapping[str, str]) -> bool:
        if self.model is not None and model != self.model:
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        return self.header is None or headers.get(self.header[0]) == self.header[1]

    def to_json(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.model is not None:
            out["model"] = self.model
        if self.path is not None:
            out["path"] = self.path
        if self.header is not None:
            out["header"] = f"{self.header[0]}={self.header[1]}"
        return out


@dataclass(frozen=True, slots=True)
class Rule:
    """One failure to inject. A rule without status/hang/reset forces a (possibly delayed) success,
    which lets an earlier rule exempt some requests from a later catch-all failure."""

    match: Match = field(default_factory=Match)
    status: int | None = None
    latency_ms: float = 0.0
    hang: bool = False
    reset: bool = False
    rate: float = 1.0
    times: int | None = None
    retry_after: str | None = None  # the Retry-After of a 429 ("1" when unset); "" sends none
    # The injected error's name as the provider spells it (`--api bedrock`: the `x-amzn-ErrorType` header, e.g.
    # ModelNotReadyException; Gemini: the error's status; OpenAI and Anthropic: the body's error type), where
    # one status stands for errors a gateway must tell apart. None: the status's usual one.
    error_type: str | None = None
    completion_tokens: int | None = None  # a success reports this many output tokens in its usage
    # A streamed success sends this many content deltas, then an error event, and ends: the failure
    # a gateway can no longer retry transparently. Non-streamed requests it matches succeed as usual.
    stream_error_after: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error code 400..599, got {self.status}")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms must be a finite number >= 0, got {self.latency_ms}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, got {self.times}")
        if self.completion_tokens is not None and self.completion_tokens < 0:
            raise ValueError(f"completion_tokens must be >= 0, got {self.completion_tokens}")
        if self.stream_error_after is not None and self.stream_error_after < 0:
            raise ValueError(f"stream_error_after must be >= 0, got {self.stream_error_after}")
        if sum((self.status is not None, self.hang, self.reset)) > 1:
            raise ValueError("status, hang and reset are mutually exclusive in one rule")
        if self.error_type is not None and (self.status is None or not self.error_type.strip()):
            raise ValueError("error_type names the injected error: it needs a status and must not be empty")
        if self.stream_error_after is not None and (self.status is not None or self.hang or self.reset):
            raise ValueError("stream_error_after cuts a successful stream: it cannot go with status, hang or reset")

    @property
    def action(self) -> str:
        """The label recorded with each request this rule answers."""
        if self.reset:
            return "reset"
        if self.hang:
            return "hang"
        if self.status is not None:
            return f"status:{self.status}"
        if self.stream_error_after is not None:
            return f"stream_error_after:{self.stream_error_after}"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        """Same shape as accepted by :func:`rule_from_json`, so GET output can be PUT back."""
        return {
            "match": self.match.to_json(),
            "status": self.status,
            "latency_ms": self.latency_ms,
            "hang": self.hang,
            "reset": self.reset,
            "rate": self.rate,
            "times": self.times,
            "retry_after": self.retry_after,
            "error_type": self.error_type,
            "completion_tokens": self.completion_tokens,
            "stream_error_after": self.stream_error_after,
        }


class RuleEngine:
    """Runtime state of a rule list: per-rule application counts and the seeded RNG.

    Replacing the rules also re-seeds the RNG, so a test that PUTs rules sees the same
    ``rate`` outcomes no matter what traffic the process handled before.
    """

    def __init__(self, rules: Sequence[Rule] = (), seed: int = 0) -> None:
        self.seed = seed
        self.replace(rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def replace(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        self._applied = [0] * len(self._rules)
        self._rng = random.Random(self.seed)

    def decide(self, model: str | None, path: str, headers: Mapping[str, str]) -> Rule | None:
        """Return the first rule that applies (and count it), or None for a normal answer."""
        for i, rule in enumerate(self._rules):
            if rule.times is not None and self._applied[i] >= rule.times:
                continue
            if not rule.match.matches(model, path, headers):
                continue
            if rule.rate < 1.0 and self._rng.random() >= rule.rate:
                continue
            self._applied[i] += 1
            return rule
        return None


def _parse_header(value: str) -> tuple[str, str]:
    name, sep, expected = value.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"header must be 'name=value', got {value!r}")
    return name.strip().lower(), expected


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _parse_number(key: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}") from None


def parse_rule_spec(spec: str) -> Rule:
    """Parse a command-line spec like ``model=gpt-4,status=502,rate=0.5``.

    Bare ``hang``/``reset`` mean ``=true``; ``latency-ms`` is accepted for ``latency_ms`` so the
    key can be spelled like the matching command-line flag.
    """
    if not spec.strip():
        raise ValueError("empty rule spec")
    match: dict[str, Any] = {}
    action: dict[str, Any] = {}
    for item in spec.split(","):
        raw_key, sep, value = item.partition("=")
        key = raw_key.strip().replace("-", "_")
        if not key:
            raise ValueError(f"empty item in rule spec {spec!r}")
        if not sep and key in ("hang", "reset"):
            value = "true"
        elif not sep:
            raise ValueError(f"rule item {item.strip()!r} is not key=value")
        if key in match or key in action:
            raise ValueError(f"duplicate key {key!r} in rule spec")
        if key in ("model", "path"):
            if not value:
                raise ValueError(f"{key} must not be empty")
            match[key] = value
        elif key == "header":
            match[key] = _parse_header(value)
        elif key in ("hang", "reset"):
            action[key] = _parse_bool(key, value)
        elif key in ("status", "times", "completion_tokens", "stream_error_after"):
            action[key] = _parse_number(key, value, int)
        elif key in ("latency_ms", "rate"):
            action[key] = _parse_number(key, value, float)
        elif key in ("retry_after", "error_type"):
            action[key] = value
        else:
            known = ", ".join(MATCH_KEYS + ACTION_KEYS)
            raise ValueError(f"unknown rule key {raw_key.strip()!r} (expected one of {known})")
    return Rule(match=Match(**match), **action)


def _expect(key: str, value: Any, kinds: tuple[type, ...], what: str) -> Any:
    # bool is an int subclass; "status": true must not silently become 1.
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise ValueError(f"{key} must be {what}, got {value!r}")
    return value


def rule_from_json(obj: Any) -> Rule:
    """Validate one rule of the ``PUT /_mock/rules`` body; unknown keys are errors, not ignored,
    because a silently ignored typo would make a failure test pass for the wrong reason."""
    if not isinstance(obj, dict):
        raise ValueError(f"a rule must be an object, got {obj!r}")
    unknown = set(obj) - {"match", *ACTION_KEYS}
    if unknown:
        raise ValueError(f"unknown rule key(s) {sorted(unknown)} (expected match, {', '.join(ACTION_KEYS)})")
    raw_match = obj.get("match") or {}
    if not isinstance(raw_match, dict):
        raise ValueError(f"match must be an object, got {raw_match!r}")
    unknown = set(raw_match) - set(MATCH_KEYS)
    if unknown:
        raise ValueError(f"unknown match key(s) {sorted(unknown)} (expected {', '.join(MATCH_KEYS)})")
    match: dict[str, Any] = {}
    for key in ("model", "path"):
        if raw_match.get(key) is not None:
            match[key] = _expect(key, raw_match[key], (str,), "a string")
    if raw_match.get("header") is not None:
        match["header"] = _parse_header(_expect("header", raw_match["header"], (str,), "a 'name=value' string"))
    action: dict[str, Any] = {}
    for key, kinds, what in (
        ("status", (int,), "an integer"),
        ("times", (int,), "an integer or null"),
        ("latency_ms", (int, float), "a number"),
        ("rate", (int, float), "a number"),
        ("hang", (bool,), "a boolean"),
        ("reset", (bool,), "a boolean"),
        ("retry_after", (str,), "a string"),
        ("error_type", (str,), "a string"),
        ("completion_tokens", (int,), "an integer"),
        ("stream_error_after", (int,), "an integer"),
    ):
        if obj.get(key) is not None:
            action[key] = _expect(key, obj[key], kinds, what)
    return Rule(match=Match(**match), **action)


def rules_from_json(obj: Any) -> list[Rule]:
    """Validate a whole rule list, naming the index of the first bad rule."""
    if not isinstance(obj, list):
        raise ValueError(f"rules must be a JSON list, got {type(obj).__name__}")
    rules = []
    for i, item in enumerate(obj):
        try:
            rules.append(rule_from_json(item))
        except ValueError as exc:
            raise ValueError(f"rule {i}: {exc}") from None
    return rules
