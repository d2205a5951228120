"""The committed golden Envoy config must match what the translation renders today.

A failure here means `controlplane/translate.py`, `attempt_rewrite.py`, a provider adapter or the Lua rewrite now
produces a different Envoy config for `examples/switchyard.yaml`. If that change is intended, regenerate the file and
review the diff like code; if it is not, the diff shows what broke.
"""

from __future__ import annotations

import difflib

import pytest

from controlplane.attempt_rewrite import REDACTED
from tests.support import golden


def test_golden_file_matches_the_current_translation() -> None:
    assert golden.GOLDEN.exists(), "tests/golden/envoy_config.yaml is missing: run `make golden` and commit it"
    committed = golden.GOLDEN.read_text(encoding="utf-8")
    rendered = golden.render_golden()
    if committed != rendered:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                fromfile="tests/golden/envoy_config.yaml (committed)",
                tofile="render_golden() (current code)",
                n=2,
            )
        )
        raise AssertionError(
            "The Envoy config translated from examples/switchyard.yaml changed.\n"
            "If the change is intended, run `make golden`, review the diff of tests/golden/envoy_config.yaml "
            "and commit it with your change; otherwise fix the translation.\n\n" + diff
        )


def test_golden_file_holds_no_secret() -> None:
    text = golden.render_golden()
    for secret in golden.FAKE_ENV.values():
        assert secret not in text
    # Every credential header is still listed, redacted, so the file shows *which* header each target sets.
    assert f"set.authorization: {REDACTED}" in text
    assert f"set.api-key: {REDACTED}" in text
    assert f"set.x-api-key: {REDACTED}" in text


def test_golden_check_exits_zero_when_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert golden.main([]) == 0
    assert "up to date" in capsys.readouterr().out
