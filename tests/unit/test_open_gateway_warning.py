"""`up` and `node` warn at start when anyone beyond this machine may call every route: a listener off
loopback and no `clients:` (issue 14). A node learns whether there are clients from its Envoy's listener."""

from __future__ import annotations

import pytest

from switchyard.supervisor.gateway import _node_has_clients
from switchyard.supervisor.preflight import open_gateway_warning


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "10.1.2.3:8080", "[::]:8080", "gateway.example:443"])
def test_a_listener_beyond_loopback_without_clients_is_warned_about(listen: str) -> None:
    warning = open_gateway_warning(listen, has_clients=False)
    assert warning is not None and listen in warning and "clients:" in warning


@pytest.mark.parametrize(
    ("listen", "has_clients"),
    [
        ("127.0.0.1:8080", False),
        ("[::1]:8080", False),
        ("localhost:8080", False),
        ("0.0.0.0:8080", True),
        (None, False),
    ],
)
def test_loopback_or_clients_say_nothing(listen: str | None, has_clients: bool) -> None:
    assert open_gateway_warning(listen, has_clients) is None


def test_a_node_whose_envoy_cannot_be_asked_says_nothing(tmp_path: object) -> None:
    assert _node_has_clients(f"unix:{tmp_path}/no-such-admin.sock") is True
