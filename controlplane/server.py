"""The control plane process: load → snapshot → tell Envoy, again on every edit.

Reloads come from a file watch and from SIGHUP. A config that fails validation (or produces an
inconsistent snapshot) is logged with the same messages as `switchyard validate` and changes nothing:
the version in force keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine
from pathlib import Path
from types import MappingProxyType
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc
from watchfiles import awatch

from controlplane.ads import AdsService
from controlplane.health import DEFAULT_POLICY, HealthJudge, TargetPolicy
from controlplane.live_state import LiveState
from controlplane.snapshot import InconsistentSnapshotError, Snapshot, snapshot_of
from controlplane.store import SnapshotStore
from controlplane.strategies import LIVE_STRATEGIES
from controlplane.target_keys import target_key
from controlplane.telemetry import admin_api, attempt_log
from controlplane.telemetry.attempt_log import AttemptLogService
from controlplane.telemetry.status import ProcessStart, ReloadResult, build_status
from controlplane.telemetry.target_stats import TargetStatsRecorder
from controlplane.tls_server import ReloadingCredentials, TlsFilesError
from controlplane.translate import DEFAULT_SETTINGS, TranslateSettings
from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.store import UsageStore, open_store
from switchyard.addresses import bind_grpc, split_address
from switchyard.config import ConfigError, ConfigProblem, load_config_text
from switchyard.tls import TlsFiles

FILE_CHANGED = "file changed"  # the reason of a reload that the file watch or the poll asked for

log = logging.getLogger("switchyard.controlplane")

GRPC_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Envoy pings its control planes every few seconds (the bootstrap's connection_keepalive) to notice one
    # whose host vanished. gRPC's default answers pings on a quiet connection with GOAWAY too_many_pings.
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
    ("grpc.http2.max_ping_strikes", 0),
]
WEIGHT_UPDATE_S = 1.0  # how often least_latency rankings are looked at (pushed only when they change)


class ControlPlane:
    def __init__(
        self,
        config_path: Path,
        settings: TranslateSettings = DEFAULT_SETTINGS,
        state_dir: Path | None = None,
        usage_store: UsageStore | None = None,
    ) -> None:
        self.config_path = config_path
        self.settings = settings
        self.store = SnapshotStore()
        self.ads = AdsService(self.store)
        self._reload_lock = asyncio.Lock()
        # The last config that was applied, kept so a restarted control plane can serve it even while the
        # file holds an invalid edit (otherwise a crash during a bad edit would take the gateway down).
        self._last_good = None if state_dir is None else state_dir / "last-good.yaml"
        # A last good config left by an earlier run means this is a restart: the status API says so.
        self.start = ProcessStart(time.time(), restarted=self._last_good is not None and self._last_good.is_file())
        self._policies: dict[str, TargetPolicy] = {}
        self._names: dict[str, str] = {}
        self._live_changed = asyncio.Event()
        self._applied_text = ""
        self.health = HealthJudge(self._policy_of, self._live_changed.set)
        self.recorder = TargetStatsRecorder(self._policy_of, self.health)
        # What the YAML held when last read: the file watch and the poll behind it both see one edit, and an
        # edit is judged (and logged) once.
        self._read_text: str | None = None
        self.usage = UsageAccounting(usage_store or open_store(None, None), self._live_changed.set)
        self.attempt_log = AttemptLogService(self.recorder, usage=self.usage)
        self.ads.nodes.on_change = self._live_changed.set
        self.attempt_log.on_nodes_changed = self._live_changed.set
        self.last_reload: ReloadResult | None = None

    def _policy_of(self, key: str) -> TargetPolicy:
        return self._policies.get(key, DEFAULT_POLICY)

    def live_state(self) -> LiveState:
        now = time.time()
        return LiveState(
            out_of_service=frozenset(self.health.out_of_service(now)),
            latency_s=MappingProxyType(dict(self.recorder.warm_latencies())),
            refused_clients=MappingProxyType(self.usage.refused(now)),
            nodes=self.live_nodes(),
        )

    def live_nodes(self) -> int:
        """Nodes configured here, and nodes logging here whose ADS stream is at another replica: every replica
        counts the whole fleet (once a node has logged an attempt), so all divide client limits alike."""
        return max(1, len(self.ads.nodes.live_names() | set(self.attempt_log.logging_nodes)))

    async def keep_live_state_current(self) -> None:
        """Push endpoints whenever what they depend on changes: a target going out of service or coming back,
        or a least_latency ranking that moved. Health changes wake this at once; latency is
        looked at every WEIGHT_UPDATE_S, so a flood of attempts costs one comparison, not one push each."""
        while True:
            self._live_changed.clear()
            current = self.store.current
            live = self.live_state()
            if current is not None and live.steering(current.config) != current.live.steering(current.config):
                await self._republish(live)
            await self._sleep_until_live_change(current)

    async def _sleep_until_live_change(self, current: Snapshot | None) -> None:
        now = time.time()
        deadlines = [out.until - now for out in self.health.out_of_service(now).values()]
        deadlines.extend(until - now for until in self.usage.refused(now).values())
        if current is not None and any(r.strategy in LIVE_STRATEGIES for r in current.config.routes):
            deadlines.append(WEIGHT_UPDATE_S)
        wait = max(0.05, min(deadlines)) if deadlines else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._live_changed.wait(), wait)

    async def _republish(self, live: LiveState) -> None:
        async with self._reload_lock:
            current = self.store.current
            if current is None:
                return
            self._log_health_changes(current.live, live)
            snapshot = await asyncio.to_thread(snapshot_of, current.config, self.settings, live, current.config_version)
            await self.apply(snapshot, self._applied_text)

    def _log_health_changes(self, before: LiveState, after: LiveState) -> None:
        now = time.time()
        marks = self.health.out_of_service(now)
        for key in sorted(after.out_of_service - before.out_of_service):
            mark = marks.get(key)
            if mark is not None:
                name = self._names.get(key, key)
                log.warning("%s out of service (%s): %s, for %.1fs", name, mark.state, mark.why, mark.until - now)
        for key in sorted(before.out_of_service - after.out_of_service):
            log.info("%s back in service", self._names.get(key, key))

    def status(self) -> dict[str, Any]:
        return build_status(
            self.store.current,
            self.recorder,
            self.last_reload,
            start=self.start,
            nodes=self.ads.nodes.records(),
            attempts_by_node=self.attempt_log.attempts_by_node,
            logging_nodes=self.attempt_log.logging_nodes,
            telemetry=self.telemetry(),
            guardrails=self.attempt_log.guardrails.status(),
        )

    def telemetry(self) -> dict[str, int]:
        """What this replica could not count (issue 21): never silently lost, shown by `switchyard status`."""
        return {
            "answers_not_counted": self.attempt_log.not_counted["answers"],
            "usage_not_stored": self.usage.not_stored,
            "queued_entries": self.attempt_log.queued_entries,
        }

    async def _load(self, path: Path, source: str | None = None) -> tuple[Snapshot, str]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(str(path), [ConfigProblem(None, "", f"cannot read the file: {error.strerror}")]) from None
        if path == self.config_path:
            self._read_text = text
        return await asyncio.to_thread(self._translate, text, source or str(path), self.live_state()), text

    def _translate(self, text: str, source: str, live: LiveState) -> Snapshot:
        """Validation and translation, off the event loop (in a worker thread): about 1 s per 100 routes for a
        new config, during which the loop still takes the access logs, answers ADS and judges health (the
        thread holds the GIL 5 ms at a time). One translation at a time: every caller holds the reload lock, or
        runs before anything else has started (the first load)."""
        return snapshot_of(load_config_text(text, source=source), self.settings, live)

    async def initial_snapshot(self) -> tuple[Snapshot, str]:
        """First load; without a saved last good config, errors propagate and the process refuses to start."""
        try:
            return await self._load(self.config_path)
        except ConfigError as error:
            if self._last_good is None or not self._last_good.is_file():
                raise
            log.error(
                "%s is invalid; serving the last good config saved at %s until it is fixed:\n%s",
                self.config_path,
                self._last_good,
                error.render(),
            )
            return await self._load(self._last_good, source=f"{self._last_good} (last good copy of {self.config_path})")

    async def apply(self, snapshot: Snapshot, text: str) -> None:
        routes = snapshot.config.routes
        self._policies = {target_key(r, t): TargetPolicy.of(r) for r in routes for t in r.targets}
        self._names = {target_key(r, t): f"{r.model}/{t.display_name}" for r in routes for t in r.targets}
        config_changed = text != self._applied_text
        if config_changed:  # not on a live-state push, which rebuilds from the config in force
            self.usage.configure(snapshot.config)
        self._applied_text = text
        await self.store.set(snapshot)
        if config_changed:
            self._save_last_good(text)
            log.info(
                "config version %s in force: %d route(s), %d target(s)",
                snapshot.config_version,
                snapshot.route_count,
                snapshot.target_count,
            )

    def _save_last_good(self, text: str) -> None:
        if self._last_good is None:
            return
        temporary = self._last_good.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(0o600)  # the YAML may hold literal keys
        temporary.replace(self._last_good)

    async def reload(self, reason: str) -> bool:
        async with self._reload_lock:
            current = self.store.current
            if reason == FILE_CHANGED and self._unchanged_since_read():
                log.debug("config reload (%s): same content as last read, already judged", reason)
                return self.last_reload is None or self.last_reload.ok
            try:
                snapshot, text = await self._load(self.config_path)
            except ConfigError as error:
                self.last_reload = ReloadResult(False, time.time(), reason, error.render())
                log.error(
                    "config reload (%s) rejected; version %s stays in force:\n%s",
                    reason,
                    current.config_version if current else "none",
                    error.render(),
                )
                return False
            except InconsistentSnapshotError as error:
                self.last_reload = ReloadResult(False, time.time(), reason, str(error))
                log.error("config reload (%s) produced an inconsistent snapshot, not applied: %s", reason, error)
                return False
            self.last_reload = ReloadResult(True, time.time(), reason)
            if current is not None and snapshot.content_hash == current.content_hash:
                # Budgets and token limits live here only: they change without changing Envoy's resources.
                if text != self._applied_text:
                    self.usage.configure(snapshot.config)
                    self._applied_text = text
                    self._save_last_good(text)
                log.info("config reload (%s): no change for Envoy", reason)
                return True
            log.info("config reload (%s): applying version %s", reason, snapshot.version)
            await self.apply(snapshot, text)
            return True

    def _unchanged_since_read(self) -> bool:
        try:
            return self.config_path.read_text(encoding="utf-8") == self._read_text
        except OSError:
            return False  # the reload reports it

    def file_signature(self) -> tuple[int, int, int] | None:
        try:
            stat = self.config_path.stat()  # follows symlinks: a ConfigMap-style symlink swap changes it
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    async def poll_file(self, baseline: tuple[int, int, int] | None, interval: float = 1.0) -> None:
        """Backstop for the watch: catches edits made before the watch started and symlink swaps it cannot see.

        `baseline` is taken before the first load, so nothing written after that moment can be missed.
        """
        seen = baseline
        while True:
            await asyncio.sleep(interval)
            current = self.file_signature()
            if current != seen:
                seen = current
                await self.reload(FILE_CHANGED)

    async def watch_file(self) -> None:
        """Watch the directory, not the file: editors replace files by rename, which a file watch misses."""
        target = self.config_path.resolve()

        def is_config(_: object, path: str) -> bool:
            return Path(path).resolve() == target

        async for _ in awatch(target.parent, watch_filter=is_config, debounce=150, step=50, recursive=False):
            await self.reload(FILE_CHANGED)


async def serve(
    config_path: Path,
    listen: str,
    settings: TranslateSettings = DEFAULT_SETTINGS,
    state_dir: Path | None = None,
    api: str | None = None,
    tls: TlsFiles | None = None,
    usage_db: str | None = None,
) -> int:
    credentials = None
    if tls is not None:
        try:
            credentials = ReloadingCredentials(tls).credentials()
        except (OSError, TlsFilesError) as error:
            log.error("refusing to start: the TLS files cannot be used: %s", error)
            return 2
    try:
        store = open_store(usage_db, state_dir)
    except Exception as error:
        log.error("refusing to start: the usage store cannot be opened: %s", error)
        return 2
    plane = ControlPlane(config_path, settings, state_dir, store)
    log.info("usage store: %s", store.description)
    baseline = plane.file_signature()
    try:
        snapshot, text = await plane.initial_snapshot()
    except ConfigError as error:
        log.error("refusing to start:\n%s", error.render())
        return 2
    server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(plane.ads, server)
    attempt_log.add_to_server(plane.attempt_log, server)
    if not bind_grpc(server, listen, credentials):
        log.error("cannot listen on %s", listen)
        return 2
    await server.start()
    log.info(
        "control plane serving ADS and the attempt log on %s%s (config %s)",
        listen,
        " over mTLS" if credentials is not None else "",
        config_path,
    )
    api_runner = None
    if api:
        host, api_port = split_address(api)
        api_runner = await admin_api.start(plane.status, host, api_port, plane.usage)
        log.info("status API on http://%s (GET / is the live status page; GET /status, GET /usage, GET /metrics)", api)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # asyncio keeps only weak references to tasks: a reload waiting for the lock must be held here.
    reloads: set[asyncio.Task[bool]] = set()

    def reload_on_sighup() -> None:
        task = asyncio.create_task(plane.reload("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_on_sighup)

    first_apply = asyncio.create_task(plane.apply(snapshot, text))
    tasks = [
        first_apply,
        asyncio.create_task(plane.watch_file()),
        asyncio.create_task(_after(first_apply, plane.poll_file(baseline))),
        asyncio.create_task(_after(first_apply, plane.keep_live_state_current())),
        asyncio.create_task(_after(first_apply, plane.usage.run())),
        asyncio.create_task(plane.attempt_log.run()),
    ]
    await stop.wait()
    stop.clear()
    # Short but orderly: no new streams; open ones (ADS, the attempt log) get a second, so attempt-log
    # batches on their way land, then are closed. Envoy keeps the config it has and reconnects to whoever
    # serves next. A second signal skips the second.
    log.info("control plane stopping: closing ADS and attempt-log streams (Envoy keeps its config)")
    closing = asyncio.create_task(server.stop(grace=1.0))
    second_signal = asyncio.create_task(stop.wait())
    await asyncio.wait((closing, second_signal), return_when=asyncio.FIRST_COMPLETED)
    if not closing.done():
        await server.stop(grace=None)
        await closing
    second_signal.cancel()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if api_runner is not None:
        await api_runner.cleanup()
    await plane.usage.close()  # the last answers logged are written
    log.info("control plane stopped")
    return 0


async def _after(first: asyncio.Task[None], then: Coroutine[Any, Any, None]) -> None:
    """Reloads must not overtake the first apply: the first snapshot is the baseline they replace."""
    await first
    await then
