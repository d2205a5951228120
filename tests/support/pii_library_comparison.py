"""Scores PII detectors on `pii_sample.SAMPLE`: the built-in patterns against libraries that could replace them.

Not part of the suite: the libraries are heavy and not Switchyard dependencies. To re-run, in a venv of its own
with Switchyard's source on the path (run from the repository root):

    python -m venv /tmp/pii
    /tmp/pii/bin/pip install presidio-analyzer scrubadub phonenumbers pydantic regex jsonschema
    PYTHONPATH=. /tmp/pii/bin/python tests/support/pii_library_comparison.py

Each detector runs in a fresh process, so its start (imports and set-up) is measured as the gateway would pay it.
A span counts as found when a reported span of the right kind overlaps it; anything else reported is a false
alarm. Kinds a library cannot report are out of its score (its `kinds` column).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from tests.support.pii_sample import SAMPLE

Span = tuple[str, int, int]

# Presidio's AnalyzerEngine is left out: its default NLP engine downloads a spaCy model when it starts.
_DETECTORS = ("builtin", "presidio_patterns", "scrubadub", "phonenumbers")


def _builtin() -> Any:
    from extproc.guardrails.pii import PiiDetector

    detector = PiiDetector()
    return lambda text: [(m.kind, m.start, m.end) for m in detector.find(text)]


def _presidio_patterns() -> Any:
    """Presidio's pattern recognizers, called without its NLP engine (whose spaCy model cannot be downloaded)."""
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
    )

    kinds = {"EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN", "IP_ADDRESS": "IP_ADDRESS"}
    kinds["PHONE_NUMBER"] = "PHONE"
    recognizers = [EmailRecognizer(), CreditCardRecognizer(), IbanRecognizer(), IpRecognizer(), PhoneRecognizer()]

    def find(text: str) -> list[Span]:
        found = []
        for recognizer in recognizers:
            for result in recognizer.analyze(text, recognizer.supported_entities, None):
                if result.score >= 0.4:
                    found.append((kinds[result.entity_type], result.start, result.end))
        return found

    return find


def _scrubadub() -> Any:
    import scrubadub

    scrubber = scrubadub.Scrubber()
    kinds = {"email": "EMAIL", "phone": "PHONE", "credit_card": "CARD"}

    def find(text: str) -> list[Span]:
        return [(kinds[f.type], f.beg, f.end) for f in scrubber.iter_filth(text) if f.type in kinds]

    return find


def _phonenumbers() -> Any:
    import phonenumbers

    def find(text: str) -> list[Span]:
        return [("PHONE", m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, "US")]

    return find


_KINDS = {
    "builtin": {"EMAIL", "PHONE", "CARD", "IBAN", "IP_ADDRESS"},
    "presidio_patterns": {"EMAIL", "PHONE", "CARD", "IBAN", "IP_ADDRESS"},
    "scrubadub": {"EMAIL", "PHONE", "CARD"},
    "phonenumbers": {"PHONE"},
}


def score(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        find = globals()["_" + name]()
        find("warm up: a@example.com")
    except Exception as error:
        return {"detector": name, "error": f"{type(error).__name__}: {str(error)[:120]}"}
    start_seconds = time.perf_counter() - started
    kinds = _KINDS[name]
    found = missed = false_alarms = 0
    began = time.perf_counter()
    for text, labels in SAMPLE:
        expected = [(kind, text.index(span), text.index(span) + len(span)) for kind, span in labels if kind in kinds]
        reported = [span for span in find(text) if span[0] in kinds]
        for kind, start, end in expected:
            hit = any(k == kind and s < end and start < e for k, s, e in reported)
            found += hit
            missed += not hit
        for kind, start, end in reported:
            if not any(k == kind and s < end and start < e for k, s, e in expected):
                false_alarms += 1
    per_text_ms = (time.perf_counter() - began) / len(SAMPLE) * 1000
    return {
        "detector": name,
        "kinds": len(kinds),
        "found": found,
        "missed": missed,
        "false_alarms": false_alarms,
        "start_s": round(start_seconds, 2),
        "per_text_ms": round(per_text_ms, 3),
    }


def main() -> None:
    if len(sys.argv) == 2:
        print(json.dumps(score(sys.argv[1])))
        return
    for name in _DETECTORS:
        result = subprocess.run([sys.executable, __file__, name], capture_output=True, text=True, check=False)
        print(result.stdout.strip() or result.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
