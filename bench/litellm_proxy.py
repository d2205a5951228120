"""The LiteLLM proxy side of `make bench`: install it apart, configure it like our route, run it, stop it.

LiteLLM is the incumbent Python gateway. This module gives the benchmark a LiteLLM proxy that does the same job as
the Switchyard route under test, against the same fake OpenAI-compatible provider on 127.0.0.1:

* ``bench-model``  → deployment ``openai/renamed-primary`` at the primary; on an error (the bench's primary
  answers 502) the router falls back, within the same client request, to the model group ``bench-model-backup``
  (``openai/renamed-backup`` at the backup). ``num_retries: 0``, so the primary is tried exactly once.
* ``bench-direct`` → ``openai/renamed-primary`` at ``direct_url`` (default: the primary), no fallback: the plain
  path.

Choices, and why (the comparison must not handicap LiteLLM, nor flatter it):

* Version: the pin in ``bench/litellm-requirements.txt`` (litellm 1.106.2, every dependency pinned). See that
  file for why not a newer one (their dependencies do not resolve from the index these machines reach).
* Workers: LiteLLM's own default, one uvicorn worker (``DEFAULT_NUM_WORKERS_LITELLM_PROXY`` = 1, uvloop). Its
  production guide recommends one uvicorn worker per pod and scaling out with more pods, so the default *is* the
  recommended production setting. ``num_workers`` can override it for an experiment (e.g. 2 on this 2-core
  machine); then ``pids()`` covers every worker.
* Logging: ``LITELLM_LOG=ERROR``, which the production guide recommends ("turn off FastAPI's default info
  logs"); it also silences uvicorn's per-request access line. No ``--debug``, no ``set_verbose``, no JSON logs.
* Cooldowns: ``disable_cooldowns: true`` (and ``allowed_fails`` huge as a second guard). Otherwise a primary
  that fails every request would be put in cooldown and later requests would skip it, so the failover path would
  no longer be measured on every request. This removes LiteLLM's cooldown bookkeeping from each failure (a
  small saving for LiteLLM, not a cost).
* Auth: no master key by default, like Switchyard, which does not authenticate clients either; clients send no
  ``Authorization`` header (``client_headers`` is empty). LiteLLM 1.106 refuses to start without a master
  key unless ``dangerously_permit_weak_or_unset_master_key`` is set, which we set. Pass ``master_key=`` to run
  it the production way; then send ``client_headers`` (``Authorization: Bearer <master_key>``) on every request.
  ``api_key`` is the key LiteLLM sends to the provider (the mocks accept anything).
* Offline: ``LITELLM_LOCAL_MODEL_COST_MAP=True`` (otherwise every start, even ``litellm --help``, tries to fetch
  the cost map from GitHub, retrying for seconds), the other ``LITELLM_LOCAL_*`` switches for bundled data,
  ``HF_HUB_OFFLINE=1``, proxy variables removed from the environment. ``disable_model_info_refresh: true`` stops
  the startup-and-every-300s ``GET /v1/models`` to each deployment (token-limit discovery), so the providers
  see client-driven traffic only. No database, no Redis, no UI use. Checked with strace: after these settings
  the proxy connects to nothing but the configured 127.0.0.1 providers.
* Pricing: each deployment carries ``model_info`` input/output cost per token, as a priced production model
  has. Unpriced (our fake model names are not in LiteLLM's cost map), LiteLLM runs a "zero cost" diagnostic on
  every answer; priced in ``litellm_params`` instead, it rebuilds its cost-map index on every answer. Either
  costs LiteLLM 15-25% of its throughput (measured with py-spy and a sequential client), which no production
  deployment of a known model pays.
* Install: ``litellm[proxy]`` as its docs say, plus ``opentelemetry-sdk``, which LiteLLM's production image has;
  without it a failing import is retried on every request (~4% of its CPU).
* Response ``model`` field: LiteLLM 1.106.2 stamps the *client's* model name on a normal answer
  (``"bench-direct"``), but the deployment's model on an answer served by a fallback (``"renamed-backup"``):
  see ``DIRECT_RESPONSE_MODEL`` / ``FAILOVER_RESPONSE_MODEL``.

Timing: a fresh install takes ~1.5 min and ~750 MB; ``start()`` returns after ~8-10 s (one worker, two cores);
the first chat completion after that takes ~1 s (LiteLLM initialises lazily), so discard a warm-up round.

``python -m bench.litellm_proxy --check`` installs (if needed), starts two recording mock providers and the
proxy, and verifies all of the above with real requests.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from switchyard.supervisor.processes import descendants

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = Path(__file__).resolve().parent / "litellm-requirements.txt"
RESULTS = Path(os.environ.get("SWITCHYARD_BENCH_RESULTS", ROOT / "bench-results"))
DEFAULT_VENV_DIR = RESULTS / "litellm-venv"
STAMP_NAME = ".switchyard-bench-stamp"

CLIENT_MODEL = "bench-model"
BACKUP_GROUP = "bench-model-backup"
DIRECT_MODEL = "bench-direct"
PRIMARY_UPSTREAM_MODEL = "renamed-primary"
BACKUP_UPSTREAM_MODEL = "renamed-backup"
# What LiteLLM 1.106.2 puts in the answer's "model" field (verified by --check).
DIRECT_RESPONSE_MODEL = DIRECT_MODEL
FAILOVER_RESPONSE_MODEL = BACKUP_UPSTREAM_MODEL

# Set for the proxy process: bundled data instead of downloads, production log level.
OFFLINE_ENV: Mapping[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "HF_HUB_OFFLINE": "1",
    "LITELLM_LOG": "ERROR",
    "NO_COLOR": "1",
    "PYTHONUNBUFFERED": "1",
    "NO_PROXY": "127.0.0.1,localhost",
}
# Removed from the proxy's environment: anything that would send traffic elsewhere or switch on a database,
# a cache, a master key or callbacks behind the config's back.
_STRIPPED_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "DATABASE_URL",
    "DIRECT_URL",
    "DATABASE_URL_READ_REPLICA",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_URL",
    "REDIS_PASSWORD",
    "LITELLM_MASTER_KEY",
    "LITELLM_SALT_KEY",
    "STORE_MODEL_IN_DB",
    "LITELLM_ENABLE_PYROSCOPE",
    "JSON_LOGS",
    "DEFAULT_NUM_WORKERS_LITELLM_PROXY",
    "NUM_WORKERS",
    "PORT",
    "HOST",
)


# --- installation --------------------------------------------------------------------------------------------


def _requirements_digest() -> str:
    """What the stamp holds: the requirements and the interpreter the venv is built on."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(f"\n{sys.version}\n{sys.base_prefix}".encode())
    return digest.hexdigest()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """One installer at a time (two bench runs started together must not both build the venv)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_litellm(venv_dir: Path) -> Path:
    """Create (once) a separate virtualenv at venv_dir with bench/litellm-requirements.txt installed; return the
    path of its ``litellm`` executable. Idempotent and fast when already installed: a stamp file holds the hash
    of the requirements (and of the interpreter); on a mismatch the venv is rebuilt from scratch."""
    venv_dir = Path(venv_dir).resolve()
    exe = venv_dir / "bin" / "litellm"
    python = venv_dir / "bin" / "python"
    stamp = venv_dir / STAMP_NAME
    want = _requirements_digest()

    def ready() -> bool:
        try:
            return stamp.read_text().strip() == want and exe.is_file() and python.exists()
        except OSError:
            return False

    if ready():
        return exe
    with _locked(venv_dir.parent / f".{venv_dir.name}.lock"):
        if ready():  # another process finished the install while we waited for the lock
            return exe
        if venv_dir.exists():
            if not (venv_dir / "pyvenv.cfg").exists() and any(venv_dir.iterdir()):
                raise RuntimeError(f"{venv_dir} exists and is not a virtualenv; refusing to replace it")
            shutil.rmtree(venv_dir)
        log = venv_dir.parent / f"{venv_dir.name}-install.log"
        with open(log, "w") as out:
            steps = (
                [sys.executable, "-m", "venv", str(venv_dir)],
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--only-binary=:all:",
                    "-r",
                    str(REQUIREMENTS),
                ],
            )
            for argv in steps:
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                if result.returncode != 0:
                    raise RuntimeError(
                        f"installing LiteLLM into {venv_dir} failed ({argv[2]} exited {result.returncode}); "
                        f"last lines of {log}:\n{_tail(log)}"
                    )
        if not exe.is_file():
            raise RuntimeError(f"{exe} missing after install; see {log}")
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(want + "\n")
        tmp.replace(stamp)
    return exe


# --- the proxy -----------------------------------------------------------------------------------------------


def _api_base(url: str) -> str:
    """LiteLLM's openai provider appends /chat/completions to api_base, so api_base must end in /v1."""
    base = url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


class LiteLLMProxy:
    """One ``litellm --config`` process (plus any workers it forks) listening on 127.0.0.1:port."""

    def __init__(
        self,
        litellm_exe: Path,
        port: int,
        primary_url: str,
        backup_url: str,
        workdir: Path,
        api_key: str = "sk-bench",
        *,
        direct_url: str | None = None,
        master_key: str | None = None,
        num_workers: int | None = None,
    ) -> None:
        self.litellm_exe = Path(litellm_exe)
        self.port = port
        self.primary_url = primary_url
        self.backup_url = backup_url
        self.direct_url = direct_url or primary_url
        self.api_key = api_key
        self.master_key = master_key
        self.num_workers = num_workers
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "litellm-config.yaml"
        self.log_path = self.workdir / "litellm.log"
        self.config: dict[str, Any] = self._config()
        self.config_text = yaml.safe_dump(self.config, sort_keys=False)
        self.config_path.write_text(self.config_text)
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> dict[str, Any]:
        def deployment(name: str, upstream_model: str, url: str) -> dict[str, Any]:
            return {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{upstream_model}",
                    "api_base": _api_base(url),
                    "api_key": self.api_key,
                },
                # Priced like a real model (gpt-4o-mini's list price), see the module docstring.
                "model_info": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6.0e-07},
            }

        general: dict[str, Any] = {"disable_model_info_refresh": True}
        if self.master_key is None:
            general["dangerously_permit_weak_or_unset_master_key"] = True
        else:
            general["master_key"] = self.master_key
        return {
            "model_list": [
                deployment(CLIENT_MODEL, PRIMARY_UPSTREAM_MODEL, self.primary_url),
                deployment(BACKUP_GROUP, BACKUP_UPSTREAM_MODEL, self.backup_url),
                deployment(DIRECT_MODEL, PRIMARY_UPSTREAM_MODEL, self.direct_url),
            ],
            "router_settings": {
                "num_retries": 0,
                "fallbacks": [{CLIENT_MODEL: [BACKUP_GROUP]}],
                "disable_cooldowns": True,
                "allowed_fails": 1_000_000,
            },
            "general_settings": general,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_headers(self) -> dict[str, str]:
        """Headers every client request must carry: empty without a master key."""
        return {} if self.master_key is None else {"Authorization": f"Bearer {self.master_key}"}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        env.update(OFFLINE_ENV)
        return env

    def argv(self) -> list[str]:
        argv = [str(self.litellm_exe), "--config", str(self.config_path), "--port", str(self.port)]
        argv += ["--host", "127.0.0.1"]
        if self.num_workers is not None:
            argv += ["--num_workers", str(self.num_workers)]
        return argv

    def start(self, timeout: float = 120) -> None:
        """Start the proxy and return once it is live and serves the configured models (an authenticated
        ``GET /v1/models``, no provider traffic: the bench's primary may answer only 502s). Raises with the tail of
        workdir/litellm.log if it exits or is not ready within ``timeout`` seconds."""
        if self._process is not None:
            raise RuntimeError("LiteLLM proxy already started")
        began = time.monotonic()
        # cwd=workdir: LiteLLM loads a .env from its working directory; the repository's must not leak in.
        # A new session, so stop() can signal the whole process group (workers included).
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=self.env(),
                start_new_session=True,
            )
        deadline = began + timeout
        last_error = "no answer yet"
        while True:
            code = self._process.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(
                    f"LiteLLM proxy exited with {code} while starting; last lines of {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                if self._ready():
                    self.startup_seconds = time.monotonic() - began
                    return
            except (OSError, ValueError) as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"LiteLLM proxy not ready on {self.url} within {timeout:.0f}s ({last_error}); last lines of "
                    f"{self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.2)

    def _ready(self) -> bool:
        status, _, _ = http_request(self.url + "/health/liveliness", timeout=2)
        if status != 200:
            return False
        status, body, _ = http_request(self.url + "/v1/models", headers=self.client_headers, timeout=5)
        if status != 200:
            raise ValueError(f"GET /v1/models answered {status}: {body[:200]!r}")
        served = {entry.get("id") for entry in json.loads(body).get("data", [])}
        return {CLIENT_MODEL, DIRECT_MODEL} <= served

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            # Workers that outlived the main process (they share its process group).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        """The proxy process and all its descendants (workers), for CPU accounting."""
        if self._process is None or self._process.poll() is not None:
            return []
        return [self._process.pid, *descendants(self._process.pid)]

    def __enter__(self) -> LiteLLMProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- plain HTTP (stdlib only, never through an environment proxy) ----------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_request(
    url: str,
    body: Any = None,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, lowercased headers); HTTP error statuses are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


# --- self check ----------------------------------------------------------------------------------------------


class _Mock:
    """A recording `switchyard mock-provider` subprocess."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        with open(workdir / f"mock-{name}.log", "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "switchyard", "mock-provider", "--port", "0", "--name", name],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        marker = f"mock-provider {name} listening on "
        if not line.startswith(marker):
            self.stop()
            raise RuntimeError(f"mock-provider {name} did not start: {line!r}")
        self.url = line[len(marker) :]
        self.background: list[dict[str, Any]] = []  # non-chat requests seen before any clear()

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        status, body, _ = http_request(self.url + "/_mock/rules", rules, method="PUT")
        if status != 200:
            raise RuntimeError(f"mock {self.name}: PUT rules answered {status} {body[:200]!r}")

    def clear(self) -> None:
        self.background += [r for r in self.all_requests() if not r["path"].endswith("/chat/completions")]
        http_request(self.url + "/_mock/requests", method="DELETE")

    def chat_requests(self) -> list[dict[str, Any]]:
        _, body, _ = http_request(self.url + "/_mock/requests")
        return [r for r in json.loads(body)["requests"] if r["path"].endswith("/chat/completions")]

    def all_requests(self) -> list[dict[str, Any]]:
        _, body, _ = http_request(self.url + "/_mock/requests")
        return list(json.loads(body)["requests"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


_OFFLINE_MARKERS = ("raw.githubusercontent", "ConnectError", "Name or service not known", "Temporary failure in name")


def _chat(proxy: LiteLLMProxy, model: str) -> tuple[int, dict[str, Any], float]:
    began = time.perf_counter()
    status, body, _ = http_request(
        proxy.url + "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "hello"}]},
        headers=proxy.client_headers,
    )
    elapsed = time.perf_counter() - began
    try:
        document = json.loads(body)
    except ValueError:
        document = {"raw": body[:300].decode(errors="replace")}
    return status, document, elapsed


def _rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
    return total_kib / 1024


def _summarize(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [((r.get("body") or {}).get("model", "?"), r.get("action", "?")) for r in requests]


def check(venv_dir: Path, workdir: Path, rounds: int = 3) -> bool:
    from switchyard.supervisor.processes import free_port

    failures: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            failures.append(what)

    workdir.mkdir(parents=True, exist_ok=True)
    print(f"== LiteLLM virtualenv at {venv_dir}", flush=True)
    began = time.monotonic()
    exe = ensure_litellm(venv_dir)
    print(f"  ready in {time.monotonic() - began:.1f}s: {exe}", flush=True)
    version = subprocess.run(
        [str(exe.parent / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"  litellm {version}", flush=True)

    mocks: list[_Mock] = []
    proxy: LiteLLMProxy | None = None
    try:
        primary = _Mock("primary", workdir)
        mocks.append(primary)
        backup = _Mock("backup", workdir)
        mocks.append(backup)
        proxy = LiteLLMProxy(exe, free_port(), primary.url, backup.url, workdir)
        print(f"== config ({proxy.config_path})\n{proxy.config_text}", flush=True)
        print(f"== starting: {' '.join(proxy.argv())}", flush=True)
        proxy.start()
        print(f"  ready in {proxy.startup_seconds:.1f}s on {proxy.url}; pids {proxy.pids()}", flush=True)

        print(f"== (1) {DIRECT_MODEL}: plain path to the primary", flush=True)
        for mock in mocks:
            mock.clear()
        status, document, elapsed = _chat(proxy, DIRECT_MODEL)
        got = _summarize(primary.chat_requests())
        expect(status == 200, f"{DIRECT_MODEL} answered {status} in {elapsed * 1000:.0f} ms")
        expect(got == [(PRIMARY_UPSTREAM_MODEL, "ok")], f"primary received {got}")
        expect(not backup.chat_requests(), "backup received nothing")
        expect(
            document.get("model") == DIRECT_RESPONSE_MODEL,
            f"answer's model field is {document.get('model')!r} (DIRECT_RESPONSE_MODEL)",
        )

        print(f"== (2)+(3) {CLIENT_MODEL}: primary answers 502, backup serves; {rounds} requests in a row", flush=True)
        primary.set_rules([{"match": {"model": PRIMARY_UPSTREAM_MODEL}, "status": 502}])
        for attempt in range(1, rounds + 1):
            for mock in mocks:
                mock.clear()
            status, document, elapsed = _chat(proxy, CLIENT_MODEL)
            tried = _summarize(primary.chat_requests())
            served = _summarize(backup.chat_requests())
            content = ((document.get("choices") or [{}])[0].get("message") or {}).get("content", "")
            expect(status == 200, f"#{attempt}: {CLIENT_MODEL} answered {status} in {elapsed * 1000:.0f} ms")
            expect(tried == [(PRIMARY_UPSTREAM_MODEL, "status:502")], f"#{attempt}: primary tried once: {tried}")
            expect(served == [(BACKUP_UPSTREAM_MODEL, "ok")], f"#{attempt}: backup received {served}")
            expect("backup" in str(content), f"#{attempt}: answer came from the backup: {content!r}")
            expect(
                document.get("model") == FAILOVER_RESPONSE_MODEL,
                f"#{attempt}: answer's model field is {document.get('model')!r} (FAILOVER_RESPONSE_MODEL)",
            )

        print("== (4) after the failures the plain path still reaches the primary", flush=True)
        primary.set_rules([])
        for mock in mocks:
            mock.clear()
        status, _, _ = _chat(proxy, DIRECT_MODEL)
        expect(status == 200 and len(primary.chat_requests()) == 1, f"{DIRECT_MODEL} answered {status} via primary")

        print("== offline", flush=True)
        for mock in mocks:
            mock.clear()
        other = [f"{r['method']} {r['path']}" for mock in mocks for r in mock.background]
        expect(not other, f"providers saw no requests but the chat completions: {other or 'none'}")
        log_text = proxy.log_path.read_text(errors="replace")
        hits = [marker for marker in _OFFLINE_MARKERS if marker in log_text]
        expect(not hits, f"no outbound connection attempts in {proxy.log_path.name} ({hits or 'none'})")
        pids = proxy.pids()
        print(f"  proxy processes: {pids}, resident memory {_rss_mib(pids):.0f} MiB", flush=True)
    except Exception as exc:  # report, then fail the check
        failures.append(f"{type(exc).__name__}: {exc}")
        print(f"  [FAIL] {type(exc).__name__}: {exc}", flush=True)
    finally:
        if proxy is not None:
            proxy.stop()
        for mock in mocks:
            mock.stop()

    print(f"== {'PASS' if not failures else 'FAIL'}: litellm {version}, {len(failures)} failure(s)", flush=True)
    for failure in failures:
        print(f"  - {failure}", flush=True)
    return not failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="install if needed, start the proxy, verify it")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV_DIR, help="LiteLLM's virtualenv (%(default)s)")
    parser.add_argument("--workdir", type=Path, default=RESULTS / "litellm-check", help="config and logs (%(default)s)")
    args = parser.parse_args(argv)
    if not args.check:
        parser.print_help()
        return 2
    return 0 if check(args.venv, args.workdir) else 1


if __name__ == "__main__":
    sys.exit(main())
