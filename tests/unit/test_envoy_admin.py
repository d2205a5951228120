"""The Envoy admin client: HTTP over a Unix socket and over TCP, against a tiny local server; every failure is
an AdminError, within the timeout."""

from __future__ import annotations

import socket
import urllib.parse
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from switchyard.supervisor.envoy_admin import AdminError, EnvoyAdmin, parse_stat
from tests.support.fake_envoy_admin import STATS, FakeAdminHandler, UnixHTTPServer, serving


@pytest.fixture
def unix_admin(tmp_path: Path) -> Iterator[tuple[EnvoyAdmin, list[tuple[str, str]]]]:
    path = tmp_path / "admin.sock"
    with serving(UnixHTTPServer(str(path), FakeAdminHandler)) as seen:
        yield EnvoyAdmin(f"unix:{path}"), seen


@pytest.fixture
def tcp_admin() -> Iterator[tuple[EnvoyAdmin, list[tuple[str, str]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAdminHandler)
    server.daemon_threads = True
    with serving(server) as seen:
        yield EnvoyAdmin(f"127.0.0.1:{server.server_address[1]}"), seen


@pytest.fixture(params=["unix_admin", "tcp_admin"])
def admin(request: pytest.FixtureRequest) -> tuple[EnvoyAdmin, list[tuple[str, str]]]:
    chosen: tuple[EnvoyAdmin, list[tuple[str, str]]] = request.getfixturevalue(request.param)
    return chosen


def test_reads_one_stat(admin: tuple[EnvoyAdmin, list[tuple[str, str]]]) -> None:
    client, seen = admin
    assert client.stat("http.switchyard.downstream_rq_active") == 3
    ((method, path),) = seen
    assert method == "GET"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert query["filter"] == [r"^http\.switchyard\.downstream_rq_active$"], "an exact, anchored filter"


def test_posts_the_drain_calls(admin: tuple[EnvoyAdmin, list[tuple[str, str]]]) -> None:
    client, seen = admin
    client.healthcheck_fail()
    client.drain_listeners(graceful=True, skip_exit=True)
    client.drain_listeners(graceful=False)
    assert seen == [
        ("POST", "/healthcheck/fail"),
        ("POST", "/drain_listeners?graceful&skip_exit"),
        ("POST", "/drain_listeners"),
    ]


def test_a_missing_stat_or_another_status_is_an_admin_error(admin: tuple[EnvoyAdmin, list[tuple[str, str]]]) -> None:
    client, _ = admin
    with pytest.raises(AdminError, match=r"no stat http\.switchyard\.nothing"):
        client.stat("http.switchyard.nothing")
    with pytest.raises(AdminError, match="418 no"):
        client.get("/teapot")


def test_nobody_listening_is_an_admin_error(tmp_path: Path) -> None:
    with pytest.raises(AdminError, match="Envoy's admin unix:"):
        EnvoyAdmin(f"unix:{tmp_path / 'gone.sock'}").healthcheck_fail()
    with socket.socket() as probe:  # a port that was free a moment ago: refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AdminError, match=f"127.0.0.1:{port}"):
        EnvoyAdmin(f"127.0.0.1:{port}").stat("server.live")


def test_an_admin_that_never_answers_times_out(tmp_path: Path) -> None:
    """Connected (the listen backlog takes it) but never answered: the call ends with the timeout."""
    path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(path))
        mute.listen()
        with pytest.raises(AdminError, match="timed out"):
            EnvoyAdmin(f"unix:{path}", timeout=0.2).stat("server.live")


def test_a_bad_address_is_an_admin_error() -> None:
    with pytest.raises(AdminError):
        EnvoyAdmin("unix:relative/path")


def test_parse_stat_reads_name_value_lines() -> None:
    assert parse_stat(STATS, "http.switchyard.downstream_rq_active") == 3
    assert parse_stat(STATS, "http.switchyard.downstream_rq") is None
    assert parse_stat("x: -1\n", "x") == -1
    assert parse_stat("x: P0(nan,0)\n", "x") is None  # a histogram is not a number
