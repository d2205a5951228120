"""The resources a config has already been translated into, by what each one was built from.

A change of health or latency weights re-translates the config, and what it changes is one route's cluster:
building every resource's dict again cost about 2.5 ms per route (0.76 s for 300 routes, the event loop blocked
meanwhile, so health decisions waited behind it). Each resource of a config is remembered here under a key naming
everything its builder reads besides the config (the translate settings, and the live facts it depends on:
clusters.live_inputs, LiveState.client_inputs); the builder runs again only when that key is new. The messages
themselves come from envoy_api.MessageCache, so a hit is still a fresh message no caller can change for another.

Entries live as long as their config (a reload's new config starts afresh; the old one's entries go with it) and
at most MAX_KEYS_PER_CONFIG of them, least recently used dropped first: latency rankings that wander must not
grow memory. tests/unit/test_resource_memo.py checks the keys against translating afresh, over many live states.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from controlplane.envoy_api import MessageCache, canonical_json
from controlplane.serving_groups import ServingGroup, serving_groups
from switchyard.config import Config

M = TypeVar("M", bound=Message)

MAX_KEYS_PER_CONFIG = 16_384


@dataclass
class _Remembered:
    texts: OrderedDict[Hashable, str] = field(default_factory=OrderedDict)
    groups: tuple[ServingGroup, ...] | None = None


class ResourceMemo:
    def __init__(self, converted: MessageCache, max_keys: int = MAX_KEYS_PER_CONFIG) -> None:
        self._converted = converted
        self._max_keys = max_keys
        # By id(config), dropped when the config is collected (so an id reused later finds nothing).
        self._configs: dict[int, _Remembered] = {}

    def _of(self, config: Config) -> _Remembered:
        remembered = self._configs.get(id(config))
        if remembered is None:
            remembered = self._configs[id(config)] = _Remembered()
            weakref.finalize(config, self._configs.pop, id(config), None)
        return remembered

    def serving_groups(self, config: Config) -> tuple[ServingGroup, ...]:
        """Every route's serving groups, in the config's order: a pure function of the config."""
        remembered = self._of(config)
        if remembered.groups is None:
            remembered.groups = tuple(group for route in config.routes for group in serving_groups(config, route))
        return remembered.groups

    def resource(
        self, config: Config, key: Hashable, build: Callable[[], dict[str, Any]], message_type: type[M]
    ) -> tuple[M, str]:
        """The resource `build()` makes, and its canonical JSON; `key` names all `build` reads besides `config`."""
        texts = self._of(config).texts
        text = texts.get(key)
        if text is not None:
            message = self._converted.get(text, message_type)
            if message is not None:
                texts.move_to_end(key)
                return message, text
        data = build()
        text = canonical_json(data)
        message = self._converted.message(text, data, message_type)
        texts[key] = text
        if len(texts) > self._max_keys:
            texts.popitem(last=False)
        return message, text
