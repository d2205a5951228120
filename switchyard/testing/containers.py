"""Switchyard and its mock provider as testcontainers containers, for an application's integration tests.

`SwitchyardContainer` runs `switchyard up` in the Switchyard image on the test's routing YAML;
`MockProviderContainer` runs `switchyard mock-provider` in the same image, with failures the test scripts
(status, latency, resets) to exercise the application's own fallback handling. On one testcontainers
`Network`, the gateway reaches the mock by its alias (`mock.internal_url` in the config); the test reaches both
through their mapped ports.

The config travels in an environment variable and is written to /tmp inside the container before `up`
starts: no bind mount, so this works against a remote Docker engine too. Put provider keys in the config as
`${VAR}` and pass them with `env`. The image is `SWITCHYARD_IMAGE` from the environment, else
`switchyard:local` (`docker build -t switchyard:local .` in a clone of Switchyard).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from switchyard.testing.config_text import config_text, with_listen
from switchyard.testing.mock_admin import MockProviderAdmin, RuleSpec
from switchyard.testing.readiness import SwitchyardStartError, wait_until_answers

DEFAULT_IMAGE = "switchyard:local"
LISTEN_PORT = 8080
API_PORT = 18002
MOCK_PORT = 18081
STARTUP_TIMEOUT_S = 90.0
_CONFIG_ENV = "SWITCHYARD_CONFIG_YAML"
_CONFIG_PATH = "/tmp/switchyard.yaml"


def default_image() -> str:
    return os.environ.get("SWITCHYARD_IMAGE", DEFAULT_IMAGE)


def _logs_of(container: DockerContainer, lines: int) -> str:
    try:
        stdout, stderr = container.get_logs()
    except Exception as error:  # not started, or already removed
        return f"(no logs: {error})"
    text = (stdout + stderr).decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _running(container: DockerContainer) -> bool:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    return bool(wrapped.status in ("created", "running"))


def _mapped_url(container: DockerContainer, port: int) -> str:
    return f"http://{container.get_container_host_ip()}:{container.get_exposed_port(port)}"


class SwitchyardContainer(DockerContainer):  # type: ignore[misc]  # testcontainers ships no types mypy follows
    """`switchyard up` on `config` (YAML text, or a file as a `Path`), ready once its routes answer.

    `url`: the gateway's root (the anthropic SDK's base_url, or raw HTTP); `base_url`: `url + "/v1"` (the
    openai SDK's base_url); `status_url`: the control plane's GET /status. `up_args` go to `switchyard up`
    (e.g. `("--drain-notice", "1")`). `logs()` gives the last lines of its output; a start that fails raises
    `SwitchyardStartError` with them."""

    def __init__(
        self,
        config: str | Path,
        image: str | None = None,
        *,
        env: dict[str, str] | None = None,
        up_args: tuple[str, ...] = (),
        network: Network | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(image or default_image(), **kwargs)
        self._startup_timeout = startup_timeout
        # Inside the container the listener takes every interface, so the port mapping reaches it.
        self.with_env(_CONFIG_ENV, with_listen(config_text(config), f"0.0.0.0:{LISTEN_PORT}"))
        for name, value in (env or {}).items():
            self.with_env(name, value)
        self.with_exposed_ports(LISTEN_PORT, API_PORT)
        # `exec`: `switchyard up` replaces the shell, so `docker stop`'s SIGTERM (through tini) reaches it.
        script = f'printf "%s" "${_CONFIG_ENV}" > {_CONFIG_PATH} && exec switchyard up {_CONFIG_PATH} "$@"'
        self.with_command(["sh", "-c", script, "switchyard-up", "--api", f"0.0.0.0:{API_PORT}", *up_args])
        if network is not None:
            self.with_network(network)
        self.url = ""
        self.base_url = ""
        self.status_url = ""

    def start(self) -> SwitchyardContainer:
        super().start()
        try:
            self.url = _mapped_url(self, LISTEN_PORT)
            self.base_url = f"{self.url}/v1"
            self.status_url = f"{_mapped_url(self, API_PORT)}/status"
            wait_until_answers(
                f"Switchyard container ({self.image})",
                lambda: f"{self.url}/v1/models",
                lambda: _running(self),
                self.logs,
                self._startup_timeout,
                accept=(200, 401),  # 401: the config has `clients:`, and the routes are in just the same
            )
        except Exception as error:
            logs = self.logs()
            self.stop()
            if isinstance(error, SwitchyardStartError):
                raise
            raise SwitchyardStartError(f"Switchyard container did not start: {error}\n{logs}") from error
        return self

    def logs(self, lines: int = 100) -> str:
        return _logs_of(self, lines)


class MockProviderContainer(DockerContainer, MockProviderAdmin):  # type: ignore[misc]
    """`switchyard mock-provider` speaking `api` (openai, anthropic, gemini, bedrock), reachable by the gateway
    at `internal_url` (on `network`, under the alias `name`) and by the test at `url`, where `set_rules`,
    `requests` and `clear` script and read it. `rules`: failures to answer with from the start, as `--rule`
    specs ("model=gpt-4o,status=503", "latency_ms=300", "reset") or PUT /_mock/rules objects."""

    def __init__(
        self,
        name: str = "mock",
        api: str = "openai",
        rules: tuple[RuleSpec, ...] | list[RuleSpec] = (),
        image: str | None = None,
        *,
        network: Network | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        DockerContainer.__init__(self, image or default_image(), **kwargs)
        MockProviderAdmin.__init__(self, "")
        self.provider_name = name
        self.internal_url = f"http://{name}:{MOCK_PORT}"
        self._rules = tuple(rules)
        self._startup_timeout = startup_timeout
        self.with_command(
            ["switchyard", "mock-provider", "--host", "0.0.0.0", "--port", str(MOCK_PORT), "--name", name, "--api", api]
        )
        # The image's HEALTHCHECK asks the gateway's /healthz unless told otherwise.
        self.with_env("SWITCHYARD_HEALTHCHECK_URL", f"http://127.0.0.1:{MOCK_PORT}/_mock/health")
        self.with_exposed_ports(MOCK_PORT)
        if network is not None:
            self.with_network(network)
            self.with_network_aliases(name)

    def start(self) -> MockProviderContainer:
        DockerContainer.start(self)
        try:
            self.url = _mapped_url(self, MOCK_PORT)
            wait_until_answers(
                f"mock provider container {self.provider_name}",
                lambda: f"{self.url}/_mock/health",
                lambda: _running(self),
                self.logs,
                self._startup_timeout,
            )
            if self._rules:
                self.set_rules(*self._rules)
        except Exception as error:
            logs = self.logs()
            self.stop()
            if isinstance(error, SwitchyardStartError):
                raise
            raise SwitchyardStartError(f"mock provider container did not start: {error}\n{logs}") from error
        return self

    def logs(self, lines: int = 100) -> str:
        return _logs_of(self, lines)
