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
- **Failover.** A retry must still go to another target at once. Envoy's Maglev finds one by drawing again, but
  its draws are not independent: draw `a` reads the slot of `hash ^ ~(a - 1)`, a block of neighbouring table
  slots, and a table built from two permutations can hold long runs of one target. Two things keep a retry
  from landing on the failed target again (`tests/e2e/test_affinity.py`; measured with `bench/maglev_retries.py`,
  an emulation of Envoy's table):
  - each target has a hash key of its own (`endpoint_hash_key`). Envoy otherwise keys a target by its address,
    and targets of one provider share it: their permutations were identical, and whether a session's retry left
    the failed target depended on the provider's port (about 5% of ports sent up to 84% of one target's
    sessions back to it);
  - a retry may draw `RETRY_DRAWS` times. With their own keys, 20 draws still missed in 7% of 50/50 pairs and
    1,024 in 1% of 97/3 pairs; 20,000 missed in none of 200 pairs at 50/50, 97/3 or 99/1. The draws stop at
    the first target not tried yet (usually the first or second), so only a retry pays, and at most about a
    table lookup per draw.
"""

from __future__ import annotations

from typing import Any

from controlplane.envoy_api import METADATA_NAMESPACE, typed
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.contract import ALL_SESSION_FIELDS, SESSION_FIELDS, SessionField

# How many times a retry may draw a target on a route with affinity (see "Failover" above).
RETRY_DRAWS = 20_000
# Envoy's endpoint metadata namespace for load balancing; Maglev reads `hash_key` from it instead of the address.
_LB_NAMESPACE = "envoy.lb"


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


def lb_policy(route: Route) -> str:
    return "ROUND_ROBIN" if route.affinity is None else "MAGLEV"


def host_selection_attempts(route: Route) -> int:
    """Draws for a retry to find a target not tried yet: round robin never repeats a target within a few draws
    per target; Maglev needs many (see "Failover" above)."""
    return 8 * len(route.targets) if route.affinity is None else RETRY_DRAWS


def endpoint_hash_key(route: Route, key: str) -> dict[str, Any]:
    """The filter metadata placing a target in the route's Maglev table by its own key (`target_key`): nothing
    without affinity."""
    return {} if route.affinity is None else {_LB_NAMESPACE: {"hash_key": key}}
