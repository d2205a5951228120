"""The status page's files as the status API serves them: every file of the folder has a route, each answers with
its media type and the headers that keep the page self-contained, and the page refers only to files it serves.
The browser test (tests/e2e/test_status_page.py) shows the page working; these pin what it depends on."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from importlib.resources import files
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from controlplane.telemetry.admin_api import build_app
from controlplane.telemetry.status_page import CONTENT_SECURITY_POLICY, PAGE_FILES, read_page_file

FOLDER = files("controlplane.telemetry.status_page")


def _status() -> dict[str, Any]:
    return {"control_plane": None, "config": {"version": None, "last_reload": None}, "nodes": [], "routes": []}


async def _get(path: str) -> tuple[int, dict[str, str], bytes]:
    async with TestClient(TestServer(build_app(_status))) as client:
        response = await client.get(path)
        return response.status, dict(response.headers), await response.read()


def get(path: str) -> tuple[int, dict[str, str], bytes]:
    return asyncio.run(_get(path))


class _References(HTMLParser):
    """Every src= and href= of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(value for name, value in attrs if name in ("src", "href") and value is not None)


def test_every_file_of_the_folder_is_served_and_every_served_file_is_in_the_folder() -> None:
    in_folder = {entry.name for entry in FOLDER.iterdir() if entry.is_file() and not entry.name.endswith(".py")}

    assert {page_file.file_name for page_file in PAGE_FILES} == in_folder


def test_each_file_is_served_with_its_media_type_and_the_policy_that_forbids_loading_from_elsewhere() -> None:
    for page_file in PAGE_FILES:
        status, headers, body = get(page_file.url_path)

        assert status == 200, page_file
        assert headers["Content-Type"].startswith(page_file.content_type), page_file
        assert body == read_page_file(page_file.file_name)
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "'unsafe-eval'" not in CONTENT_SECURITY_POLICY


def test_the_page_refers_only_to_its_own_files_and_the_api_next_to_it() -> None:
    parser = _References()
    parser.feed(read_page_file("index.html").decode())
    served = {page_file.url_path.lstrip("/") for page_file in PAGE_FILES} | {"status", "metrics"}

    assert parser.found, "the page loads its script and style"
    assert set(parser.found) <= served, "relative paths only (the page may sit behind a path prefix), all served"


def test_the_script_polls_the_status_document_relative_to_the_page() -> None:
    script = read_page_file("status_page.js").decode()

    assert re.search(r"""fetch\("status",""", script)


def test_the_script_never_turns_strings_into_markup() -> None:
    """Route and target names come from the YAML: they go on the page as text, never parsed as HTML."""
    script = read_page_file("status_page.js").decode()

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_status_and_metrics_still_answer_beside_the_page() -> None:
    status, headers, body = get("/status")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert b'"routes": []' in body
    assert get("/metrics")[0] == 200
    assert get("/no-such-file.js")[0] == 404
