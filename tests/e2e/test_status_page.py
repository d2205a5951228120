"""The live status page (GET / of the status API) in a real browser: Debian's headless Chromium driven by
Playwright, against the whole stack (control plane, Envoy, ext_proc) with a mock provider behind it.

It reads the page as a person would: the routes and targets it lists, the state it shows for each, and, after
the mock starts failing one target, the page changing that target to "ejected" by itself; names with markup
shown as text, a rejected reload, and a control plane gone away (against a lone control plane). A screenshot of the
end state is kept under $SWITCHYARD_TEST_ARTIFACTS (default tests/artifacts/). With
SWITCHYARD_DOCS_SCREENSHOT=docs/status-page.png (`make screenshot`) it runs traffic for longer first and writes
the README's picture there too.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, SwitchyardProcess, running_stack

CHROMIUM = Path(os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium"))
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)",
    ),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SWITCHYARD_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
DOCS_SCREENSHOT = os.environ.get("SWITCHYARD_DOCS_SCREENSHOT", "")
# Chromium without the things a test machine must not do: no sandbox (root in a container), no GPU, no
# talking to Google (sync, component updates, background fetches), no QUIC, and no host name resolving to
# anything but 127.0.0.1 (the page is loaded from there); Playwright adds --headless and more of the same.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1440, "height": 900}
PAGE_DEADLINE_MS = 30_000  # generous: the machine is shared and the chain is attempt → log → control plane → poll
ROUTES = {
    "chat": ["primary", "backup"],
    "fast": ["east", "west"],
    "ab-test": ["big", "small"],
}
# Names with markup in them: the page must show them as text, never make elements (or run script) of them.
MARKUP_ROUTE = '<img src=x onerror="window.injected=1">lonely'
MARKUP_TARGET = '<b id="injected">bold</b> & "friends"'
LATENCY_RULES = [
    {"match": {"model": "chat-primary"}, "latency_ms": 40},
    {"match": {"model": "chat-backup"}, "latency_ms": 15},
    {"match": {"model": "fast-east"}, "latency_ms": 5},
    {"match": {"model": "fast-west"}, "latency_ms": 25},
    {"match": {"model": "ab-big"}, "latency_ms": 60},
    {"match": {"model": "ab-small"}, "latency_ms": 10},
]


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-status-page}}
routes:
  - model: chat
    health: {{consecutive_failures: 3, ejection_time: 5m}}
    targets:
      - {{name: primary, provider: p, model: chat-primary}}
      - {{name: backup, provider: p, model: chat-backup}}
  - model: fast
    strategy: least_latency
    latency: {{warmup: 3, exploration: 10%}}
    targets:
      - {{name: east, provider: p, model: fast-east}}
      - {{name: west, provider: p, model: fast-west}}
  - model: ab-test
    strategy: weighted
    targets:
      - {{name: big, provider: p, model: ab-big, weight: 3}}
      - {{name: small, provider: p, model: ab-small}}
"""


@dataclass
class Traffic:
    """Requests to every route from a background thread, a few per second, so the page's charts have
    something to draw; bounded in count and time, and stopped by the fixture."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self, limit: int = 5000, seconds: float = 600) -> None:
        deadline = time.monotonic() + seconds
        models = list(ROUTES)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set() and self.sent < limit and time.monotonic() < deadline:
                body = {"model": models[self.sent % len(models)], "messages": [{"role": "user", "content": "hi"}]}
                try:
                    client.post("/v1/chat/completions", json=body)
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                self.sent += 1
                self.stop.wait(0.08)  # pacing, not synchronisation


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("status-page", tmp_path_factory.mktemp("mock"))
    provider.set_rules(LATENCY_RULES)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), Path(tmp_path_factory.mktemp("stack"))) as running:
        traffic = Traffic(running.url)
        thread = threading.Thread(target=traffic.run, name="status-page-traffic", daemon=True)
        thread.start()
        try:
            yield running
        finally:
            traffic.stop.set()
            thread.join(40)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS, viewport=LAPTOP
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class PageWatch:
    """One tab, and everything it complained about or asked for while the test ran."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    requested_hosts: set[str] = field(default_factory=set)

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
def tab(browser: Any) -> Iterator[PageWatch]:
    page = browser.new_page()
    watch = PageWatch(page)
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.console_errors.append(f"uncaught: {error}"))
    page.on("request", lambda request: watch.requested_hosts.add(urlsplit(request.url).netloc))
    try:
        yield watch
    finally:
        page.close()


def _shown_routes(page: Any) -> dict[str, list[str]]:
    """Route name → target names, as the page displays them (their text, in order)."""
    shown: dict[str, list[str]] = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll("section.route")).map((route) => [
            route.querySelector(".route-name").textContent,
            Array.from(route.querySelectorAll("tbody .target-name")).map((name) => name.textContent),
        ]))"""
    )
    return shown


def _row(page: Any, route: str, target: str) -> Any:
    section = page.locator("section.route").filter(has=page.locator(".route-name", has_text=route))
    return section.locator("tbody tr").filter(has=page.locator(".target-name", has_text=target))


def _save_screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_page_lists_every_route_and_target_as_named_in_the_yaml_with_its_state(stack: Stack, tab: PageWatch) -> None:
    expect = sync_api.expect
    response = tab.page.goto(f"http://{stack.api}/")

    assert response is not None and response.ok
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    expect(tab.page.locator("#connection")).to_contain_text("live · updated", timeout=PAGE_DEADLINE_MS)
    expect(tab.page.locator("section.route")).to_have_count(len(ROUTES), timeout=PAGE_DEADLINE_MS)
    assert _shown_routes(tab.page) == ROUTES
    # Background traffic reaches both targets of the weighted route: the page shows them serving.
    for target in ROUTES["ab-test"]:
        state = _row(tab.page, "ab-test", target).locator(".c-state")
        expect(state).to_have_text("healthy", timeout=PAGE_DEADLINE_MS)
    # The version is a hash of the config's content: the page shows the one /status has.
    expect(tab.page.locator("#config-version")).to_have_text(stack.status()["config"]["version"])
    expect(tab.page.locator("#nodes-body tr")).to_have_count(1, timeout=PAGE_DEADLINE_MS)
    # The gateway's one Envoy; "behind" for a moment whenever least_latency's weights move.
    expect(tab.page.locator("#nodes-body .state")).to_have_text(re.compile("^(current|behind)$"))
    assert "weighted" in tab.page.locator("section.route", has_text="ab-test").locator(".route-meta").inner_text()
    assert tab.console_errors == []
    assert tab.requested_hosts == {stack.api}, "the page must load nothing from anywhere else"


def test_a_target_that_starts_failing_turns_ejected_on_the_page_by_itself(
    stack: Stack, mock: MockProvider, tab: PageWatch
) -> None:
    expect = sync_api.expect
    page = tab.page
    page.goto(f"http://{stack.api}/")
    primary = _row(page, "chat", "primary")
    expect(primary.locator(".c-state")).to_have_text("healthy", timeout=PAGE_DEADLINE_MS)
    expect(primary.locator(".c-traffic rect.bar.ok").first).to_be_attached(timeout=PAGE_DEADLINE_MS)
    expect(primary.locator(".c-latency-chart polyline")).to_be_attached(timeout=PAGE_DEADLINE_MS)
    if DOCS_SCREENSHOT:
        page.wait_for_timeout(30_000)  # a fuller minute of history for the README's picture, not a sync point

    mock.set_rules([{"match": {"model": "chat-primary"}, "status": 502}, *LATENCY_RULES])

    # No reload, no click: the page polls /status and changes the row itself.
    expect(primary.locator(".c-state")).to_have_text("ejected", timeout=PAGE_DEADLINE_MS)
    expect(primary.locator(".c-why")).to_contain_text("failures in a row (last: 502); back in ")
    expect(primary.locator(".c-traffic rect.bar.failed").first).to_be_attached(timeout=PAGE_DEADLINE_MS)
    expect(_row(page, "chat", "backup").locator(".c-state")).to_have_text("healthy")
    expect(page).to_have_title("1 out of service · Switchyard status", timeout=PAGE_DEADLINE_MS)
    assert int(_row(page, "chat", "backup").locator(".c-fallbacks").inner_text()) >= 1
    if DOCS_SCREENSHOT:
        page.wait_for_timeout(8_000)

    shot = _save_screenshot(page, "status-page.png")
    if DOCS_SCREENSHOT:
        page.locator("body").screenshot(path=str(ROOT / DOCS_SCREENSHOT))  # as tall as the page, no blank below
    assert shot.stat().st_size > 10_000
    assert tab.console_errors == []


def test_page_shows_markup_in_names_as_text_and_says_when_the_control_plane_stops_answering(
    tmp_path: Path, tab: PageWatch
) -> None:
    """Only a control plane (no Envoy, no traffic), whose YAML names things with markup: the page shows those
    names as they are written, its targets untried and no nodes, a rejected reload with its errors, and, once
    the process is gone, that it cannot reach it while keeping what it last saw."""
    expect = sync_api.expect
    config = tmp_path / "switchyard.yaml"
    config.write_text(
        f"""
listen: 127.0.0.1:{free_port()}
providers:
  p: {{kind: openai, base_url: "http://127.0.0.1:{free_port()}", api_key: sk-status-page}}
routes:
  - model: '{MARKUP_ROUTE}'
    targets:
      - {{name: '{MARKUP_TARGET.replace("'", "''")}', provider: p, model: lonely-markup}}
      - {{name: only, provider: p, model: lonely-only}}
"""
    )
    api = f"127.0.0.1:{free_port()}"
    plane = SwitchyardProcess(
        "controlplane",
        ["controlplane", str(config), "--listen", f"unix:{tmp_path / 'xds.sock'}", "--api", api],
        tmp_path,
    )
    try:
        plane.wait_for_log("status API on", 30)
        tab.page.goto(f"http://{api}/")
        only = _row(tab.page, "lonely", "only")
        expect(only.locator(".c-state")).to_have_text("no traffic", timeout=PAGE_DEADLINE_MS)
        assert _shown_routes(tab.page) == {MARKUP_ROUTE: [MARKUP_TARGET, "only"]}
        assert tab.page.locator("#injected").count() == 0
        assert tab.page.locator("main img").count() == 0
        assert tab.page.evaluate("() => window.injected") is None
        expect(tab.page.locator("#no-nodes")).to_be_visible()
        expect(tab.page.locator("#reload-error")).to_be_hidden()
        version = httpx.get(f"http://{api}/status", timeout=10).json()["config"]["version"]
        expect(tab.page.locator("#config-version")).to_have_text(version)

        config.write_text(config.read_text().replace("kind: openai", "kind: nope"))
        expect(tab.page.locator("#reload-error")).to_be_visible(timeout=PAGE_DEADLINE_MS)
        expect(tab.page.locator("#reload-error-text")).to_contain_text("kind")
        expect(tab.page.locator("#last-reload")).to_contain_text("rejected")
        expect(tab.page.locator("#config-version")).to_have_text(version)  # the good config stays in force

        plane.stop()
        connection = tab.page.locator("#connection")
        expect(connection).to_contain_text("cannot reach the control plane", timeout=PAGE_DEADLINE_MS)
        expect(tab.page.locator("#main")).to_have_class(re.compile(r"\bstale\b"))
        expect(only).to_be_visible()
        _save_screenshot(tab.page, "status-page-unreachable.png")
    finally:
        plane.stop()
    # The failed polls are the browser's own network errors, nothing the page threw.
    assert [e for e in tab.console_errors if "Failed to load resource" not in e and "ERR_CONNECTION" not in e] == []
