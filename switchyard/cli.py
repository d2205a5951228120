"""The `switchyard` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from switchyard.config import ConfigError, load_config
from switchyard.mock_provider import cli as mock_cli

if TYPE_CHECKING:
    from switchyard.gateway import GatewayOptions

_DESCRIPTION = """\
Switchyard: an LLM traffic gateway. Clients speak the OpenAI API; routes in one YAML file fall back
from a failing target to a healthy one inside the same client request (Envoy data plane, Python
control plane and per-attempt rewrite)."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _cmd_validate(args: argparse.Namespace) -> int:
    from switchyard.summary import summarize

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return 2
    print(summarize(config, str(args.config)))
    return 0


def _gateway_options(args: argparse.Namespace, config_path: Path) -> GatewayOptions:
    from switchyard.gateway import GatewayOptions

    return GatewayOptions(
        config_path=config_path,
        admin=args.admin,
        xds=args.xds,
        extproc=args.extproc,
        extproc_workers=args.extproc_workers,
        api=args.api,
        envoy_concurrency=args.envoy_concurrency,
        envoy_log_level=args.envoy_log_level,
        log_level=args.log_level,
        log_dir=args.log_dir,
        tls_ca_file=args.tls_ca_file,
        rewrite_attempts=not args.no_rewrite,
    )


def _cmd_up(args: argparse.Namespace) -> int:
    from switchyard.gateway import run_up

    return run_up(_gateway_options(args, args.config))


def _cmd_demo(args: argparse.Namespace) -> int:
    from switchyard.demo import run_demo

    options = _gateway_options(args, Path("<demo>"))
    return run_demo(options)


def _cmd_controlplane(args: argparse.Namespace) -> int:
    from controlplane.server import serve
    from controlplane.translate import TranslateSettings

    settings = TranslateSettings(tls_ca_file=args.tls_ca_file, rewrite_attempts=not args.no_rewrite)
    return asyncio.run(serve(args.config, args.listen, settings, args.state_dir, args.api))


def _cmd_extproc(args: argparse.Namespace) -> int:
    from extproc.server import serve

    return asyncio.run(serve(args.listen, args.controlplane, args.instance))


def _cmd_status(args: argparse.Namespace) -> int:
    from switchyard.status_view import fetch_status, render_status

    try:
        document = fetch_status(args.api)
    except OSError as error:
        print(f"cannot reach the control plane API at {args.api}: {error}", file=sys.stderr)
        return 1
    if args.json:
        import json

        print(json.dumps(document, indent=2))
    else:
        print(render_status(document))
    return 0


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from switchyard.bootstrap import BootstrapParams, render_bootstrap

    print(render_bootstrap(BootstrapParams(args.node_id, args.admin, args.xds, tuple(args.extproc))))
    return 0


def _add_process_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin", default="127.0.0.1:9901", help="Envoy admin address (default: %(default)s, loopback)"
    )
    parser.add_argument("--xds", default="127.0.0.1:18000", help="control plane gRPC address (default: %(default)s)")
    parser.add_argument("--extproc", default="127.0.0.1:18001", help="ext_proc gRPC address (default: %(default)s)")
    parser.add_argument(
        "--api",
        default="127.0.0.1:18002",
        help="control plane status API: GET /status, GET /metrics (default: %(default)s, loopback)",
    )
    parser.add_argument(
        "--extproc-workers",
        type=int,
        default=1,
        help="ext_proc processes, on the --extproc port and the ones after it (default: %(default)s)",
    )
    parser.add_argument("--envoy-concurrency", type=int, default=2, help="Envoy worker threads (default: %(default)s)")
    parser.add_argument("--envoy-log-level", default="warning", help="Envoy log level (default: %(default)s)")
    parser.add_argument("--log-dir", type=Path, help="write each process's log to DIR/NAME.log instead of the terminal")
    # Benchmark floor only (make bench): Envoy without the per-attempt rewrite. Hidden: it sends the client's
    # model and credentials to providers.
    parser.add_argument("--no-rewrite", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--tls-ca-file",
        help="CA bundle Envoy trusts for https providers (default: /etc/ssl/certs/ca-certificates.crt)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=_DESCRIPTION)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check a routing YAML and summarise it",
        description=(
            "Check a routing YAML. Exit 0 and print a summary, or exit 2 and print every problem with its line."
        ),
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "up",
        help="run the gateway (control plane, ext_proc, Envoy) on a routing YAML",
        description=(
            "Start the control plane, the ext_proc and Envoy as supervised processes; wait until the listener answers; "
            "stop them all on Ctrl-C/SIGTERM. Edits to the YAML (or SIGHUP) reload it live. An invalid config "
            "starts nothing."
        ),
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    _add_process_options(p)
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser(
        "demo",
        help="run the gateway on a bundled config with a mock provider (no keys, no network)",
        description="`up` on a bundled example config with a built-in mock provider whose primary "
        "target fails half of its requests, so fallback shows on the curl it prints.",
    )
    _add_process_options(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "status",
        help="show every route and target: health and why, priority, weight, latency, requests, failures",
        description="Print the control plane's view of the gateway as a table (GET /status of its API).",
    )
    p.add_argument("--api", default="127.0.0.1:18002", help="control plane API address (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the raw JSON document instead of a table")
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser(
        "mock-provider",
        help="run the fake provider (OpenAI- or Anthropic-shaped) used by the demo and tests",
        description="A fake LLM provider, OpenAI's API or Anthropic's (--api), with configurable failures that "
        "records requests.",
    )
    mock_cli.configure_parser(p)
    p.set_defaults(func=mock_cli.main)

    p = sub.add_parser(
        "controlplane",
        help="run only the xDS control plane (for container deployments)",
        description="Serve ADS to Envoy and the rewrite table to ext_procs; reload the YAML on edit/SIGHUP.",
    )
    p.add_argument("config", type=Path, help="the routing YAML")
    p.add_argument("--listen", default="127.0.0.1:18000", help="gRPC address (default: %(default)s)")
    p.add_argument(
        "--tls-ca-file",
        default="/etc/ssl/certs/ca-certificates.crt",
        help="CA bundle Envoy uses to verify https providers (default: %(default)s)",
    )
    p.add_argument("--no-rewrite", action="store_true", help=argparse.SUPPRESS)  # benchmark floor only
    p.add_argument("--api", help="serve GET /status and GET /metrics over HTTP here (e.g. 127.0.0.1:18002)")
    p.add_argument(
        "--state-dir",
        type=Path,
        help="keep the last good config here; a restart while the YAML holds an invalid edit then serves it "
        "instead of refusing to start",
    )
    p.set_defaults(func=_cmd_controlplane)

    p = sub.add_parser(
        "extproc",
        help="run only the per-attempt rewrite service (for container deployments)",
        description="The Envoy ext_proc that rewrites every upstream attempt for its target.",
    )
    p.add_argument("--listen", default="127.0.0.1:18001", help="gRPC address (default: %(default)s)")
    p.add_argument("--controlplane", default="127.0.0.1:18000", help="control plane address (default: %(default)s)")
    p.add_argument("--instance", help="name for logs (default: host:pid)")
    p.set_defaults(func=_cmd_extproc)

    p = sub.add_parser(
        "envoy-bootstrap",
        help="print the Envoy bootstrap for given addresses (for containers)",
        description="Render envoy/bootstrap.yaml with the given addresses to stdout.",
    )
    p.add_argument("--node-id", default="switchyard-envoy")
    p.add_argument("--admin", default="127.0.0.1:9901")
    p.add_argument("--xds", default="127.0.0.1:18000")
    p.add_argument("--extproc", action="append", default=None, help="ext_proc address; repeat for several")
    p.set_defaults(func=_cmd_bootstrap)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "envoy-bootstrap" and args.extproc is None:
        args.extproc = ["127.0.0.1:18001"]
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
