"""Session affinity in Envoy: the session's name is hashed onto the route's targets, natively.

- **The name.** The route hashes, in order (the first present wins, `terminal`), the client's own session header
  and the body's session fields of the client's API (`contract.SESSION_FIELDS`). Envoy's hash policy reads
  headers, not metadata: json_to_metadata lifts each field and a listener `header_mutation` copies it into a
  header of Switchyard's own (a filter-state string set by `set_filter_state` produced no hash on Envoy 1.40,
  measured). The route cannot remove that header (`request_headers_to_remove` applies before the hash and left
  nothing to hash, measured), so each attempt's upstream `header_mutation` does. A request naming no session
  is hashed at random: it is spread by weight as before.
- **The targets.** The route's cluster balances with Maglev instead of round robin. Like the default balancer
  it chooses a priority level first (so failover between levels is unchanged), then a target by its share of a
  65537-entry table built from the locality weights (measured: 70/30 targets drew 71/29 of 2000 sessions).
  A target out of service or ejected leaves the table: its sessions move, the others stay.
- **Failover.** A retry must still go to another target at once. Maglev finds one by re-hashing, each try a draw
  by weight, so the route allows enough draws (`host_selection_attempts`) to miss a dominant failed target:
  with the usual 16, a 95/5 pair sent 10% of the failed target's sessions back to it (measured).
"""

from __future__ import annotations

import math
from typing import Any

from controlplane.envoy_api import METADATA_NAMESPACE, typed
from controlplane.strategies import least_latency
from switchyard.config import ClientEndpoint, Config, Route, Strategy
from switchyard.contract import ALL_SESSION_FIELDS, SESSION_FIELDS, SessionField

# A retry re-drawing the failed target this many times in a row is left to this chance.
_MISS_CHANCE = 1e-6
_MAX_DRAWS = 20_000


def _body_fields_used(config: Config) -> bool:
    return any(r.affinity is not None and r.affinity.body_fields for r in config.routes)


def listener_rules(config: Config) -> list[dict[str, Any]]:
    """json_to_metadata rules lifting every session field, when a route hashes on them (strings only: a field of
    another type names no session)."""
    if not _body_fields_used(config):
        return []
    return [
        {
            "selectors": [{"key": key} for key in field.path],
            "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": field.metadata_key, "type": "STRING"},
        }
        for field in ALL_SESSION_FIELDS
    ]


def listener_filters(config: Config) -> list[dict[str, Any]]:
    """The header_mutation copying each lifted field into its header. A client's own copy is removed first, so
    only the body names the session; an absent field leaves no header (Envoy omits empty values)."""
    if not _body_fields_used(config):
        return []
    mutations: list[dict[str, Any]] = []
    for field in ALL_SESSION_FIELDS:
        value = f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:{field.metadata_key})%"
        mutations.append({"remove": field.header})
        mutations.append(
            {"append": {"header": {"key": field.header, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}
        )
    return [
        {
            "name": "switchyard.session_headers",
            "typed_config": typed(
                "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                mutations={"request_mutations": mutations},
            ),
        }
    ]


def _fields(route: Route, endpoint: ClientEndpoint) -> tuple[SessionField, ...]:
    return SESSION_FIELDS.get(endpoint.api, ()) if route.affinity is not None and route.affinity.body_fields else ()


def hash_policy(route: Route, endpoint: ClientEndpoint) -> dict[str, Any]:
    """The route's `hash_policy`: nothing without affinity (the route stays as it was)."""
    if route.affinity is None:
        return {}
    headers = [route.affinity.header] if route.affinity.header else []
    headers.extend(field.header for field in _fields(route, endpoint))
    return {"hash_policy": [{"header": {"header_name": name}, "terminal": True} for name in headers]}


def attempt_headers_to_remove(route: Route) -> tuple[str, ...]:
    """Switchyard's session headers, which no provider should receive (the client's own header is theirs)."""
    if route.affinity is None or not route.affinity.body_fields:
        return ()
    return tuple(field.header for field in ALL_SESSION_FIELDS)


def lb_policy(route: Route) -> str:
    return "ROUND_ROBIN" if route.affinity is None else "MAGLEV"


def host_selection_attempts(route: Route) -> int:
    """Draws for a retry to find a target not tried yet: enough that a target holding the largest share a level
    can give (`_largest_share`) is drawn every time with a chance under `_MISS_CHANCE`."""
    attempts = 8 * len(route.targets)
    if route.affinity is None:
        return attempts
    share = _largest_share(route)
    needed = math.ceil(math.log(_MISS_CHANCE) / math.log(share))
    return min(_MAX_DRAWS, max(attempts, needed))


def _largest_share(route: Route) -> float:
    """An upper bound of one target's share of a level with two or more targets (config validation ensures one)."""
    weights = [t.weight for t in route.targets]
    if route.strategy is Strategy.LEAST_LATENCY:
        # The leader's weight against one explored target's (least_latency.py): both at least 1.
        explored = max(1, round(least_latency.TOTAL_WEIGHT * route.latency.exploration))
        lead = max(1, round(least_latency.TOTAL_WEIGHT * (1 - route.latency.exploration)))
        return lead / (lead + explored)
    if route.strategy in (Strategy.ROUND_ROBIN, Strategy.LOWEST_COST):
        return 0.5
    return max(weights) / (max(weights) + min(weights))
