"""Addresses: HOST:PORT or unix:/absolute/path, one parser for every flag; `up`'s defaults and its checks."""

from __future__ import annotations

import argparse
import os
import socket
import stat
from pathlib import Path

import pytest

from switchyard.addresses import (
    AddressError,
    TcpAddress,
    UnixAddress,
    address_arg,
    envoy_cluster_type,
    numbered,
    parse_address,
    split_address,
)
from switchyard.cli.main import build_parser
from switchyard.supervisor import preflight
from switchyard.supervisor.options import GatewayOptions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9901", TcpAddress("127.0.0.1", 9901)),
        ("0.0.0.0:18000", TcpAddress("0.0.0.0", 18000)),
        ("controlplane:18000", TcpAddress("controlplane", 18000)),
        ("[::1]:9901", TcpAddress("::1", 9901)),
        ("unix:/tmp/x/envoy-admin.sock", UnixAddress("/tmp/x/envoy-admin.sock")),
        ("unix:///tmp/x/xds.sock", UnixAddress("/tmp/x/xds.sock")),  # gRPC's URI spelling
    ],
)
def test_parses_tcp_and_unix_addresses(text: str, expected: TcpAddress | UnixAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unix:relative.sock", "unix:/absolute/path"),
        ("unix:", "unix:/absolute/path"),
        ("unix://host/x.sock", "unix:/absolute/path"),
        ("unix:/tmp/dir/", "names a file"),
        ("unix:/" + "d" * 110, "at most 107 bytes"),
        ("localhost", "HOST:PORT or unix:/absolute/path"),
        (":9901", "HOST:PORT or unix:/absolute/path"),
        ("127.0.0.1:0", "1 to 65535"),
        ("127.0.0.1:65536", "1 to 65535"),
        ("127.0.0.1:http", "1 to 65535"),
        ("::1:9901", "in brackets"),
        ("[::1:9901", "in brackets"),
    ],
)
def test_rejects_bad_addresses_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_address(text)


def test_addresses_print_back_as_the_flags_take_them() -> None:
    for text in ("127.0.0.1:9901", "[::1]:9901", "unix:/run/s/xds.sock"):
        assert str(parse_address(text)) == text
    assert address_arg("unix:///run/s/xds.sock") == "unix:/run/s/xds.sock"
    with pytest.raises(argparse.ArgumentTypeError):
        address_arg("nonsense")


def test_split_address_is_tcp_only() -> None:
    assert split_address("127.0.0.1:18002") == ("127.0.0.1", 18002)
    with pytest.raises(AddressError, match="not supported here"):
        split_address("unix:/tmp/api.sock")


def test_numbered_gives_each_worker_its_own_address() -> None:
    assert numbered("127.0.0.1:18001", 3) == ("127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003")
    assert numbered("unix:/w/extproc.sock", 1) == ("unix:/w/extproc.sock",)
    assert numbered("unix:/w/extproc.sock", 3) == (
        "unix:/w/extproc-1.sock",
        "unix:/w/extproc-2.sock",
        "unix:/w/extproc-3.sock",
    )
    with pytest.raises(AddressError, match="ports up to 65536"):
        numbered("127.0.0.1:65535", 2)


def test_pipes_need_a_static_cluster() -> None:
    assert envoy_cluster_type([parse_address("controlplane:18000")]) == "STRICT_DNS"
    assert envoy_cluster_type([parse_address("unix:/w/xds.sock")]) == "STATIC"
    assert envoy_cluster_type([parse_address("unix:/w/a.sock"), parse_address("127.0.0.1:1")]) == "STATIC"
    with pytest.raises(AddressError, match="host names"):
        envoy_cluster_type([parse_address("unix:/w/a.sock"), parse_address("extproc:18001")])


def test_envoy_shapes() -> None:
    assert parse_address("127.0.0.1:9901").envoy() == {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}
    assert UnixAddress("/w/a.sock").envoy() == {"pipe": {"path": "/w/a.sock"}}
    assert UnixAddress("/w/a.sock").envoy(0o600) == {"pipe": {"path": "/w/a.sock", "mode": 384}}


# --- the command line ---------------------------------------------------------------------------------------


def test_up_defaults_leave_the_addresses_to_the_work_dir() -> None:
    args = build_parser().parse_args(["up", "c.yaml"])
    assert (args.admin, args.xds, args.extproc, args.work_dir) == (None, None, None, None)
    assert args.api == "127.0.0.1:18002"


def test_every_address_flag_takes_both_spellings_and_rejects_others(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["up", "c.yaml", "--admin", "127.0.0.1:9901", "--xds", "unix:/w/x.sock"])
    assert (args.admin, args.xds) == ("127.0.0.1:9901", "unix:/w/x.sock")
    assert parser.parse_args(["controlplane", "c.yaml", "--listen", "unix:/w/x.sock"]).listen == "unix:/w/x.sock"
    assert parser.parse_args(["extproc", "--listen", "0.0.0.0:18001"]).listen == "0.0.0.0:18001"
    for argv in (["up", "c.yaml", "--extproc", "unix:x.sock"], ["extproc", "--listen", "18001"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "unix:/absolute/path" in capsys.readouterr().err


def test_extproc_has_no_controlplane_flag_and_role_commands_need_an_address() -> None:
    parser = build_parser()
    for argv in (
        ["extproc", "--listen", "unix:/w/e.sock", "--controlplane", "127.0.0.1:18000"],
        ["extproc"],
        ["controlplane", "c.yaml"],
        ["envoy-bootstrap", "--xds", "unix:/w/x.sock", "--extproc", "unix:/w/e.sock"],
    ):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_help_says_where_the_defaults_are(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("unix:DIR/envoy-admin.sock", "unix:DIR/xds.sock", "unix:DIR/extproc.sock", "--work-dir DIR"):
        assert expected in text
    assert "config_dump" in text


# --- `up`: work dir, defaults, busy checks, warnings ------------------------------------------------------------


def test_resolved_puts_every_socket_in_the_work_dir(tmp_path: Path) -> None:
    options = GatewayOptions(Path("c.yaml"), work_dir=tmp_path / "work", extproc_workers=2).resolved()
    work = tmp_path / "work"
    assert stat.S_IMODE(work.stat().st_mode) == 0o700
    assert options.admin == f"unix:{work}/envoy-admin.sock"
    assert options.xds == f"unix:{work}/xds.sock"
    assert options.extproc_addresses == (f"unix:{work}/extproc-1.sock", f"unix:{work}/extproc-2.sock")
    assert not options.owns_work_dir, "a --work-dir is the user's: kept on exit"
    assert options.resolved() == options


def test_resolved_without_a_work_dir_makes_a_private_temp_dir() -> None:
    options = GatewayOptions(Path("c.yaml"), admin="127.0.0.1:9901").resolved()
    assert options.work_dir is not None and options.owns_work_dir
    try:
        assert stat.S_IMODE(options.work_dir.stat().st_mode) == 0o700
        assert options.admin == "127.0.0.1:9901", "an explicit address is kept"
        assert options.xds == f"unix:{options.work_dir}/xds.sock"
    finally:
        options.work_dir.rmdir()


def test_resolved_refuses_a_work_dir_too_deep_for_a_socket(tmp_path: Path) -> None:
    with pytest.raises(AddressError, match="at most 107 bytes"):
        GatewayOptions(Path("c.yaml"), work_dir=tmp_path / ("d" * 100)).resolved()


def test_unix_path_check_removes_a_stale_socket_and_refuses_a_live_one(tmp_path: Path) -> None:
    stale, live, plain = tmp_path / "stale.sock", tmp_path / "live.sock", tmp_path / "plain"
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(stale))  # bound, never listening, then closed: what a killed process leaves
    plain.write_text("")
    with socket.socket(socket.AF_UNIX) as answering:
        answering.bind(str(live))
        answering.listen()
        assert preflight.unix_path_problem(str(stale)) is None
        assert not stale.exists()
        assert preflight.unix_path_problem(str(live)) == "something already answers on this socket"
        assert preflight.unix_path_problem(str(plain)) == "exists and is not a socket"
        assert preflight.unix_path_problem(str(tmp_path / "free.sock")) is None
        assert "does not exist" in str(preflight.unix_path_problem(str(tmp_path / "no" / "x.sock")))


def test_tcp_admin_or_xds_warns_that_it_exposes_the_keys(tmp_path: Path) -> None:
    private = GatewayOptions(Path("c.yaml"), work_dir=tmp_path).resolved()
    assert preflight.key_exposure_warnings(private) == []
    exposed = GatewayOptions(Path("c.yaml"), work_dir=tmp_path, admin="127.0.0.1:9901", xds="0.0.0.0:18000")
    admin_warning, xds_warning = preflight.key_exposure_warnings(exposed.resolved())
    assert admin_warning.startswith("WARNING: --admin 127.0.0.1:9901 is a TCP port: anyone who can reach it")
    assert "config_dump" in admin_warning
    assert xds_warning.startswith("WARNING: --xds 0.0.0.0:18000 is a TCP port")


def test_the_banner_says_where_the_admin_is() -> None:
    assert "/w/envoy-admin.sock  (Unix socket, owner-only" in preflight.admin_line("unix:/w/envoy-admin.sock")
    assert "http://127.0.0.1:9901" in preflight.admin_line("127.0.0.1:9901")


def test_controlplane_and_extproc_make_their_files_private() -> None:
    from switchyard.cli import main as cli

    previous = os.umask(0o022)
    try:
        cli._private_files()
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(previous)
