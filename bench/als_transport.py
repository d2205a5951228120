"""What one access-log message costs the server that receives it, by gRPC server flavour (issue 21).

Smaller access-log batches would shorten the pause a flush costs an Envoy worker (C's p99), but the control plane
pays per message. This measures that price apart from the handler's own work: each flavour runs in a process of
its own, decodes every message as the control plane does (controlplane/telemetry/log_messages.py) and counts its
entries; one long stream, as Envoy keeps, carries messages of 1, 10 and 100 of the fleet bench's answer entries
(bench/fleet.py). The server's CPU comes from /proc.

Flavours: grpc.aio (the control plane's server today), grpcio's synchronous server (a thread per stream), and the
ext_proc's own HTTP/2 server (extproc/h2_grpc.py) on asyncio's loop and on uvloop.

    python -m bench.als_transport                      # every flavour
    python -m bench.als_transport --flavours aio h2
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from concurrent import futures
from typing import Any

import grpc

from bench import fleet
from switchyard.supervisor.processes import free_port, wait_until

SERVICE = "envoy.service.accesslog.v3.AccessLogService"
METHOD = f"/{SERVICE}/StreamAccessLogs"
FLAVOURS = ("aio", "sync", "h2", "h2-uvloop")


# --- the servers (run in a child process: `python -m bench.als_transport --serve FLAVOUR PORT`) --------------


def _service(handler: Any) -> Any:
    return grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": handler})


def _serve(flavour: str, port: int) -> None:
    from controlplane.telemetry import log_messages

    decode = log_messages.StreamAccessLogsMessage.FromString
    entries = [0]

    def count(message: Any) -> None:
        entries[0] += len(message.http_logs.log_entry)

    if flavour == "aio":

        async def stream(requests: AsyncIterator[Any], context: Any) -> bytes:
            async for message in requests:
                count(message)
            return b""

        async def run_aio() -> None:
            server = grpc.aio.server()
            handler = grpc.stream_unary_rpc_method_handler(
                stream, request_deserializer=decode, response_serializer=bytes
            )
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": handler}),)
            )
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            await server.wait_for_termination()

        asyncio.run(run_aio())
    elif flavour == "sync":

        def stream_sync(requests: Any, context: Any) -> bytes:
            for message in requests:
                count(message)
            return b""

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.stream_unary_rpc_method_handler(
            stream_sync, request_deserializer=decode, response_serializer=bytes
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"StreamAccessLogs": handler}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        server.wait_for_termination()
    else:
        from extproc import h2_grpc

        class Call:
            def __init__(self, stream: h2_grpc.Stream) -> None:
                self.stream = stream

            def on_message(self, message: bytes) -> None:
                count(decode(message))

            def on_end(self) -> None:
                self.stream.send_message(b"")
                self.stream.finish()

            def on_cancel(self) -> None:
                pass

        async def run_h2() -> None:
            server = h2_grpc.H2GrpcServer({METHOD: Call})
            if not await server.start(f"127.0.0.1:{port}"):
                raise SystemExit(2)
            await asyncio.Event().wait()

        if flavour == "h2-uvloop":
            import uvloop

            uvloop.run(run_h2())
        else:
            asyncio.run(run_h2())


# --- the client -------------------------------------------------------------------------------------------------


def _messages(size: int, count: int) -> list[bytes]:
    played = fleet.Fleet(fleet._config(9), 1)
    out = []
    for number in range(count):
        answers, _ = played.batch(0, number * size, size, False)
        out.append(fleet._message(answers))
    return out


async def _send(port: int, messages: list[bytes]) -> None:
    """One stream, its first message naming the node as Envoy's does, paced a little as Envoy's flushes are."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.stream_unary(METHOD, request_serializer=bytes, response_deserializer=bytes)
    identifier = fleet._identifier("node-1", "switchyard_answers")

    async def requests() -> AsyncIterator[bytes]:
        yield identifier + messages[0]
        for number, message in enumerate(messages[1:]):
            yield message
            if number % 20 == 0:
                await asyncio.sleep(0.001)

    await call(requests())
    await channel.close()


def measure(flavour: str, size: int, messages: list[bytes]) -> float:
    """The server's CPU per message, in microseconds."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.als_transport", "--serve", flavour, str(port)]
    with subprocess.Popen(argv) as server:
        try:
            if not wait_until(lambda: _listening(port), 10, 0.05):
                raise RuntimeError(f"the {flavour} server did not start")
            asyncio.run(_send(port, messages[:50]))  # warm-up
            before = fleet._cpu_seconds(server.pid)
            asyncio.run(_send(port, messages))
            time.sleep(0.2)  # what the last message left to do
            return (fleet._cpu_seconds(server.pid) - before) / len(messages) * 1e6
        finally:
            server.terminate()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.als_transport", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--flavours", nargs="+", choices=FLAVOURS, default=list(FLAVOURS), help="servers measured")
    parser.add_argument("--serve", nargs=2, metavar=("FLAVOUR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]))
        return
    header = "".join(f"{flavour:>12}" for flavour in args.flavours)
    print(f"{'entries per message':<22}{header}   (server CPU per message, us)")
    for size, count in ((1, 3000), (10, 3000), (100, 600)):
        messages = _messages(size, count)
        row = [measure(flavour, size, messages) for flavour in args.flavours]
        print(f"{size:<22}" + "".join(f"{us:>12.0f}" for us in row), flush=True)


if __name__ == "__main__":
    main()
