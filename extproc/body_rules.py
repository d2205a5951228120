"""Per-target body rules (`body:` on a target in the routing YAML), applied to the provider's request body.

The control plane validates them (switchyard/config/model.py `BodyRules`: no rule may remove or replace
`model`) and sends them with each attempt to that target, as compact JSON in the `x-switchyard-translate`
header (`TranslationRequest` in switchyard/contract.py, which also encodes and decodes the rules). Only
top-level members are touched, in a fixed order so that
rules compose the way they read: `rename` first (so `cap` can name the new member), then `drop`, `default`
(absent or null members only), `set`, and `cap` (numbers above the cap come down; absent ones stay absent).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def apply(rules: JSON, body: JSON) -> JSON:
    """A new body with `rules` applied; `body` itself is left as it was."""
    out = dict(body)
    for old, new in (rules.get("rename") or {}).items():
        if old in out:
            out[new] = out.pop(old)
    for name in rules.get("drop") or ():
        out.pop(name, None)
    for name, value in (rules.get("default") or {}).items():
        if out.get(name) is None:
            out[name] = value
    out.update(rules.get("set") or {})
    for name, limit in (rules.get("cap") or {}).items():
        value = out.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > limit:
            out[name] = limit
    return out
