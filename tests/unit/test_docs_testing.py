"""docs/testing.md shows its examples exactly as the suite runs them: each code block that follows a
`<!-- PATH -->` marker is the file at PATH, so a change to either shows here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "testing.md"
EXAMPLE = re.compile(r"<!-- (\S+) -->\n```python\n(.*?)```", re.S)


def test_every_example_in_the_testing_page_is_the_test_file_it_names() -> None:
    examples = EXAMPLE.findall(DOC.read_text())
    assert {path for path, _ in examples} == {
        "tests/containers/test_docs_example.py",
        "tests/e2e/test_docs_local_example.py",
    }
    for path, code in examples:
        assert code == (ROOT / path).read_text(), f"docs/testing.md's example differs from {path}"


def test_the_container_example_is_a_users_file_of_about_ten_lines() -> None:
    (code,) = [code for path, code in EXAMPLE.findall(DOC.read_text()) if path.startswith("tests/containers/")]
    test_body = code[code.index("def test_") :].strip().splitlines()
    assert len(test_body) <= 10, test_body
