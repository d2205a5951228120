"""A small labelled sample of personal data in prompt-like text, for measuring PII detectors.

Each case is a text and the (kind, text) spans a detector should report: positives of every kind in the
spellings people use, and near-misses (checksums that fail, versions, dates, hashes, order numbers) that must be
left alone. `tests/unit/test_guardrails_checks.py` holds the built-in detector to all of it;
`tests/support/pii_library_comparison.py` scores libraries on the same cases.
"""

from __future__ import annotations

SAMPLE: list[tuple[str, list[tuple[str, str]]]] = [
    ("Please email jane.doe@example.com about the refund.", [("EMAIL", "jane.doe@example.com")]),
    ("cc: Bob <bob_smith+billing@mail.example.co.uk>", [("EMAIL", "bob_smith+billing@mail.example.co.uk")]),
    ("Contact: j.oneil@EXAMPLE.ORG.", [("EMAIL", "j.oneil@EXAMPLE.ORG")]),
    ("my card is 4111 1111 1111 1111, expiry 12/29", [("CARD", "4111 1111 1111 1111")]),
    ("charge 5555-5555-5555-4444 please", [("CARD", "5555-5555-5555-4444")]),
    ("amex 378282246310005 on file", [("CARD", "378282246310005")]),
    ("Visa test number 4012888888881881.", [("CARD", "4012888888881881")]),
    ("order number 4111 1111 1111 1112 shipped", []),  # fails Luhn
    ("tracking id 1234567890123456", []),
    ("invoice 9111111111111111", []),  # passes Luhn, no card network begins with 9
    ("Transfer to GB82 WEST 1234 5698 7654 32 today", [("IBAN", "GB82 WEST 1234 5698 7654 32")]),
    ("IBAN: DE89370400440532013000", [("IBAN", "DE89370400440532013000")]),
    ("FR1420041010050500013M02606 is the account", [("IBAN", "FR1420041010050500013M02606")]),
    ("GB82 WEST 1234 5698 7654 33 (typo)", []),  # checksum fails
    ("reference DE8937040044053201300", []),  # one character short
    ("the server at 10.20.30.40 answers", [("IP_ADDRESS", "10.20.30.40")]),
    ("client 2001:db8::1 connected", [("IP_ADDRESS", "2001:db8::1")]),
    ("upgrade from 1.2.3 to 10.0.19045", []),
    ("999.10.10.10 is not an address", []),
    ("Call me at +1 415 555 0132 tomorrow", [("PHONE", "+1 415 555 0132")]),
    ("office (212) 555-0147, ext 3", [("PHONE", "(212) 555-0147")]),
    ("mobile 415-555-0188", [("PHONE", "415-555-0188")]),
    ("UK: +44 20 7946 0958", [("PHONE", "+44 20 7946 0958")]),
    ("Ruf an: +49 151 12345678", [("PHONE", "+49 151 12345678")]),
    ("Paris 01 42 68 53 00", [("PHONE", "01 42 68 53 00")]),
    ("meeting on 2024-01-15 at 12:30", []),
    ("release 2024.10.21 shipped", []),
    ("commit 3f786850e387550fdab836ed7e6dc881de23001b", []),
    ("room 12-34, floor 5", []),
    ("total: 1,234,567.89 USD", []),
    ("ISBN 978-3-16-148410-0", []),
    (
        "Hi, I'm Ann (ann@example.net, +33 6 12 34 56 78); pay FR7630006000011234567890189 from 192.168.1.20.",
        [
            ("EMAIL", "ann@example.net"),
            ("PHONE", "+33 6 12 34 56 78"),
            ("IBAN", "FR7630006000011234567890189"),
            ("IP_ADDRESS", "192.168.1.20"),
        ],
    ),
]
