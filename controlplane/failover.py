"""How failover works: which failures move a request to another target, how fast, and how often.

A failure is what `is_failure` says (no response, or one of the route's fallback codes), and two layers act on it:
- **Within one client request, Envoy retries.** The targets of a route that can serve the request are the
  endpoints of one cluster, each at its strategy's priority level, so a retry can land on any of them.
  `route_retry_policy` retries on no response and on the route's fallback codes, each target at most once
  (`previous_hosts`), the next priority level before a second try of the same level (`previous_priorities`),
  after a back-off short enough not to count, each attempt bounded by the route's timeout until response
  headers. `CIRCUIT_BREAKERS` keep Envoy's default limit of 3 concurrent retries per cluster from turning
  failovers into errors under load.
- **Across requests, a failing target is taken out.** Each Envoy's own `outlier_detection` ejects a target
  failing in a row at once, for the failures Envoy can tell apart; the control plane's health judge
  (controlplane/health.py) sees every Envoy's attempts with their exact codes and marks targets out of
  service in the pushed clusters. `OVERPROVISIONING` decides when a priority level spills to the next one.

The ext_proc is failed over too, between its processes: `extproc_retry_policy`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from controlplane import affinity
from controlplane.envoy_api import seconds, typed
from switchyard.config import Route


def is_failure(status: int, fallback_codes: Collection[int]) -> bool:
    """No response (status 0: reset, refused, timed out), or a status the route falls back on. Anything else
    (a 400, say) is the client's problem, not the target's: Envoy does not retry it, it neither counts against
    the target nor ends its streak of failures."""
    return status == 0 or status in fallback_codes


# No response at all is always retried; statuses only when they are the route's fallback codes.
RETRY_ON = "retriable-status-codes,reset,connect-failure,refused-stream"
# Failover must not wait (R2): Envoy's default back-off (25 ms base, jittered) dominated failover latency.
BACKOFF = {"base_interval": "0.001s", "max_interval": "0.002s"}


def _previous_hosts() -> list[dict[str, Any]]:
    """A retry picks a host not tried yet for this request (a target, or an ext_proc process)."""
    return [
        {
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
        }
    ]


def route_retry_policy(route: Route) -> dict[str, Any]:
    """A client request's attempts: each target at most once (R2), backups' priority levels in order.

    A route with one target has no attempt after the first, so it gets only the per-try timeout (which Envoy
    applies with or without retries): the retry state, host predicate and priority objects Envoy would otherwise
    build for every request cost about 14 us of Envoy CPU per request and could never act (issue 21)."""
    attempts = len(route.targets)
    if attempts == 1:
        return {"per_try_timeout": seconds(route.timeout)}
    return {
        "retry_on": RETRY_ON,
        "retriable_status_codes": list(route.fallback_codes),
        "num_retries": attempts - 1,
        "per_try_timeout": seconds(route.timeout),
        "retry_back_off": BACKOFF,
        "retry_host_predicate": _previous_hosts(),
        "host_selection_retry_max_attempts": affinity.host_selection_attempts(route),
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": typed(
                "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                update_frequency=1,
            ),
        },
    }


def extproc_retry_policy() -> dict[str, Any]:
    """An ext_proc stream that cannot open, or is reset before the ext_proc answered (an ext_proc just died),
    opens again, on another ext_proc if one is up.

    Measured on Envoy 1.40 under load: for a few tenths of a second after a SIGKILL, Envoy's load balancer
    still picks the dead process (even flagged as ejected), sometimes for every retry of a stream, until the
    restarted process listens (0.3-0.8 s after the kill on 2 busy cores). So retries are many and backed off:
    up to 20, each within 10 ms..0.25 s (jittered; about 2.5 s in all on average, the first within 10 ms), to
    outlast that window or the restart; 10 retries (about 0.6 s) did not always suffice. Safe: the ext_proc is
    stateless and a reset stream had no answer yet, so the retried stream starts from scratch. Only failures
    pay for it."""
    return {
        "retry_on": "connect-failure,refused-stream,reset,unavailable",
        "num_retries": 20,
        "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.25s"},
        "retry_host_predicate": _previous_hosts(),
        "host_selection_retry_max_attempts": 8,
    }


# Envoy allows 3 concurrent retries per cluster by default; under load most failovers then overflow. Long LLM
# streams hold requests open, so requests and connections are not limited either.
_LIMIT = 1_000_000
CIRCUIT_BREAKERS = {
    "thresholds": [
        {
            "priority": p,
            "max_connections": _LIMIT,
            "max_pending_requests": _LIMIT,
            "max_requests": _LIMIT,
            "max_retries": _LIMIT,
        }
        for p in ("DEFAULT", "HIGH")
    ]
}
# Any healthy share of a priority takes all of its traffic: a half-ejected A/B pair keeps serving from the
# healthy half rather than spilling to the backup priority (Envoy's default factor is 1.4).
OVERPROVISIONING = 100_000

_GATEWAY_FAILURES = frozenset({502, 503, 504})


def outlier_detection(route: Route) -> dict[str, Any]:
    """Each Envoy's own, immediate ejection of a target failing in a row, for the failures it can tell
    apart: no response at all (refused, reset, timed out) always, and 502/503/504 only when the route falls
    back on all three. Envoy cannot be told which other codes count, and a target must not be penalised for
    a code outside the fallback codes, so everything else is judged by the control plane's health judge
    (controlplane/health.py), which sees exact codes from every Envoy and marks targets out of service in
    the clusters it pushes."""
    failures = route.health.consecutive_failures
    if failures == 0:
        return {}
    gateway = 100 if set(route.fallback_codes) >= _GATEWAY_FAILURES else 0
    return {
        "outlier_detection": {
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": failures,
            "enforcing_consecutive_local_origin_failure": 100,
            "consecutive_gateway_failure": failures,
            "enforcing_consecutive_gateway_failure": gateway,
            "enforcing_consecutive_5xx": 0,
            "enforcing_success_rate": 0,
            "enforcing_local_origin_success_rate": 0,
            "interval": "1s",
            "base_ejection_time": seconds(route.health.ejection_time),
            "max_ejection_time": seconds(max(60.0, route.health.ejection_time)),
            "max_ejection_percent": 100,
        }
    }
