"""The `switchyard` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from switchyard.addresses import UNIX_PREFIX, address_arg, address_list_arg
from switchyard.config import ConfigError, load_config
from switchyard.mock_provider import cli as mock_cli
from switchyard.tls import TlsFiles, TlsFlagError, add_tls_arguments, check_plaintext, tls_files_from

if TYPE_CHECKING:
    from switchyard.supervisor.options import GatewayOptions

_DESCRIPTION = """\
Switchyard: an LLM traffic gateway. Clients speak the OpenAI API or Anthropic's Messages API; routes
in one YAML file fall back from a failing target to a healthy one inside the same client request, to
OpenAI, Azure OpenAI, OpenAI-compatible servers, Anthropic, Gemini or Bedrock. Envoy carries the
traffic and rewrites each attempt for its target; a Python control plane configures Envoy from the
YAML; an ext_proc service translates between provider APIs and applies per-target body rules.

Start with `switchyard demo` (mock providers, no keys), then `switchyard validate` and `switchyard up`
on your own YAML. `switchyard COMMAND --help` explains each command."""


def _setup_logging(level: str) -> None:
    numeric = getattr(logging, level.upper())
    logging.basicConfig(level=numeric, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # watchfiles reports every event in the watched config's directory at DEBUG, and now and then that there was
    # none: with `--log-level debug` and the log beside the config, each line written was another event.
    logging.getLogger("watchfiles").setLevel(max(numeric, logging.INFO))


def _cmd_validate(args: argparse.Namespace) -> int:
    from controlplane.suffix_check import suffix_warnings
    from switchyard.cli.summary import summarize

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return 2
    print(summarize(config, str(args.config)))
    for warning in suffix_warnings(config, args.config.read_text(encoding="utf-8"), str(args.config)):
        print(warning, file=sys.stderr)
    return 0


def _gateway_options(args: argparse.Namespace, config_path: Path) -> GatewayOptions:
    from switchyard.supervisor.options import GatewayOptions

    return GatewayOptions(
        config_path=config_path,
        admin=args.admin,
        xds=args.xds,
        extproc=args.extproc,
        work_dir=args.work_dir,
        extproc_workers=args.extproc_workers,
        api=args.api,
        envoy_concurrency=args.envoy_concurrency,
        envoy_log_level=args.envoy_log_level,
        log_level=args.log_level,
        log_dir=args.log_dir,
        tls_ca_file=args.tls_ca_file,
        usage_db=args.usage_db,
        insecure=args.insecure,
        rewrite_attempts=not args.no_rewrite,
        drain_timeout=args.drain_timeout,
        drain_notice=args.drain_notice,
    )


def _tls_or_refuse(
    args: argparse.Namespace, command: str, addresses: list[str], flag: str, what: str
) -> tuple[TlsFiles | None, bool]:
    """The --tls-* files (None: plain; `up` has no such flags) and whether to go on; says why on stderr when not."""
    try:
        tls = tls_files_from(args) if command != "up" else None
        check_plaintext(addresses, tls, args.insecure, flag, what)
    except TlsFlagError as error:
        print(f"switchyard {command}: {error}", file=sys.stderr)
        return None, False
    return tls, True


_SERVED_KEYS = "anyone who reaches the port can subscribe to ADS and read the provider API keys"
_SENT_KEYS = "the provider API keys the control plane sends cross the network unencrypted"


def _cmd_up(args: argparse.Namespace) -> int:
    from switchyard.supervisor.gateway import run_up

    if args.xds is not None and not _tls_or_refuse(args, "up", [args.xds], "--xds", _SERVED_KEYS)[1]:
        return 2
    return run_up(_gateway_options(args, args.config))


def _cmd_demo(args: argparse.Namespace) -> int:
    from switchyard.cli.demo import run_demo

    options = _gateway_options(args, Path("<demo>"))
    return run_demo(options)


def _private_files() -> None:
    """Sockets and files this process creates are owner-only: its gRPC port carries provider API keys.

    gRPC creates a Unix socket with the process umask (0777 & ~077: owner-only); files come out 0600.
    """
    os.umask(0o077)


def _cmd_controlplane(args: argparse.Namespace) -> int:
    _private_files()
    from controlplane.server import serve
    from controlplane.translate import TranslateSettings

    tls, go_on = _tls_or_refuse(args, "controlplane", [args.listen], "--listen", _SERVED_KEYS)
    if not go_on:
        return 2
    settings = TranslateSettings(tls_ca_file=args.tls_ca_file, rewrite_attempts=not args.no_rewrite)
    return asyncio.run(serve(args.config, args.listen, settings, args.state_dir, args.api, tls, args.usage_db))


def _cmd_extproc(args: argparse.Namespace) -> int:
    _private_files()
    from extproc.server import run

    return run(args.listen, args.instance, args.drain_timeout)


def _cmd_certs(args: argparse.Namespace) -> int:
    from switchyard.cli.certs import run

    return run(args.dir, args.host, args.days, args.force)


def _show(document: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> int:
    """An API document as the operator asked for it: the raw JSON (--json) or the rendered table."""
    print(json.dumps(document, indent=2) if as_json else render(document))
    return 0


def _cmd_usage(args: argparse.Namespace) -> int:
    from switchyard.cli.status_view import unreachable_api
    from switchyard.cli.usage_view import fetch_usage, render_usage

    params = {"by": args.by}
    params.update({k: v for k in ("client", "route", "target", "model", "since", "until") if (v := getattr(args, k))})
    try:
        document = fetch_usage(args.api, params)
    except ValueError as problem:
        print(f"switchyard usage: {problem}", file=sys.stderr)
        return 2
    except OSError as error:
        print(unreachable_api(args.api, error), file=sys.stderr)
        return 1
    return _show(document, args.json, render_usage)


def _cmd_status(args: argparse.Namespace) -> int:
    from switchyard.cli.status_view import render_status, unreachable_api
    from switchyard.supervisor.controlplane_api import fetch_status

    try:
        document = fetch_status(args.api)
    except OSError as error:
        print(unreachable_api(args.api, error), file=sys.stderr)
        return 1
    return _show(document, args.json, render_status)


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from switchyard.supervisor.bootstrap import BootstrapParams, render_bootstrap
    from switchyard.tls import EnvoyTls, write_sds_files

    files, go_on = _tls_or_refuse(args, "envoy-bootstrap", args.xds.split(","), "--xds", _SENT_KEYS)
    if not go_on:
        return 2
    if files is not None and args.sds_dir is None:
        print("switchyard envoy-bootstrap: --tls-* needs --sds-dir DIR (see --help)", file=sys.stderr)
        return 2
    tls = None if files is None else EnvoyTls(files, args.sds_dir.absolute())
    try:
        text = render_bootstrap(
            BootstrapParams(args.node_id, args.admin, args.xds, tuple(args.extproc), listen=args.listen, tls=tls)
        )
        if tls is not None:
            write_sds_files(tls)
    except (ValueError, OSError) as error:  # e.g. Unix sockets and host names mixed in one cluster
        print(f"switchyard envoy-bootstrap: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0


_ADDRESS = "HOST:PORT or unix:/absolute/path"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not 0 <= value < 86400:
        raise argparse.ArgumentTypeError(f"must be from 0 to 86400 seconds, not {text}")
    return value


_DRAIN_TIMEOUT = 60.0


def _add_drain_options(
    parser: argparse.ArgumentParser, notice: float, stopped: str = "Envoy, the ext_proc and the control plane"
) -> None:
    drain = parser.add_argument_group(
        "planned stop (drain)",
        "On the first Ctrl-C/SIGTERM nothing in flight is lost: GET /healthz on the listener answers 503 at once "
        "(requests still flow) and every response asks its client to reconnect; after --drain-notice the "
        "listener stops accepting connections; requests and SSE streams in flight finish, up to --drain-timeout; "
        f"then {stopped} stop. The log says what it waits for. A second "
        "Ctrl-C/SIGTERM stops everything at once.",
    )
    drain.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="the longest a planned stop waits for requests and streams in flight, counted from the signal; "
        "what is still running then is cut (default: %(default)g)",
    )
    drain.add_argument(
        "--drain-notice",
        type=_seconds,
        default=notice,
        metavar="SECONDS",
        help="how long the listener keeps accepting new connections after /healthz turned 503, so load "
        "balancers take this instance out before it closes; a stop takes at least this long "
        "(default: %(default)g)",
    )


def _add_process_options(parser: argparse.ArgumentParser, drain_notice: float = 5.0) -> None:
    """`up` and `demo`: a node's options plus the control plane's."""
    _add_address_options(parser, xds=True)
    parser.add_argument(
        "--api",
        default="127.0.0.1:18002",
        help="control plane status API, TCP HOST:PORT: GET / (live status page), GET /status, GET /metrics; "
        "it shows no keys (default: %(default)s, loopback)",
    )
    _add_node_options(parser)
    # Benchmark floor only (make bench): Envoy without the per-attempt rewrite. Hidden: it sends the client's
    # model and credentials to providers.
    parser.add_argument("--no-rewrite", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--tls-ca-file",
        help="CA bundle Envoy trusts for https providers (default: /etc/ssl/certs/ca-certificates.crt)",
    )
    parser.add_argument(
        "--usage-db",
        metavar="URL",
        help="where usage (tokens, spend) is kept: a SQLite file path, or postgresql://USER@HOST:PORT/DB (the "
        "password in PGPASSWORD or ~/.pgpass). Default: usage.sqlite3 in the work dir, which a temporary work "
        "dir takes with it on exit: give a path (or --work-dir) to keep usage across runs",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow --xds on a non-loopback TCP address, without TLS (anyone who reaches it can read the provider "
        "API keys); for mTLS run `switchyard controlplane` with --tls-* instead",
    )
    _add_drain_options(parser, drain_notice)


def _add_address_options(parser: argparse.ArgumentParser, xds: bool) -> None:
    addresses = parser.add_argument_group(
        "addresses",
        "Provider API keys are in Envoy's configuration: Envoy's admin (config_dump) and the control plane's gRPC "
        "port can show them. So these default to owner-only Unix sockets in the work dir. "
        f"Each takes {_ADDRESS}; TCP is an explicit opt-in (containers, several hosts).",
    )
    addresses.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="private directory for the sockets, Envoy's bootstrap and the control plane's last good config; "
        "created with mode 0700 if missing, kept on exit (default: a fresh temp dir of mode 0700, removed on exit)",
    )
    addresses.add_argument(
        "--admin",
        type=address_arg,
        metavar="ADDRESS",
        help="Envoy admin (default: unix:DIR/envoy-admin.sock, mode 0600). A TCP HOST:PORT lets anyone who can "
        "reach it read the provider API keys through config_dump: Switchyard warns",
    )
    if xds:
        addresses.add_argument(
            "--xds",
            type=address_arg,
            metavar="ADDRESS",
            help="control plane gRPC: ADS, which carries the keys, and the attempt log (default: unix:DIR/xds.sock, "
            "owner-only). A TCP HOST:PORT lets anyone who can reach it subscribe and read the keys: `up` warns",
        )
    addresses.add_argument(
        "--extproc",
        type=address_arg,
        metavar="ADDRESS",
        help="ext_proc gRPC (default: unix:DIR/extproc.sock, owner-only). With --extproc-workers N: "
        "DIR/extproc-1.sock … extproc-N.sock, or for HOST:PORT the port and the N-1 after it",
    )


def _add_node_options(parser: argparse.ArgumentParser) -> None:
    """What every gateway node runs: the ext_procs and Envoy."""
    parser.add_argument(
        "--extproc-workers",
        type=_positive,
        default=2,
        help="ext_proc processes, one address each (see --extproc); with two or more, a crash of one costs only "
        "the translated attempts it held (default: %(default)s)",
    )
    parser.add_argument("--envoy-concurrency", type=int, default=2, help="Envoy worker threads (default: %(default)s)")
    parser.add_argument("--envoy-log-level", default="warning", help="Envoy log level (default: %(default)s)")
    parser.add_argument("--log-dir", type=Path, help="write each process's log to DIR/NAME.log instead of the terminal")


def _tcp_address(text: str) -> str:
    """An argparse `type=` for addresses that must be TCP (a client listener)."""
    address = address_arg(text)
    if address.startswith(UNIX_PREFIX):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT (the listener is TCP)")
    return address


def _cmd_node(args: argparse.Namespace) -> int:
    from switchyard.supervisor.gateway import run_node
    from switchyard.supervisor.options import NodeOptions

    tls, go_on = _tls_or_refuse(args, "node", args.controlplane.split(","), "--controlplane", _SENT_KEYS)
    if not go_on:
        return 2
    return run_node(
        NodeOptions(
            xds=args.controlplane,
            tls=tls,
            insecure=args.insecure,
            name=args.name,
            listen=args.listen,
            admin=args.admin,
            extproc=args.extproc,
            work_dir=args.work_dir,
            extproc_workers=args.extproc_workers,
            envoy_concurrency=args.envoy_concurrency,
            envoy_log_level=args.envoy_log_level,
            log_level=args.log_level,
            log_dir=args.log_dir,
            drain_timeout=args.drain_timeout,
            drain_notice=args.drain_notice,
        )
    )


_LOG_LEVELS = ["debug", "info", "warning", "error"]
_LOG_LEVEL_HELP = (
    "how much Switchyard's own processes log (the supervisor, control plane, ext_procs); Envoy's own log has "
    "--envoy-log-level (default: info)"
)


def _log_level_option() -> argparse.ArgumentParser:
    """`--log-level` for every subcommand as well, so `switchyard up x.yaml --log-level debug` works; its default
    is left to the top-level flag (SUPPRESS), so a level given before the subcommand is not overwritten."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--log-level", choices=_LOG_LEVELS, default=argparse.SUPPRESS, help=_LOG_LEVEL_HELP)
    return parent


def _subcommand(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, parents=[_log_level_option()], **kwargs)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default="info", choices=_LOG_LEVELS, help=_LOG_LEVEL_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _subcommand(
        sub,
        "validate",
        help="check a routing YAML and summarise it",
        description=(
            "Check a routing YAML. Exit 0 and print a summary, or exit 2 and print every problem with its line."
        ),
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    p.set_defaults(func=_cmd_validate)

    p = _subcommand(
        sub,
        "up",
        help="run the gateway (control plane, ext_proc, Envoy) on a routing YAML",
        description=(
            "Start the control plane, the ext_proc and Envoy as supervised processes; wait until the listener answers; "
            "on Ctrl-C/SIGTERM drain (see below), then stop them all. Edits to the YAML (or SIGHUP) reload it live. "
            "An invalid config starts nothing."
        ),
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    _add_process_options(p)
    p.set_defaults(func=_cmd_up)

    p = _subcommand(
        sub,
        "node",
        help="run one gateway node (ext_proc, Envoy) configured by a control plane elsewhere",
        description="One gateway node: Envoy and the ext_procs it needs, supervised, restarted and drained like "
        "`up`, configured over ADS by the control plane at --controlplane (`switchyard controlplane`, or `up`'s). "
        "Several nodes can share one control plane; its /status and `switchyard status` list them. The node has "
        "no YAML: it validates nothing, and edits are made at the control plane. It waits until its listener "
        "answers GET /healthz with 200, then prints where it listens. With several control-plane replicas "
        "(--controlplane A,B) the node takes its config from the first that answers and moves to the next "
        "when it goes away (within about a second when its process dies, 5 s when its host vanishes), and "
        "streams its attempt log to every replica, so all of them take the same health decisions. Between "
        "hosts, give --tls-cert/--tls-key/--tls-ca: ADS and the attempt log then run over mutual TLS.",
    )
    p.add_argument(
        "--controlplane",
        type=address_list_arg,
        required=True,
        metavar="ADDRESS[,ADDRESS...]",
        help=f"the control plane's gRPC address (ADS and the attempt log), {_ADDRESS}; several replicas "
        "separated by commas, in order of preference (required)",
    )
    p.add_argument(
        "--name",
        default=socket.gethostname(),
        help="this node's name (its xDS node id), unique per control plane (default: the host name, %(default)s)",
    )
    p.add_argument(
        "--listen",
        type=_tcp_address,
        metavar="HOST:PORT",
        help="where this node takes client requests, instead of the YAML's `listen` (e.g. several nodes on one "
        "host); the control plane sends this node its listener on this address",
    )
    add_tls_arguments(p, "a control plane")
    _add_address_options(p, xds=False)
    _add_node_options(p)
    _add_drain_options(p, 5.0, stopped="Envoy and the ext_procs")
    p.set_defaults(func=_cmd_node)

    p = _subcommand(
        sub,
        "demo",
        help="run the gateway on the bundled demo config with mock providers (no keys, no network)",
        description="`up` on a copy of examples/demo.yaml (written to demo.yaml in the work dir, so your edits "
        "reload live and leave the repository alone) with two built-in mock providers: an OpenAI one whose "
        "primary target fails half of its requests, so fallback shows on the requests it prints, and an "
        "Anthropic one that is overloaded (529) a third of the time. Ports come from the environment: "
        "SWITCHYARD_DEMO_PORT (the gateway listener, default 8080), SWITCHYARD_DEMO_MOCK_PORT (the OpenAI "
        "mock, 18081) and SWITCHYARD_DEMO_ANTHROPIC_PORT (the Anthropic mock, 18082). No load balancer sits in "
        "front of a demo, so --drain-notice defaults to 0 here.",
    )
    _add_process_options(p, drain_notice=0.0)
    p.set_defaults(func=_cmd_demo)

    p = _subcommand(
        sub,
        "status",
        help="show every route and target: health and why, priority, weight, latency, requests, failures",
        description="Print the control plane's view of the gateway as a table (GET /status of its API).",
    )
    _api_flags(p)
    p.set_defaults(func=_cmd_status)

    p = _subcommand(
        sub,
        "usage",
        help="show tokens and spend per client, route, target, model and day",
        description="Print the usage the control plane recorded (GET /usage of its API: every answer's prompt and "
        "completion tokens, the prompt tokens read from and written to the prompt cache, priced with the targets' "
        "`price`), grouped and filtered as asked.",
    )
    _api_flags(p)
    p.add_argument(
        "--by",
        default="client,route,target,model,day",
        help="group by these, comma-separated, among client, route, target, model, day (default: %(default)s)",
    )
    for name in ("client", "route", "target", "model"):
        p.add_argument(f"--{name}", help=f"only this {name}")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="from this UTC day on (inclusive)")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="up to this UTC day (inclusive)")
    p.set_defaults(func=_cmd_usage)

    p = _subcommand(
        sub,
        "mock-provider",
        help="run the fake provider (OpenAI, Anthropic, Gemini or Bedrock API) used by the demo and tests",
        description="A fake LLM provider speaking OpenAI's, Anthropic's, Gemini's or Bedrock's API (--api), with "
        "configurable failures (--rule), that records the requests it gets.",
    )
    mock_cli.configure_parser(p)
    p.set_defaults(func=mock_cli.main)

    p = _subcommand(
        sub,
        "controlplane",
        help="run only the xDS control plane (for container deployments)",
        description="Serve ADS and the attempt log to Envoy; reload the YAML on edit/SIGHUP. Runs with umask 077: "
        "a Unix socket it listens on and the files it writes are owner-only. On Ctrl-C/SIGTERM it stops within "
        "about a second: it stops taking new streams, gives open ones a second (attempt-log batches land), then "
        "closes the ADS streams; Envoy keeps the config it has and serves on. A second signal stops at once. "
        "Several replicas on the same YAML can serve one fleet (`switchyard node --controlplane A,B`): config "
        "versions are hashes of the content, so replicas agree on them, and every node streams its attempts to "
        "every replica, so they take the same health decisions.",
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    p.add_argument(
        "--listen",
        type=address_arg,
        required=True,
        metavar="ADDRESS",
        help=f"gRPC address, {_ADDRESS} (required). It serves ADS, which carries provider API keys: prefer a Unix "
        "socket (created owner-only); HOST:PORT only where Envoy runs elsewhere (containers, several hosts)",
    )
    p.add_argument(
        "--tls-ca-file",
        default="/etc/ssl/certs/ca-certificates.crt",
        help="CA bundle Envoy uses to verify https providers (default: %(default)s)",
    )
    p.add_argument("--no-rewrite", action="store_true", help=argparse.SUPPRESS)  # benchmark floor only
    p.add_argument(
        "--api",
        help="serve the live status page (GET /), GET /status, GET /usage and GET /metrics over HTTP here "
        "(e.g. 127.0.0.1:18002)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        help="keep the last good config here; a restart while the YAML holds an invalid edit then serves it "
        "instead of refusing to start. Usage (tokens, spend) is kept here too, in usage.sqlite3, unless --usage-db",
    )
    p.add_argument(
        "--usage-db",
        metavar="URL",
        help="where usage is kept: postgresql://USER@HOST:PORT/DB (psycopg; shared by control-plane replicas, "
        "put the password in PGPASSWORD or ~/.pgpass, not here) or a SQLite file path "
        "(default: usage.sqlite3 in --state-dir, else in memory)",
    )
    add_tls_arguments(p, "listening")
    p.set_defaults(func=_cmd_controlplane)

    p = _subcommand(
        sub,
        "extproc",
        help="run only the translation service: provider-API translation and body rules (for containers)",
        description="The Envoy ext_proc that translates the upstream attempts whose target speaks another API "
        "than the client, and applies a target's body rules (`body:` in the YAML). Paths and credentials are "
        "rewritten by Envoy itself (Lua), not here. On Ctrl-C/SIGTERM it drains: its gRPC health turns "
        "NOT_SERVING, it takes no new streams, and the attempts in flight finish (up to --drain-timeout); "
        "a second signal stops at once.",
    )
    p.add_argument(
        "--listen",
        type=address_arg,
        required=True,
        metavar="ADDRESS",
        help=f"gRPC address, {_ADDRESS} (required; a Unix socket is created owner-only)",
    )
    p.add_argument("--instance", help="name for logs (default: host:pid)")
    p.add_argument(
        "--drain-timeout",
        type=_seconds,
        default=_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help="on Ctrl-C/SIGTERM, the longest the attempts in flight get to finish (default: %(default)g)",
    )
    p.set_defaults(func=_cmd_extproc)

    p = _subcommand(
        sub,
        "envoy-bootstrap",
        help="print the Envoy bootstrap for given addresses (for containers)",
        description=f"Render envoy/bootstrap.yaml with the given addresses to stdout. Each address is {_ADDRESS}. "
        "Envoy's admin shows provider API keys (config_dump): give it a Unix socket (Envoy creates it mode 0600) "
        "unless a TCP port is reachable only by whom may read the keys.",
    )
    p.add_argument("--node-id", default="switchyard-envoy", help="xDS node id (default: %(default)s)")
    p.add_argument("--admin", type=address_arg, required=True, metavar="ADDRESS", help="Envoy admin address (required)")
    p.add_argument(
        "--xds",
        type=address_list_arg,
        required=True,
        metavar="ADDRESS[,ADDRESS...]",
        help="control plane gRPC address; several replicas separated by commas, in order of preference: ADS goes "
        "to the first that answers, the attempt log to every one (required)",
    )
    p.add_argument(
        "--extproc",
        type=address_arg,
        action="append",
        required=True,
        metavar="ADDRESS",
        help="ext_proc gRPC address (required); repeat for several",
    )
    p.add_argument(
        "--listen",
        type=_tcp_address,
        metavar="HOST:PORT",
        help="this node's own listener address, put in the node metadata; the control plane then sends this "
        "Envoy its listener on it instead of the YAML's `listen`",
    )
    add_tls_arguments(p, "a control plane")
    p.add_argument(
        "--sds-dir",
        type=Path,
        metavar="DIR",
        help="with --tls-*: where to write the two small SDS files that point Envoy at the PEM files, so Envoy "
        "reloads them when they change (a writable directory Envoy can read, e.g. next to the bootstrap)",
    )
    p.set_defaults(func=_cmd_bootstrap)

    p = _subcommand(
        sub,
        "certs",
        help="make a private CA and a certificate per host, for mTLS between a fleet's hosts",
        description="Write DIR/ca.crt and DIR/ca.key (0600), and for each --host DIR/NAME.crt and DIR/NAME.key "
        "(0600): a certificate for NAME (a DNS name SAN, or an IP address SAN when NAME is one), usable as "
        "server and client (EKU serverAuth + clientAuth), signed by the CA. Running again keeps the CA and "
        "issues the named hosts' certificates anew (a renewal); --force makes a new CA. For demos, compose and "
        "small fleets; bring your own PEM files otherwise.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="where the files go (created, mode 0700, if missing)")
    p.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="NAME",
        help="a host's name as the others reach it (DNS name or IP address); repeat for each host. Loopback "
        "names (localhost, 127.0.0.1) only if you name them",
    )
    p.add_argument("--days", type=_positive, default=365, help="host certificate validity (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="make a new CA even if DIR has one")
    p.set_defaults(func=_cmd_certs)
    # Exact flags only: argparse would take `--tls-ca` on `up` as its `--tls-ca-file` (the providers' CA
    # bundle), silently, where a fleet's flag was meant.
    for command in (parser, *sub.choices.values()):
        command.allow_abbrev = False
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


def _api_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the commands that read the control plane's status API (`status`, `usage`)."""
    p.add_argument("--api", default="127.0.0.1:18002", help="control plane API address (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the raw JSON document instead of a table")
