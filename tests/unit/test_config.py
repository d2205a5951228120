"""The routing YAML: what it accepts, and for every mistake, the exact YAML path and line it reports.

An operator fixes a config from `switchyard validate` output alone, so each problem must point at the line
they wrote (including the `primary:`/`backup:` shorthand rather than its expansion) and say what is wrong.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from switchyard.cli.summary import summarize
from switchyard.config import (
    ConfigError,
    ConfigProblem,
    ProviderKind,
    Strategy,
    load_config,
    load_config_text,
)
from switchyard.config.model import DEFAULT_FALLBACK_CODES, Config

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "test.yaml"
KEY = "sk-test-key-0000"

# The smallest valid config. Cases below edit one line of it, so its line numbers stay valid:
#   1 providers: / 2 openai: / 3 kind / 4 base_url / 5 api_key / 6 routes: / 7 - model / 8 targets: / 9 - target
# and lines appended to it start at line 10, inside routes[0].
BASE = f"""\
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com
    api_key: {KEY}
routes:
  - model: gpt-4
    targets:
      - {{provider: openai, model: gpt-4o}}
"""
TARGET_LINE = "      - {provider: openai, model: gpt-4o}\n"
TARGETS_BLOCK = "    targets:\n" + TARGET_LINE


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, f"{old!r} is not in the base config"
    return text.replace(old, new, 1)


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, environ: Mapping[str, str] | None = None) -> Config:
    return load_config_text(text, source=SOURCE, environ={} if environ is None else environ)


def problems_of(text: str, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load(text, environ)
    assert caught.value.source == SOURCE
    return caught.value.problems


def the_problem(problems: list[ConfigProblem], path: str, fragment: str) -> ConfigProblem:
    """The one problem reported at `path` whose message contains `fragment`."""
    found = [p for p in problems if p.path == path and fragment in p.message]
    listing = "\n".join(f"  {p}" for p in problems)
    assert len(found) == 1, f"expected one problem at {path!r} mentioning {fragment!r}; got:\n{listing}"
    return found[0]


# --- every error, with its path and line -----------------------------------------------------------------

SEED_ROUTE = yaml(
    """
    providers:
      openai:
        kind: openai
        base_url: https://api.openai.com
        api_key: sk-test-key-0000
    routes:
      - model: chatgpt-4
        primary: {provider: nope, name: chatgpt-4, suffix: /v1/engines/gpt-4/completions}
        fallback_codes: [500, 502, 503]
        backup:  {provider: openai, name: gpt-3.5, suffix: engines/gpt-3.5}
    """
)

ERROR_CASES = [
    # unknown keys
    pytest.param("listn: 127.0.0.1:8080\n" + BASE, 1, "listn", "unknown key", id="unknown-top-level-key"),
    pytest.param(
        edit(f"    api_key: {KEY}\n", f"    api_key: {KEY}\n    organisation: acme\n"),
        6,
        "providers.openai.organisation",
        "unknown key 'organisation'",
        id="unknown-provider-key",
    ),
    pytest.param(
        BASE + "    fallback_code: [500]\n", 10, "routes[0].fallback_code", "unknown key", id="unknown-route-key-typo"
    ),
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, wieght: 2}"),
        9,
        "routes[0].targets[0].wieght",
        "unknown key",
        id="unknown-target-key",
    ),
    # enums
    pytest.param(
        edit("kind: openai", "kind: vertex"),
        3,
        "providers.openai.kind",
        "must be 'openai', 'azure_openai', 'openai_compatible', 'anthropic', 'gemini' or 'bedrock'",
        id="wrong-provider-kind",
    ),
    pytest.param(
        BASE + "    strategy: fastest\n",
        10,
        "routes[0].strategy",
        "must be 'priority', 'weighted', 'round_robin', 'lowest_cost' or 'least_latency'",
        id="wrong-strategy",
    ),
    # base_url
    pytest.param(
        edit("https://api.openai.com", "ftp://api.openai.com"),
        4,
        "providers.openai.base_url",
        "must be an http:// or https:// URL with a host, got 'ftp://api.openai.com'",
        id="base-url-scheme",
    ),
    pytest.param(
        edit("https://api.openai.com", "api.openai.com"),
        4,
        "providers.openai.base_url",
        "must be an http:// or https:// URL",
        id="base-url-no-scheme",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://"),
        4,
        "providers.openai.base_url",
        "with a host",
        id="base-url-no-host",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://api.openai.com/v1?api-version=1"),
        4,
        "providers.openai.base_url",
        "must not have a query or fragment",
        id="base-url-query",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://api.openai.com/#v1"),
        4,
        "providers.openai.base_url",
        "must not have a query or fragment",
        id="base-url-fragment",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://api.openai.com:99999"),
        4,
        "providers.openai.base_url",
        "has an invalid port",
        id="base-url-port-out-of-range",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://api.openai.com:https"),
        4,
        "providers.openai.base_url",
        "has an invalid port",
        id="base-url-port-not-a-number",
    ),
    # environment variables
    pytest.param(
        edit(KEY, "${OPENAI_API_KEY}"),
        5,
        "providers.openai.api_key",
        "environment variable OPENAI_API_KEY is not set",
        id="missing-env-var",
    ),
    pytest.param(
        "listen: 127.0.0.1:${SWITCHYARD_PORT}\n" + BASE,
        1,
        "listen",
        "environment variable SWITCHYARD_PORT is not set",
        id="missing-env-var-in-listen",
    ),
    pytest.param(
        edit("https://api.openai.com", "https://${HOST_A:-api.openai.com}/${PREFIX}"),
        4,
        "providers.openai.base_url",
        "environment variable PREFIX is not set",
        id="missing-env-var-next-to-a-defaulted-one",
    ),
    # cross references
    pytest.param(
        edit("{provider: openai,", "{provider: opena,"),
        9,
        "routes[0].targets[0].provider",
        "unknown provider 'opena' (known: openai)",
        id="unknown-provider-in-target",
    ),
    pytest.param(
        SEED_ROUTE.replace("engines/gpt-3.5}", "/v1/engines/gpt-3.5/completions}"),
        8,
        "routes[0].primary.provider",
        "unknown provider 'nope' (known: openai)",
        id="unknown-provider-in-primary",
    ),
    pytest.param(
        SEED_ROUTE.replace("provider: nope", "provider: openai")
        .replace("provider: openai, name: gpt-3.5", "provider: azure, name: gpt-3.5")
        .replace("engines/gpt-3.5}", "/v1/engines/gpt-3.5/completions}"),
        10,
        "routes[0].backup.provider",
        "unknown provider 'azure' (known: openai)",
        id="unknown-provider-in-backup",
    ),
    # uniqueness
    pytest.param(
        BASE + "  - model: gpt-4\n    targets:\n      - {provider: openai, model: gpt-4.1}\n",
        10,
        "routes[1].model",
        "duplicate route for model 'gpt-4' (first at routes[0])",
        id="duplicate-route-model",
    ),
    pytest.param(
        BASE + TARGET_LINE,
        10,
        "routes[0].targets[1].name",
        "duplicate target name 'openai/gpt-4o' in this route",
        id="duplicate-default-target-name",
    ),
    pytest.param(
        edit(
            TARGET_LINE,
            "      - {name: a, provider: openai, model: gpt-4o}\n      - {name: a, provider: openai, model: x}\n",
        ),
        10,
        "routes[0].targets[1].name",
        "duplicate target name 'a'",
        id="duplicate-explicit-target-name",
    ),
    pytest.param(
        edit("    kind: openai\n", "    kind: openai\n    kind: azure_openai\n"),
        4,
        "providers.openai.kind",
        "duplicate key (YAML would silently keep only the last one)",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        BASE + "routes: []\n",
        10,
        "routes",
        "duplicate key",
        id="duplicate-top-level-yaml-key",
    ),
    # fallback codes
    pytest.param(
        BASE + "    fallback_codes: [502, 399]\n",
        10,
        "routes[0].fallback_codes[1]",
        "must be greater than or equal to 400 (got 399)",
        id="fallback-code-below-400",
    ),
    pytest.param(
        BASE + "    fallback_codes: [600]\n",
        10,
        "routes[0].fallback_codes[0]",
        "must be less than or equal to 599 (got 600)",
        id="fallback-code-above-599",
    ),
    pytest.param(
        BASE + "    fallback_codes: [500, 502, 500]\n",
        10,
        "routes[0].fallback_codes",
        "lists a status code more than once",
        id="fallback-code-duplicated",
    ),
    pytest.param(
        BASE + "    fallback_codes: [server_error]\n",
        10,
        "routes[0].fallback_codes[0]",
        "must be a whole number",
        id="fallback-code-not-a-number",
    ),
    # durations
    pytest.param(
        BASE + "    timeout: 30 sec\n",
        10,
        "routes[0].timeout",
        "expected a duration like 30s or 500ms, got '30 sec'",
        id="timeout-bad-unit",
    ),
    pytest.param(BASE + "    timeout: 0\n", 10, "routes[0].timeout", "must be at least 1ms", id="timeout-zero"),
    pytest.param(
        BASE + "    timeout: -5s\n", 10, "routes[0].timeout", "expected a duration", id="timeout-negative-string"
    ),
    pytest.param(BASE + "    timeout: -1\n", 10, "routes[0].timeout", "must be at least 1ms", id="timeout-negative"),
    pytest.param(BASE + "    timeout: yes\n", 10, "routes[0].timeout", "expected a duration", id="timeout-boolean"),
    # sizes
    pytest.param(
        "max_request_body: 8 megs\n" + BASE,
        1,
        "max_request_body",
        "expected a size like 10MiB or 1048576, got '8 megs'",
        id="size-bad-unit",
    ),
    pytest.param("max_request_body: 0\n" + BASE, 1, "max_request_body", "must be greater than 0", id="size-zero"),
    pytest.param("max_request_body: 1.5\n" + BASE, 1, "max_request_body", "expected a size", id="size-fraction"),
    pytest.param("max_request_body: true\n" + BASE, 1, "max_request_body", "expected a size", id="size-boolean"),
    # weight / priority bounds
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, weight: 0}"),
        9,
        "routes[0].targets[0].weight",
        "must be greater than or equal to 1 (got 0)",
        id="weight-zero",
    ),
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, weight: 1001}"),
        9,
        "routes[0].targets[0].weight",
        "must be less than or equal to 1000 (got 1001)",
        id="weight-above-1000",
    ),
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, weight: heavy}"),
        9,
        "routes[0].targets[0].weight",
        "must be a whole number",
        id="weight-not-a-number",
    ),
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, priority: -1}"),
        9,
        "routes[0].targets[0].priority",
        "must be greater than or equal to 0 (got -1)",
        id="priority-negative",
    ),
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, priority: 128}"),
        9,
        "routes[0].targets[0].priority",
        "must be less than or equal to 127 (got 128)",
        id="priority-above-127",
    ),
    # suffix
    pytest.param(
        edit("model: gpt-4o}", "model: gpt-4o, suffix: v1/chat/completions}"),
        9,
        "routes[0].targets[0].suffix",
        "must start with '/', got 'v1/chat/completions'",
        id="target-suffix-without-slash",
    ),
    pytest.param(
        SEED_ROUTE.replace("provider: nope", "provider: openai"),
        10,
        "routes[0].backup.suffix",
        "must start with '/', got 'engines/gpt-3.5'",
        id="backup-suffix-without-slash",
    ),
    pytest.param(
        SEED_ROUTE.replace("provider: nope", "provider: openai").replace(
            "suffix: /v1/engines/gpt-4/completions", "suffix: x"
        ),
        8,
        "routes[0].primary.suffix",
        "must start with '/', got 'x'",
        id="primary-suffix-without-slash",
    ),
    # route shapes
    pytest.param(
        BASE + "    primary: {provider: openai, name: gpt-4o}\n",
        7,
        "routes[0]",
        "use either `targets` or `primary`/`backup`, not both",
        id="targets-with-primary",
    ),
    pytest.param(
        edit(TARGETS_BLOCK, "    backup: {provider: openai, name: gpt-4o}\n"),
        7,
        "routes[0]",
        "`backup` needs a `primary`",
        id="backup-without-primary",
    ),
    pytest.param(
        edit(TARGETS_BLOCK, "    timeout: 10s\n"),
        7,
        "routes[0]",
        "needs `targets` (or the `primary`/`backup` shorthand)",
        id="no-targets",
    ),
    pytest.param(
        edit(TARGETS_BLOCK, "    targets: []\n"),
        7,
        "routes[0]",
        "needs `targets`",
        id="empty-targets",
    ),
    pytest.param(BASE.split("routes:")[0] + "routes: []\n", 6, "routes", "needs at least one route", id="empty-routes"),
    pytest.param(
        edit("  - model: gpt-4\n", "  - model: ''\n"), 7, "routes[0].model", "must not be empty", id="empty-model"
    ),
    pytest.param(
        edit("{provider: openai,", "{name: '', provider: openai,"),
        9,
        "routes[0].targets[0].name",
        "must not be empty",
        id="empty-target-name",
    ),
    pytest.param(
        BASE.split("routes:")[0] + "routes:\n  - gpt-4\n",
        7,
        "routes[0]",
        "must be a mapping",
        id="route-not-a-mapping",
    ),
    # required keys
    pytest.param(BASE.split("routes:")[0], 1, "routes", "required key is missing", id="routes-missing"),
    pytest.param(
        "routes:" + BASE.split("routes:")[1], 1, "providers", "required key is missing", id="providers-missing"
    ),
    pytest.param(
        "providers:\n  - openai\n" + "routes:" + BASE.split("routes:")[1],
        1,
        "providers",
        "must be a mapping",
        id="providers-not-a-mapping",
    ),
    pytest.param(
        edit("    kind: openai\n", ""), 2, "providers.openai.kind", "required key is missing", id="kind-missing"
    ),
    pytest.param(
        edit("    base_url: https://api.openai.com\n", ""),
        2,
        "providers.openai.base_url",
        "required key is missing",
        id="base-url-missing",
    ),
    pytest.param(
        edit(", model: gpt-4o}", "}"), 9, "routes[0].targets[0].model", "required key is missing", id="model-missing"
    ),
    # provider-kind rules
    pytest.param(
        edit(f"    api_key: {KEY}\n", ""),
        2,
        "providers.openai.api_key",
        "openai providers need a key",
        id="api-key-missing-openai",
    ),
    pytest.param(
        edit(f"    api_key: {KEY}\n", "").replace("kind: openai", "kind: azure_openai"),
        2,
        "providers.openai.api_key",
        "azure_openai providers need a key",
        id="api-key-missing-azure",
    ),
    pytest.param(
        edit(f"    api_key: {KEY}\n", "").replace("kind: openai", "kind: gemini"),
        2,
        "providers.openai.api_key",
        "gemini providers need a key (e.g. ${GEMINI_API_KEY})",
        id="api-key-missing-gemini",
    ),
    pytest.param(
        edit(f"    api_key: {KEY}\n", f"    api_key: {KEY}\n    api_version: 2024-10-21\n"),
        6,
        "providers.openai.api_version",
        "only azure_openai and anthropic providers take api_version",
        id="api-version-on-openai",
    ),
    pytest.param(
        edit(f"    api_key: {KEY}\n", "    api_version: '2024-10-21'\n").replace(
            "kind: openai", "kind: openai_compatible"
        ),
        5,
        "providers.openai.api_version",
        "only azure_openai and anthropic providers take api_version",
        id="api-version-on-openai-compatible",
    ),
    # YAML itself
    pytest.param(edit("kind: openai", "kind: [openai"), 4, "", "invalid YAML", id="unclosed-flow-sequence"),
    pytest.param(edit("    kind: openai\n", "    kind: openai\n   base: x\n"), 4, "", "invalid YAML", id="bad-indent"),
    pytest.param("", 1, "", "the file is empty", id="empty-file"),
    pytest.param("# just a comment\n\n", 1, "", "the file is empty", id="comment-only-file"),
    pytest.param("- providers\n- routes\n", 1, "", "the top level must be a mapping", id="top-level-list"),
    pytest.param("switchyard\n", 1, "", "the top level must be a mapping", id="top-level-scalar"),
    # listen
    pytest.param("listen: localhost\n" + BASE, 1, "listen", "expected HOST:PORT", id="listen-without-port"),
    pytest.param(
        "listen: 8080\n" + BASE,
        1,
        "listen",
        "expected HOST:PORT such as 127.0.0.1:8080, got 8080",
        id="listen-port-only",
    ),
    pytest.param("listen: ':8080'\n" + BASE, 1, "listen", "expected HOST:PORT", id="listen-without-host"),
    pytest.param("listen: localhost:0\n" + BASE, 1, "listen", "expected HOST:PORT", id="listen-port-zero"),
    pytest.param("listen: localhost:65536\n" + BASE, 1, "listen", "expected HOST:PORT", id="listen-port-too-big"),
    pytest.param("listen: localhost:http\n" + BASE, 1, "listen", "expected HOST:PORT", id="listen-port-not-a-number"),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), ERROR_CASES)
def test_each_mistake_is_reported_at_its_path_and_line(text: str, line: int, path: str, fragment: str) -> None:
    problem = the_problem(problems_of(text), path, fragment)
    assert problem.line == line, f"{path}: reported at line {problem.line}, expected {line}"


def test_every_problem_message_is_rendered_with_source_line_and_path() -> None:
    text = edit("https://api.openai.com", "https://x.example/?q=1").replace("kind: openai", "kind: vertex")
    with pytest.raises(ConfigError) as caught:
        load(text)
    error = caught.value
    assert error.render() == (
        "test.yaml: 2 problems\n"
        "  test.yaml:3: providers.openai.kind: "
        "must be 'openai', 'azure_openai', 'openai_compatible', 'anthropic', 'gemini' or 'bedrock'\n"
        "  test.yaml:4: providers.openai.base_url: must not have a query or fragment"
    )
    assert str(error) == error.render()


def test_a_single_problem_is_rendered_in_the_singular() -> None:
    with pytest.raises(ConfigError) as caught:
        load(edit(KEY, "${OPENAI_API_KEY}"))
    error = caught.value
    assert error.render() == (
        "test.yaml: 1 problem\n  test.yaml:5: providers.openai.api_key: environment variable OPENAI_API_KEY is not set "
        "(export it, or write ${OPENAI_API_KEY:-default})"
    )


def test_invalid_yaml_is_the_only_problem_reported() -> None:
    (problem,) = problems_of(edit("    kind: openai\n", "    kind: openai\n\tbase: x\n"))
    assert problem == ConfigProblem(4, "", "invalid YAML: found character '\\t' that cannot start any token")


def test_unclosed_quote_points_at_the_line_where_it_opens() -> None:
    text = yaml(
        """
        providers:
          openai:
            kind: openai
            base_url: "https://api.openai.com
        routes: []
        """
    )
    (problem,) = problems_of(text)
    assert problem.path == ""
    assert problem.message.startswith("invalid YAML: ")
    assert problem.line == 4


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, environ={})
    (problem,) = caught.value.problems
    assert problem == ConfigProblem(None, "", "cannot read the file: No such file or directory")
    assert (
        caught.value.render() == f"{missing}: 1 problem\n  {missing}: cannot read the file: No such file or directory"
    )


def test_load_config_reads_a_file_and_names_it_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(edit("kind: openai", "kind: vertex"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.source == str(path)
    assert f"{path}:3: providers.openai.kind:" in caught.value.render()
    path.write_text(BASE, encoding="utf-8")
    assert load_config(path, environ={}).routes[0].model == "gpt-4"


def test_all_problems_in_a_file_are_reported_at_once() -> None:
    text = yaml(
        """
        listen: localhost
        max_request_body: 8 megs
        providers:
          openai:
            kind: openai
            kind: openai
            base_url: ftp://api.openai.com
            api_key: ${OPENAI_API_KEY}
            organisation: acme
          azure:
            kind: azure
            base_url: https://x.openai.azure.com
            api_key: k
        routes:
          - model: gpt-4
            timeout: soon
            fallback_codes: [500, 500]
            targets:
              - {provider: openai, model: gpt-4o, weight: 0, suffix: chat}
        """
    )
    problems = problems_of(text)
    reported = {(p.line, p.path) for p in problems}
    expected = {
        (1, "listen"),
        (2, "max_request_body"),
        (6, "providers.openai.kind"),  # the duplicate
        (7, "providers.openai.base_url"),
        (8, "providers.openai.api_key"),  # env var
        (9, "providers.openai.organisation"),
        (11, "providers.azure.kind"),
        (16, "routes[0].timeout"),
        (17, "routes[0].fallback_codes"),
        (19, "routes[0].targets[0].weight"),
        (19, "routes[0].targets[0].suffix"),
    }
    assert expected <= reported, f"missing: {expected - reported}"
    assert [p.line or 0 for p in problems] == sorted(p.line or 0 for p in problems), "problems are sorted by line"


def test_all_cross_reference_problems_are_reported_at_once() -> None:
    text = yaml(
        """
        providers:
          openai:
            kind: openai
            base_url: https://api.openai.com
            api_version: 2024-10-21
          azure:
            kind: azure_openai
            base_url: https://x.openai.azure.com
        routes:
          - model: gpt-4
            targets:
              - {provider: opnai, model: gpt-4o}
              - {provider: openai, model: gpt-4o}
              - {provider: openai, model: gpt-4o}
          - model: gpt-4
            primary: {provider: azur, name: dep}
        """
    )
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [
        (2, "providers.openai.api_key"),  # a missing key points at the line naming its provider
        (5, "providers.openai.api_version"),
        (6, "providers.azure.api_key"),
        (12, "routes[0].targets[0].provider"),
        (14, "routes[0].targets[2].name"),
        (15, "routes[1].model"),
        (16, "routes[1].primary.provider"),
    ]
    assert "(known: azure, openai)" in problems[3].message


def test_cross_reference_problems_are_reported_together_with_shape_problems() -> None:
    text = edit("{provider: openai,", "{provider: opena,", edit("kind: openai", "kind: vertex"))
    problems = problems_of(text)
    the_problem(problems, "providers.openai.kind", "must be")
    the_problem(problems, "routes[0].targets[0].provider", "unknown provider")


def test_one_mistake_in_a_route_is_one_problem() -> None:
    problems = problems_of(edit("model: gpt-4o}", "model: gpt-4o, weight: 0}"))
    assert [(p.line, p.path) for p in problems] == [(9, "routes[0].targets[0].weight")]


def test_provider_name_that_looks_like_a_type_name_keeps_its_path() -> None:
    text = edit("  openai:\n", "  int:\n").replace("kind: openai", "kind: vertex")
    problem = the_problem(problems_of(text), "providers.int.kind", "must be")
    assert problem.line == 3


def test_unknown_key_with_a_block_value_points_at_the_key() -> None:
    text = "limits:\n  max_body: 1MiB\n" + BASE
    assert the_problem(problems_of(text), "limits", "unknown key").line == 1


def test_max_request_body_beyond_what_envoy_accepts_is_a_config_error() -> None:
    the_problem(problems_of("max_request_body: 5GiB\n" + BASE), "max_request_body", "")


@pytest.mark.parametrize("kind", ["openai", "azure_openai"])
@pytest.mark.parametrize("value", ["${OPENAI_API_KEY}", "${OPENAI_API_KEY:-}", "''"])
def test_empty_api_key_counts_as_missing(kind: str, value: str) -> None:
    text = edit(KEY, value).replace("kind: openai", f"kind: {kind}")
    problem = the_problem(problems_of(text, environ={"OPENAI_API_KEY": ""}), "providers.openai.api_key", "")
    assert problem.line == 5


# --- what the loader accepts -----------------------------------------------------------------------------


def test_defaults() -> None:
    config = load(BASE)
    assert config.listen == "127.0.0.1:8080"
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8080)
    assert config.max_request_body == 8 * 1024 * 1024
    provider = config.providers["openai"]
    assert provider.kind is ProviderKind.OPENAI
    assert provider.api_version is None
    (route,) = config.routes
    assert route.strategy is Strategy.PRIORITY
    assert route.fallback_codes == DEFAULT_FALLBACK_CODES == (429, 500, 502, 503, 504, 529)
    assert route.timeout == 30.0
    (target,) = route.targets
    assert (target.weight, target.priority, target.suffix, target.name) == (1, None, None, None)


def test_seed_vocabulary_expands_to_primary_and_backup_targets() -> None:
    text = SEED_ROUTE.replace("provider: nope", "provider: openai").replace(
        "engines/gpt-3.5}", "/v1/engines/gpt-3.5/completions}"
    )
    (route,) = load(text).routes
    assert route.fallback_codes == (500, 502, 503)
    assert [(t.name, t.provider, t.model, t.suffix, t.priority) for t in route.targets] == [
        ("primary", "openai", "chatgpt-4", "/v1/engines/gpt-4/completions", 0),
        ("backup", "openai", "gpt-3.5", "/v1/engines/gpt-3.5/completions", 1),
    ]
    assert [t.display_name for t in route.targets] == ["primary", "backup"]


def test_primary_alone_is_a_single_target_route() -> None:
    (route,) = load(edit(TARGETS_BLOCK, "    primary: {provider: openai, name: gpt-4o}\n")).routes
    assert [(t.name, t.model, t.priority) for t in route.targets] == [("primary", "gpt-4o", 0)]


def test_default_target_name_is_provider_slash_model() -> None:
    text = edit(TARGET_LINE, TARGET_LINE + "      - {name: spare, provider: openai, model: gpt-4o-mini}\n")
    (route,) = load(text).routes
    assert [t.display_name for t in route.targets] == ["openai/gpt-4o", "spare"]


def test_unquoted_api_version_date_is_kept_as_text() -> None:
    text = edit(f"    api_key: {KEY}\n", f"    api_key: {KEY}\n    api_version: 2024-10-21\n").replace(
        "kind: openai", "kind: azure_openai"
    )
    provider = load(text).providers["openai"]
    assert provider.kind is ProviderKind.AZURE_OPENAI
    assert provider.api_version == "2024-10-21"
    assert isinstance(provider.api_version, str)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5", 1.5), ("45", 45.0), ("0.25s", 0.25)],
)
def test_durations(value: str, seconds: float) -> None:
    assert load(BASE + f"    timeout: {value}\n").routes[0].timeout == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "size"),
    [("8MiB", 8 * 1024**2), ("1MB", 1_000_000), ("1024", 1024), ("64KiB", 65536), ("2kb", 2000), ("1GiB", 1024**3)],
)
def test_sizes(value: str, size: int) -> None:
    assert load(f"max_request_body: {value}\n" + BASE).max_request_body == size


def test_fallback_codes_are_kept_sorted() -> None:
    assert load(BASE + "    fallback_codes: [503, 429]\n").routes[0].fallback_codes == (429, 503)


def test_base_url_trailing_slash_is_dropped_and_url_parts_are_exposed() -> None:
    text = edit("https://api.openai.com", "http://127.0.0.1:11434/v1/").replace(
        "kind: openai", "kind: openai_compatible"
    )
    provider = load(text).providers["openai"]
    assert provider.base_url == "http://127.0.0.1:11434/v1"
    assert (provider.scheme, provider.host, provider.port) == ("http", "127.0.0.1", 11434)
    assert provider.authority == "127.0.0.1:11434"
    assert provider.path_prefix == "/v1"
    assert provider.uses_tls is False
    https = load(BASE).providers["openai"]
    assert (https.port, https.authority, https.uses_tls, https.path_prefix) == (443, "api.openai.com", True, "")


def test_openai_compatible_needs_no_api_key() -> None:
    text = edit(f"    api_key: {KEY}\n", "").replace("kind: openai", "kind: openai_compatible")
    assert load(text).providers["openai"].api_key is None


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("0.0.0.0:9000", "0.0.0.0", 9000),
        ("localhost:8080", "localhost", 8080),
        ("'[::1]:8443'", "::1", 8443),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
    ],
)
def test_listen_address_forms(listen: str, host: str, port: int) -> None:
    config = load(f"listen: {listen}\n" + BASE)
    assert (config.listen_host, config.listen_port) == (host, port)


def test_env_vars_are_substituted_with_defaults() -> None:
    text = "listen: 127.0.0.1:${PORT:-8081}\n" + edit(KEY, "${OPENAI_API_KEY}").replace(
        "https://api.openai.com", "https://${HOST:-api.openai.com}${PREFIX:-}"
    )
    config = load(text, environ={"OPENAI_API_KEY": "sk-from-env"})
    assert config.listen == "127.0.0.1:8081"
    provider = config.providers["openai"]
    assert provider.base_url == "https://api.openai.com"
    assert provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-from-env"
    # A set variable wins over the default.
    config = load(text, environ={"OPENAI_API_KEY": "k", "PORT": "9999", "HOST": "proxy.local", "PREFIX": "/openai"})
    assert config.listen_port == 9999
    assert config.providers["openai"].base_url == "https://proxy.local/openai"


def test_env_vars_feed_numeric_fields() -> None:
    text = edit("model: gpt-4o}", "model: gpt-4o, weight: '${W}'}") + "    timeout: ${T:-750ms}\n"
    (route,) = load(text, environ={"W": "4"}).routes
    assert route.targets[0].weight == 4
    assert route.timeout == 0.75


def test_process_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_TEST_KEY", "sk-process-env")
    config = load_config_text(edit(KEY, "${SWITCHYARD_TEST_KEY}"))
    key = config.providers["openai"].api_key
    assert key is not None and key.get_secret_value() == "sk-process-env"


def test_the_examples_load() -> None:
    env = {
        "OPENAI_API_KEY": "sk-a",
        "AZURE_OPENAI_KEY": "az-b",
        "ANTHROPIC_API_KEY": "sk-ant-c",
        "GEMINI_API_KEY": "g-d",
        "AWS_ACCESS_KEY_ID": "AKIDE",
        "AWS_SECRET_ACCESS_KEY": "aws-f",
    }
    config = load_config(ROOT / "examples" / "switchyard.yaml", environ=env)
    routes = ["gpt-4", "gpt-4o-ab", "chatgpt-4", "assistant", "fast-chat", "resilient", "reasoning"]
    assert [r.model for r in config.routes] == routes
    assert {n: p.kind for n, p in config.providers.items()} == {
        "openai": ProviderKind.OPENAI,
        "azure": ProviderKind.AZURE_OPENAI,
        "local": ProviderKind.OPENAI_COMPATIBLE,
        "anthropic": ProviderKind.ANTHROPIC,
        "gemini": ProviderKind.GEMINI,
        "bedrock": ProviderKind.BEDROCK,
    }
    resilient = [config.provider_of(t).kind for t in config.routes[5].targets]
    assert resilient == [ProviderKind.OPENAI, ProviderKind.ANTHROPIC, ProviderKind.BEDROCK, ProviderKind.GEMINI]
    assert config.providers["bedrock"].session_token is None, "${AWS_SESSION_TOKEN:-} unset: no token"
    assert config.providers["azure"].api_version == "2024-10-21"
    assert [t.display_name for t in config.routes[0].targets] == ["primary", "azure-gpt-4o", "local/llama3.1:8b"]
    assert [t.display_name for t in config.routes[2].targets] == ["primary", "backup"]
    demo = load_config(ROOT / "examples" / "demo.yaml", environ={})
    assert demo.listen == "127.0.0.1:8080"
    assert demo.providers["openai"].base_url == "http://127.0.0.1:18081"


def test_the_reference_example_names_every_missing_key() -> None:
    path = ROOT / "examples" / "switchyard.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert [(p.line, p.path, p.message) for p in caught.value.problems] == [
        (
            lines.index("    api_key: ${OPENAI_API_KEY}") + 1,
            "providers.openai.api_key",
            "environment variable OPENAI_API_KEY is not set (export it, or write ${OPENAI_API_KEY:-default})",
        ),
        (
            lines.index("    api_key: ${AZURE_OPENAI_KEY}") + 1,
            "providers.azure.api_key",
            "environment variable AZURE_OPENAI_KEY is not set (export it, or write ${AZURE_OPENAI_KEY:-default})",
        ),
        (
            lines.index("    api_key: ${ANTHROPIC_API_KEY}") + 1,
            "providers.anthropic.api_key",
            "environment variable ANTHROPIC_API_KEY is not set (export it, or write ${ANTHROPIC_API_KEY:-default})",
        ),
        (
            lines.index("    api_key: ${GEMINI_API_KEY}") + 1,
            "providers.gemini.api_key",
            "environment variable GEMINI_API_KEY is not set (export it, or write ${GEMINI_API_KEY:-default})",
        ),
        (
            lines.index("    access_key_id: ${AWS_ACCESS_KEY_ID}") + 1,
            "providers.bedrock.access_key_id",
            "environment variable AWS_ACCESS_KEY_ID is not set (export it, or write ${AWS_ACCESS_KEY_ID:-default})",
        ),
        (
            lines.index("    secret_access_key: ${AWS_SECRET_ACCESS_KEY}") + 1,
            "providers.bedrock.secret_access_key",
            "environment variable AWS_SECRET_ACCESS_KEY is not set "
            "(export it, or write ${AWS_SECRET_ACCESS_KEY:-default})",
        ),
    ]


# --- secrets ---------------------------------------------------------------------------------------------

SECRET_ENV = "sk-live-from-env-5bd1f0"
SECRET_LITERAL = "sk-live-literal-93ac27"


def test_api_keys_never_appear_in_config_error_output() -> None:
    text = yaml(
        f"""
        listen: nowhere
        providers:
          openai:
            kind: openai
            base_url: https://api.openai.com/?key={SECRET_LITERAL}
            api_key: {SECRET_LITERAL}
            api_key: ${{OPENAI_API_KEY}}
            api_kee: {SECRET_LITERAL}
          azure:
            kind: azure_openai
            base_url: https://x.openai.azure.com
            api_key: ${{AZURE_KEY}}
            api_version: 2024-10-21
        routes:
          - model: gpt-4
            targets:
              - {{provider: openai, model: gpt-4o, weight: 0}}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load(text, {"OPENAI_API_KEY": SECRET_ENV, "AZURE_KEY": SECRET_ENV})
    error = caught.value
    rendered = error.render()
    assert len(error.problems) >= 4
    assert SECRET_ENV not in rendered
    # The base_url message does not echo the URL (which could carry a key in its query).
    assert SECRET_LITERAL not in rendered


@pytest.mark.parametrize("value", ["7301498526031", "[sk-live-in-a-list-3f1e]", "{key: sk-live-in-a-map-77d2}"])
def test_a_wrongly_typed_api_key_is_not_echoed(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(edit(KEY, value))
    error = caught.value
    the_problem(error.problems, "providers.openai.api_key", "must be a valid string")
    assert re.sub(r"[\[\]{}]|key: ", "", value) not in error.render()


def test_api_keys_never_appear_in_summary_or_repr() -> None:
    text = edit(KEY, "${OPENAI_API_KEY}") + "  - model: other\n    primary: {provider: az, name: dep}\n"
    text = text.replace(
        "routes:\n",
        f"  az:\n    kind: azure_openai\n    base_url: https://x.openai.azure.com\n    api_key: {SECRET_LITERAL}\n"
        "routes:\n",
    )
    config = load(text, environ={"OPENAI_API_KEY": SECRET_ENV})
    summary = summarize(config, "routes.yaml")
    for secret in (SECRET_ENV, SECRET_LITERAL):
        assert secret not in summary
        assert secret not in repr(config)
        assert secret not in str(config)
        assert secret not in repr(config.providers)
        assert secret not in config.model_dump_json()
    assert summary.startswith("routes.yaml: OK — 2 route(s), 2 target(s); clients connect to 127.0.0.1:8080")
    assert "(key set" in summary
    # ... while the key itself is intact for the per-attempt rewrite.
    key = config.providers["az"].api_key
    assert key is not None and key.get_secret_value() == SECRET_LITERAL


def test_summary_says_when_a_provider_has_no_key() -> None:
    text = edit(f"    api_key: {KEY}\n", "").replace("kind: openai", "kind: openai_compatible")
    assert "(no key)" in summarize(load(text), "x.yaml")


BEDROCK = """\
providers:
  br:
    kind: bedrock
    region: us-east-1
    access_key_id: ${AWS_KEY_ID}
    secret_access_key: ${AWS_SECRET}
routes:
  - model: m
    targets: [{provider: br, model: "anthropic.claude-3-haiku-20240307-v1:0"}]
"""


def test_bedrock_takes_region_and_credentials_and_derives_its_url() -> None:
    config = load(BEDROCK, {"AWS_KEY_ID": "AKIDCONFIG", "AWS_SECRET": "bedrock-secret-config"})
    provider = config.providers["br"]
    assert (
        provider.kind is ProviderKind.BEDROCK and provider.base_url == "https://bedrock-runtime.us-east-1.amazonaws.com"
    )
    assert provider.secret_access_key is not None and "bedrock-secret-config" not in repr(provider)
    vpc = load(
        BEDROCK.replace("region: us-east-1\n", "region: us-east-1\n    base_url: https://vpce-1.example\n"),
        {"AWS_KEY_ID": "a", "AWS_SECRET": "s"},
    )
    assert vpc.providers["br"].base_url == "https://vpce-1.example"


@pytest.mark.parametrize(
    ("text", "line", "path", "fragment"),
    [
        (
            BEDROCK.replace("    region: us-east-1\n", ""),
            2,
            "providers.br.region",
            "is missing: bedrock providers need it",
        ),
        (BEDROCK.replace("region: us-east-1", "region: 'us east'"), 4, "providers.br.region", "should match pattern"),
        (BEDROCK, 6, "providers.br.secret_access_key", "variable AWS_SECRET"),
        (
            BEDROCK.replace("    region", "    api_key: k\n    region"),
            4,
            "providers.br.api_key",
            "sign with access_key_id",
        ),
        (
            edit(f"    api_key: {KEY}\n", f"    api_key: {KEY}\n    region: us-east-1\n"),
            6,
            "providers.openai.region",
            "only bedrock",
        ),
    ],
)
def test_bedrock_mistakes_are_reported_at_their_path_and_line(text: str, line: int, path: str, fragment: str) -> None:
    problem = the_problem(problems_of(text, {"AWS_KEY_ID": "AKIDCONFIG"}), path, fragment)
    assert problem.line == line


def test_bedrock_credentials_are_never_echoed_in_errors() -> None:
    text = BEDROCK.replace("${AWS_SECRET}", "[not, a, string]")
    rendered = ConfigError(SOURCE, problems_of(text, {"AWS_KEY_ID": "AKIDCONFIG"})).render()
    assert "not, a, string" not in rendered and "'not'" not in rendered
