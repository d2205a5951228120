"""controlplane/resource_memo.py: a translation that reuses what an earlier one built is the translation made
afresh, whatever live state comes; and a health change builds only the cluster it concerns."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import pytest

from controlplane import translate as translate_module
from controlplane.envoy_api import Cluster, MessageCache
from controlplane.live_state import LiveState
from controlplane.resource_memo import ResourceMemo
from controlplane.resources import clusters
from controlplane.resources.settings import TranslateSettings
from controlplane.serving_groups import ServingGroup
from controlplane.target_keys import target_key
from controlplane.translate import translate
from switchyard.config import Config, load_config, load_config_text
from tests.support.golden import FAKE_ENV

ROOT = Path(__file__).resolve().parents[2]
# Every live input at once: least_latency weights, a weighted route, priorities, clients with a request limit to
# divide between nodes, tracing.
LIVE_EVERYWHERE = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-provider}
  a: {kind: anthropic, base_url: "http://127.0.0.1:8", api_key: sk-ant}
routes:
  - model: fast
    strategy: least_latency
    targets:
      - {name: one, provider: p, model: x}
      - {name: two, provider: a, model: y}
      - {name: three, provider: p, model: z}
  - model: split
    strategy: weighted
    targets:
      - {name: big, provider: p, model: x, weight: 9}
      - {name: small, provider: a, model: y, weight: 1}
  - model: ordered
    targets:
      - {name: primary, provider: p, model: x}
      - {name: backup, provider: a, model: y}
clients:
  team-a: {keys: ["sk-team-a-0123456789abcdef"], limits: {requests_per_minute: 600}}
  team-b: {keys: ["sk-team-b-0123456789abcdef"], models: [fast]}
tracing: {otlp: "127.0.0.1:4317"}
"""


def _configs() -> dict[str, Config]:
    return {
        "switchyard.yaml": load_config(ROOT / "examples" / "switchyard.yaml", environ=FAKE_ENV),
        "demo.yaml": load_config(ROOT / "examples" / "demo.yaml"),
        "live everywhere": load_config_text(LIVE_EVERYWHERE),
    }


def _random_live(config: Config, rng: random.Random) -> LiveState:
    keys = [target_key(route, target) for route in config.routes for target in route.targets]
    clients = sorted(config.clients or {})
    return LiveState(
        out_of_service=frozenset(k for k in keys if rng.random() < 0.2),
        latency_s={k: rng.choice((0.1, 0.2, 0.4, 0.8)) for k in keys if rng.random() < 0.7},
        refused_clients={c: rng.choice((1e9, 2e9)) for c in clients if rng.random() < 0.4},
        nodes=rng.randint(1, 3),
    )


@pytest.mark.parametrize("name", ["switchyard.yaml", "demo.yaml", "live everywhere"])
def test_a_remembering_translation_is_the_translation_made_afresh(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _configs()[name]
    rng = random.Random(name)
    settings = (TranslateSettings(), TranslateSettings(rewrite_attempts=False))
    warm = ResourceMemo(MessageCache())
    for _ in range(15):
        live, chosen = _random_live(config, rng), rng.choice(settings)
        monkeypatch.setattr(translate_module, "_MEMO", warm)
        remembered = translate(config, chosen, live)
        monkeypatch.setattr(translate_module, "_MEMO", ResourceMemo(MessageCache()))
        fresh = translate(config, chosen, live)
        assert remembered.texts == fresh.texts
        assert remembered == fresh


def test_a_health_change_builds_only_the_cluster_it_concerns(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config_text(LIVE_EVERYWHERE)
    monkeypatch.setattr(translate_module, "_MEMO", ResourceMemo(MessageCache()))
    translate(config)
    built: list[str] = []
    original = clusters.cluster

    def counting(c: Config, group: ServingGroup, s: TranslateSettings, live: LiveState) -> dict[str, Any]:
        built.append(group.cluster)
        return original(c, group, s, live)

    monkeypatch.setattr(translate_module, "cluster", counting)
    route = next(r for r in config.routes if r.model == "ordered")
    after = translate(config, live=LiveState(out_of_service=frozenset({target_key(route, route.targets[0])})))
    assert built == [c.name for c in after.clusters if "ordered" in c.name] and built


def test_a_configs_entries_go_with_it_and_stay_bounded() -> None:
    memo = ResourceMemo(MessageCache(), max_keys=3)
    config = load_config_text(LIVE_EVERYWHERE)
    for number in range(5):
        memo.resource(config, ("key", number), lambda: {"name": "c", "connect_timeout": "1s"}, Cluster)
    assert len(memo._configs[id(config)].texts) == 3
    del config
    gc.collect()
    assert memo._configs == {}
