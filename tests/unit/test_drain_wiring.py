"""How the drain is wired: the options and their defaults, the Envoy flags, and the supervisor's decisions
(drain on the first signal, not on the second, nothing restarted during the drain)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from switchyard.cli.main import build_parser
from switchyard.config import load_config
from switchyard.supervisor import gateway
from switchyard.supervisor.gateway import Gateway
from switchyard.supervisor.options import GatewayOptions
from switchyard.supervisor.processes import Child


def test_drain_options_and_defaults() -> None:
    parser = build_parser()
    up = parser.parse_args(["up", "c.yaml"])
    assert (up.drain_timeout, up.drain_notice) == (60.0, 5.0)
    demo = parser.parse_args(["demo"])
    assert (demo.drain_timeout, demo.drain_notice) == (60.0, 0.0), "nothing balances across a demo"
    assert parser.parse_args(["extproc", "--listen", "unix:/w/e.sock"]).drain_timeout == 60.0
    custom = parser.parse_args(["up", "c.yaml", "--drain-timeout", "20", "--drain-notice", "0.5"])
    assert (custom.drain_timeout, custom.drain_notice) == (20.0, 0.5)
    for bad in ("-1", "soon", "1e9"):
        with pytest.raises(SystemExit):
            parser.parse_args(["up", "c.yaml", "--drain-timeout", bad])


@pytest.mark.parametrize("command", [["up", "--help"], ["demo", "--help"], ["extproc", "--help"]])
def test_help_documents_the_drain(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(command)
    text = " ".join(capsys.readouterr().out.split())
    assert "--drain-timeout SECONDS" in text and "(default: 60)" in text
    assert "a second signal stops at once" in text.lower() or "second ctrl-c/sigterm stops" in text.lower()


def test_controlplane_help_says_how_it_stops(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["controlplane", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Envoy keeps the config it has" in text and "A second signal stops at once" in text


class FakeChild(Child):
    """A child that is never started: alive until told otherwise; stops recorded."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name, ["true"])
        self.alive = True
        self._log = log

    def start(self) -> None:
        self._log.append(f"start {self.name}")
        self.alive = True

    @property
    def running(self) -> bool:
        return self.alive

    @property
    def exit_code(self) -> int | None:
        return None if self.alive else 1

    def stop(self, grace: float = 5.0) -> None:
        self._log.append(f"stop {self.name}")
        self.alive = False


@pytest.fixture
def fake_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Gateway, list[str]]:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "listen: 127.0.0.1:18999\nproviders: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    options = GatewayOptions(config_path, work_dir=tmp_path / "work", drain_timeout=7, drain_notice=2)
    gw = Gateway(options, load_config(config_path))
    events: list[str] = []
    gw.children = [FakeChild(name, events) for name in ("controlplane", "extproc", "envoy")]
    # supervise() installs signal handlers: not in the test runner.
    monkeypatch.setattr(gateway.signal, "signal", lambda *_: None)
    return gw, events


def test_envoy_is_started_with_the_immediate_drain_strategy(tmp_path: Path) -> None:
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "listen: 127.0.0.1:18999\nproviders: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    gw = Gateway(GatewayOptions(config_path, work_dir=tmp_path / "work"), load_config(config_path))
    envoy = next(c for c in gw.children if c.name == "envoy")
    argv = list(envoy.argv)
    assert argv[argv.index("--drain-strategy") + 1] == "immediate"
    names = [c.name for c in gw.children]
    assert (names[0], names[-1]) == ("controlplane", "envoy"), "stopped in reverse: Envoy first, the control plane last"


def test_the_first_signal_drains_then_stops_envoy_first(
    fake_gateway: tuple[Gateway, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, events = fake_gateway
    calls: list[dict[str, object]] = []

    def fake_drain_envoy(admin: object, settings: object, **kwargs: object) -> None:
        calls.append({"admin": str(admin), "settings": settings, **kwargs})
        events.append("drain")

    monkeypatch.setattr(gateway, "drain_envoy", fake_drain_envoy)
    gw._request_stop(signal.SIGTERM, None)
    assert gw.supervise() == 0
    assert events == ["drain", "stop envoy", "stop extproc", "stop controlplane"]
    (call,) = calls
    assert call["reason"] == "SIGTERM"
    assert call["admin"] == f"unix:{gw.options.work_dir}/envoy-admin.sock"
    settings = call["settings"]
    assert (settings.timeout, settings.notice) == (7, 2)  # type: ignore[attr-defined]


def test_a_second_signal_skips_the_drain_and_interrupts_one_under_way(
    fake_gateway: tuple[Gateway, list[str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gw, events = fake_gateway
    monkeypatch.setattr(gateway, "drain_envoy", lambda *_, **__: events.append("drain"))
    gw._request_stop(signal.SIGINT, None)
    with caplog.at_level(logging.WARNING, logger="switchyard.up"):
        gw._request_stop(signal.SIGINT, None)
    assert "SIGINT again: stopping everything now" in caplog.text
    assert gw.supervise() == 0
    assert events == ["stop envoy", "stop extproc", "stop controlplane"]


def test_during_the_drain_a_dead_child_is_logged_once_and_not_restarted(
    fake_gateway: tuple[Gateway, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    gw, events = fake_gateway
    extproc = gw.children[1]
    assert isinstance(extproc, FakeChild)
    extproc.alive = False
    with caplog.at_level(logging.WARNING, logger="switchyard.up"):
        assert gw._envoy_running_during_drain()
        assert gw._envoy_running_during_drain()
    assert caplog.text.count("extproc exited with 1 during the drain; not restarted") == 1
    assert events == [], "nothing restarted"
    envoy = gw.children[2]
    assert isinstance(envoy, FakeChild)
    envoy.alive = False
    assert not gw._envoy_running_during_drain(), "Envoy gone: nothing left to drain"


def test_up_passes_its_usage_store_to_the_control_plane(tmp_path: Path) -> None:
    """Usage lives in the work dir by default (a temporary one leaves with `up`); --usage-db keeps it elsewhere."""
    config_path = tmp_path / "c.yaml"
    config_path.write_text(
        "listen: 127.0.0.1:18999\nproviders: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    for usage_db, expected in ((None, None), (str(tmp_path / "usage.db"), str(tmp_path / "usage.db"))):
        options = GatewayOptions(config_path, work_dir=tmp_path / "work", usage_db=usage_db)
        plane = next(c for c in Gateway(options, load_config(config_path)).children if c.name == "controlplane")
        argv = list(plane.argv)
        given = argv[argv.index("--usage-db") + 1] if "--usage-db" in argv else None
        assert given == expected
        assert argv[argv.index("--state-dir") + 1] == str(tmp_path / "work")
