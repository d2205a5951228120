"""`docker stop` on a gateway container under steady load loses nothing that was in flight.

Six clients keep requests going through the image's `switchyard up` to a mock provider that takes 400 ms per
answer, so about six requests are always in flight. `docker stop` (SIGTERM to tini, passed to `switchyard`)
starts the drain: every request that reached the provider gets its answer, none gets an error status, the
container exits 0 by itself well inside the grace period (SIGKILL would show as 137), and the only failures
the clients see are connections that were never accepted, after the stop began.

Also: the gateway's container runs as the image's unprivileged user, and Docker's healthcheck (the image's
HEALTHCHECK, GET /healthz on the listener) reports it healthy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from testcontainers.core.network import Network

from switchyard.testing import MockProviderContainer, SwitchyardContainer

CONFIG = """
providers:
  openai: {kind: openai, base_url: "http://mock-openai:18081", api_key: sk-test}
routes:
  - model: gpt-4o
    targets:
      - {name: only, provider: openai, model: gpt-4o}
"""
CLIENTS = 6
LATENCY_MS = 400
GRACE_S = 30  # docker stop's timeout before SIGKILL
DRAIN_NOTICE_S = 1


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    status: int  # 0: no answer (the error is in `error`)
    error: str = ""


class Load:
    """CLIENTS loops of requests, one after another each, until told to stop (bounded in time and count)."""

    def __init__(self, url: str, max_seconds: float = 90, max_requests: int = 2000) -> None:
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        deadline = time.monotonic() + max_seconds

        def loop() -> None:
            with httpx.Client(base_url=url, timeout=20) as client:
                while not self._stop.is_set() and time.monotonic() < deadline and len(self.outcomes) < max_requests:
                    started = time.monotonic()
                    try:
                        status, error = client.post("/v1/chat/completions", json=body).status_code, ""
                    except httpx.HTTPError as exc:
                        status, error = 0, f"{type(exc).__name__}: {exc}"
                    with self._lock:
                        self.outcomes.append(Outcome(started, time.monotonic(), status, error))
                    if status == 0:
                        time.sleep(0.05)  # the instance is gone: a load balancer would go elsewhere

        self._threads = [threading.Thread(target=loop, daemon=True) for _ in range(CLIENTS)]
        for thread in self._threads:
            thread.start()

    def answered(self) -> int:
        with self._lock:
            return sum(o.status == 200 for o in self.outcomes)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        return list(self.outcomes)


def test_docker_stop_drains_the_gateway_and_loses_nothing_in_flight() -> None:
    with (
        Network() as network,
        MockProviderContainer("mock-openai", rules=[f"latency_ms={LATENCY_MS}"], network=network) as mock,
        SwitchyardContainer(
            CONFIG, network=network, up_args=("--drain-notice", str(DRAIN_NOTICE_S), "--drain-timeout", "20")
        ) as gateway,
    ):
        load = Load(gateway.url)
        deadline = time.monotonic() + 60
        while load.answered() < 3 * CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.answered() >= 3 * CLIENTS, f"the load never got going: {load.stop()[:5]}\n{gateway.logs()}"

        container = gateway.get_wrapped_container()
        stop_began = time.monotonic()
        container.stop(timeout=GRACE_S)  # what `docker stop -t 30` does: SIGTERM, SIGKILL after 30 s
        stop_took = time.monotonic() - stop_began
        outcomes = load.stop()
        container.reload()
        exit_code = container.attrs["State"]["ExitCode"]
        logs = gateway.logs(40)

        answered = [o for o in outcomes if o.status == 200]
        failed_statuses = [o for o in outcomes if o.status not in (0, 200)]
        unanswered = [o for o in outcomes if o.status == 0]
        in_flight_at_stop = [o for o in answered if o.started < stop_began < o.ended]
        received = mock.requests(model="gpt-4o")

        assert exit_code == 0, f"the gateway did not exit by itself after the drain (exit {exit_code}):\n{logs}"
        assert stop_took < GRACE_S
        assert stop_took >= DRAIN_NOTICE_S, "it stopped before the notice: no drain happened"
        assert in_flight_at_stop, "no request was in flight when the stop began: the test proves nothing"
        assert not failed_statuses, failed_statuses[:5]
        assert len(received) == len(answered), (
            f"{len(received)} requests reached the provider, {len(answered)} were answered: "
            f"{len(received) - len(answered)} lost\n{[o.error for o in unanswered][:5]}\n{logs}"
        )
        assert all(o.started > stop_began for o in unanswered), [o for o in unanswered if o.started <= stop_began]


def test_the_gateway_container_runs_unprivileged_and_its_healthcheck_asks_healthz() -> None:
    with (
        Network() as network,
        MockProviderContainer("mock-openai", network=network) as mock,
        SwitchyardContainer(CONFIG, network=network) as gateway,
    ):
        container = gateway.get_wrapped_container()
        deadline = time.monotonic() + 60
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs["State"]["Health"]
            if health["Status"] != "starting":
                break
            time.sleep(0.5)
        assert health["Status"] == "healthy", health
        assert container.attrs["Config"]["Healthcheck"]["Test"][-1].endswith("timeout=2)")
        assert container.attrs["Config"]["Env"].count("SWITCHYARD_HEALTHCHECK_URL=http://127.0.0.1:8080/healthz") == 1
        assert gateway.exec(["id", "-u"]).output.decode().strip() == "10001"
        # The mock's container checks its own health URL, not the gateway's /healthz.
        mock_container = mock.get_wrapped_container()
        mock_container.reload()
        assert mock_container.attrs["State"]["Health"]["Status"] in ("starting", "healthy")
