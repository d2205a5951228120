"""How often a retry on a route with session affinity lands on the target that just failed.

Envoy's Maglev balancer (source/extensions/load_balancing_policies/maglev in Envoy) builds a 65,537-slot table
from each host's permutation (an offset and a skip, both xxHash64 of the host's hash key: the address, or the
endpoint's `envoy.lb` `hash_key`), filled in turns by weight. A session's hash picks a slot; a retry rejected by
the previous-hosts predicate draws again from slot `hash ^ ~(attempt - 1)`, up to
`host_selection_retry_max_attempts` times, so the draws read a block of neighbouring slots, not independent
ones. This model rebuilds the table the same way and counts, for many two-target routes, the sessions of the
failed target whose every draw returns to it.

    python -m bench.maglev_retries --weights 50 50 --draws 20 --keys address
    python -m bench.maglev_retries --weights 97 3 --draws 20000 --keys own

`--keys address`: both targets on one provider, keyed by its address (what Envoy does without a hash key);
`--keys own`: each target keyed by a key of its own (what Switchyard sets, `controlplane/affinity.py`).
Needs `xxhash` (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence

import xxhash

TABLE_SIZE = 65_537  # Envoy's default Maglev table size (a prime)
_ALL_BITS = 2**64 - 1


def maglev_table(keys: Sequence[str], weights: Sequence[float]) -> list[int]:
    """Slot -> index into `keys`, filled as Envoy fills it: hosts in key order (ties in given order), each
    taking its next free permutation slot on the turns its weight earns."""
    total = sum(weights)
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    share = {i: weights[i] / total for i in order}
    most = max(share.values())
    offset = {i: xxhash.xxh64_intdigest(keys[i].encode()) % TABLE_SIZE for i in order}
    skip = {i: xxhash.xxh64_intdigest(keys[i].encode(), seed=1) % (TABLE_SIZE - 1) + 1 for i in order}
    following = dict.fromkeys(order, 0)
    owed = dict.fromkeys(order, 0.0)
    table = [-1] * TABLE_SIZE
    filled = 0
    turn = 1
    while filled < TABLE_SIZE:
        for i in order:
            if filled == TABLE_SIZE:
                break
            if turn * share[i] < owed[i]:
                continue
            owed[i] += most
            slot = (offset[i] + skip[i] * following[i]) % TABLE_SIZE
            while table[slot] != -1:
                following[i] += 1
                slot = (offset[i] + skip[i] * following[i]) % TABLE_SIZE
            table[slot] = i
            following[i] += 1
            filled += 1
        turn += 1
    return table


def stranded_share(table: list[int], failed: int, draws: int, sessions: int, rng: random.Random) -> float:
    """Of `sessions` random session hashes homed on `failed`, the share whose retry draws all return to it."""
    homed = stranded = 0
    while homed < sessions:
        session = rng.getrandbits(64)
        if table[session % TABLE_SIZE] != failed:
            continue
        homed += 1
        if all(table[(session ^ (_ALL_BITS - attempt + 1)) % TABLE_SIZE] == failed for attempt in range(1, draws + 1)):
            stranded += 1
    return stranded / homed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=float, nargs=2, default=(50.0, 50.0), help="the two targets' weights")
    parser.add_argument("--draws", type=int, default=20, help="host_selection_retry_max_attempts")
    parser.add_argument("--keys", choices=("address", "own"), default="own", help="how each target is keyed")
    parser.add_argument("--routes", type=int, default=200, help="routes (tables) to build")
    parser.add_argument("--sessions", type=int, default=2000, help="sessions of the failed target per route")
    args = parser.parse_args(argv)
    rng = random.Random(7)
    failed = 0 if args.weights[0] >= args.weights[1] else 1
    shares = []
    for route in range(args.routes):
        if args.keys == "address":
            keys = [f"127.0.0.1:{32768 + route}"] * 2
        else:
            keys = [f"{rng.getrandbits(64):016x}" for _ in range(2)]
        shares.append(stranded_share(maglev_table(keys, args.weights), failed, args.draws, args.sessions, rng))
    hit = [s for s in shares if s > 0]
    print(
        f"weights {args.weights[0]:g}/{args.weights[1]:g}, keys {args.keys}, {args.draws} draws, "
        f"{args.routes} routes: {len(hit)} routes ({100 * len(hit) / args.routes:.1f}%) sent some of the failed "
        f"target's sessions back to it; worst {100 * max(shares):.2f}% of its sessions, "
        f"mean {100 * sum(shares) / len(shares):.4f}%"
    )


if __name__ == "__main__":
    main()
