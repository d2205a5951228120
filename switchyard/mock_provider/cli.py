"""Command-line entry for ``switchyard mock-provider``.

The first stdout line is the contract with whoever launches the process: tests start it with
``--port 0`` and parse the bound port from ``mock-provider NAME listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

from switchyard.mock_provider.apis import APIS
from switchyard.mock_provider.rules import Match, Rule, parse_rule_spec
from switchyard.mock_provider.server import MockProvider, Settings, start


def _rule_arg(spec: str) -> Rule:
    try:
        return parse_rule_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad rule {spec!r}: {exc}") from None


def _bounded_int(low: int, high: int | None = None) -> type[int]:
    """An argparse type whose error names the accepted range instead of a bare 'invalid value'."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {bound}, got {value}")
        return value

    return parse  # type: ignore[return-value]


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain) file")
    parser.add_argument("--tls-key", help="the PEM private key for --tls-cert")
    parser.add_argument("--port", type=_bounded_int(0, 65535), default=0, help="port; 0 picks a free one")
    parser.add_argument("--name", default="mock", help="instance name, echoed in replies and x-mock-provider")
    parser.add_argument(
        "--api",
        choices=sorted(APIS),
        default="openai",
        help="wire API to speak: openai (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) "
        "or anthropic (/v1/messages, /v1/models; Anthropic error and SSE event shapes) "
        "or gemini (.../models/MODEL:generateContent and :streamGenerateContent as SSE; Google error shapes) "
        "or bedrock (/model/MODEL/converse and /converse-stream as AWS event stream; checks the SigV4 signature "
        "against the mock's test credential and answers 403 like AWS when it is wrong); "
        "rules, admin endpoints and recording are the same for all (default: %(default)s)",
    )
    parser.add_argument(
        "--rule",
        dest="rules",
        metavar="SPEC",
        action="append",
        type=_rule_arg,
        default=[],
        help="failure rule, repeatable, first applicable wins: comma-separated key=value pairs; "
        "match keys model, path (prefix), header (name=value); action keys status, latency_ms, "
        "hang, reset, rate (0..1), times, retry_after, error_type (the provider's name for the injected "
        "error: Bedrock's x-amzn-ErrorType such as ModelNotReadyException, Gemini's status, the error type "
        "in OpenAI's and Anthropic's body), completion_tokens (the usage a success reports), "
        "stream_error_after (N: a streamed answer sends N content deltas, then an error event, and ends "
        "without finishing; non-streamed requests succeed). "
        "Example: model=gpt-4,status=502,rate=0.5",
    )
    shortcut = parser.add_mutually_exclusive_group()
    shortcut.add_argument("--status", type=_bounded_int(400, 599), help="answer every request with this error")
    shortcut.add_argument("--hang", action="store_true", help="never answer any request")
    shortcut.add_argument("--reset", action="store_true", help="reset every connection without answering")
    parser.add_argument(
        "--latency-ms", type=_non_negative_float, default=0.0, help="delay every answer by this many ms"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for rule rates (default: %(default)s)")
    parser.add_argument("--stream-chunks", type=_bounded_int(0), default=5, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=_non_negative_float, default=20.0, help="delay between stream chunks")
    parser.add_argument("--log-requests", action="store_true", help="log one line per request to stderr")
    parser.add_argument(
        "--close-idle-after",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="reset a request that arrives on a connection idle at least this long, as a server whose keep-alive "
        "timeout fired just as the request arrived (uvicorn's is 5 s); 0: never (default)",
    )


def rules_from_args(args: argparse.Namespace) -> list[Rule]:
    """``--rule`` rules in order, then the shortcuts merged into one catch-all rule.

    Merging (rather than one rule per shortcut) makes ``--latency-ms 200 --status 503`` mean a slow
    503; as separate rules the latency rule would win and the 503 would never be served.
    """
    rules: list[Rule] = list(args.rules)
    if args.status is not None or args.hang or args.reset or args.latency_ms:
        rules.append(
            Rule(
                match=Match(),
                status=args.status,
                hang=args.hang,
                reset=args.reset,
                latency_ms=args.latency_ms,
            )
        )
    return rules


async def _serve(args: argparse.Namespace) -> int:
    settings = Settings(
        name=args.name,
        stream_chunks=args.stream_chunks,
        chunk_delay_ms=args.chunk_delay_ms,
        log_requests=args.log_requests,
        api=args.api,
        close_idle_after=args.close_idle_after,
    )
    provider = MockProvider(settings, rules_from_args(args), seed=args.seed)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    try:
        runner, port = await start(provider, args.host, args.port, context)
    except OSError as exc:
        print(f"mock-provider {args.name}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host = f"[{args.host}]" if ":" in args.host else args.host
    scheme = "https" if context else "http"
    print(f"mock-provider {args.name} listening on {scheme}://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    return 0


def main(args: argparse.Namespace) -> int:
    if args.log_requests:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:  # a SIGINT that lands before the signal handlers are installed
        return 0
