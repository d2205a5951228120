"""Checks that a `switchyard …` command line written in a manifest or compose file is one the CLI takes.

The flags come from `switchyard.cli.main.build_parser()` itself, matched exactly (argparse would also accept a
prefix: `--tls-ca` for `--tls-ca-file`, which is why nothing here goes by parse_args alone).

An unknown command or flag fails (a typo, or a flag the CLI lost); then the whole command line must parse.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

from switchyard.cli.main import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("switchyard's parser has no subcommands")


def known_commands() -> set[str]:
    return set(_subparsers(build_parser()))


def options_of(command: str) -> set[str] | None:
    """Every option string `switchyard COMMAND` takes, or None when there is no such command."""
    parser = build_parser()
    sub = _subparsers(parser).get(command)
    if sub is None:
        return None
    return set(sub._option_string_actions)


def _command_of(argv: list[str]) -> tuple[str, list[str]]:
    """(subcommand, its arguments) of `switchyard [--log-level L] COMMAND ARGS…`."""
    assert argv and argv[0] == "switchyard", f"not a switchyard command line: {argv}"
    rest = argv[1:]
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] == "--log-level" else rest[1:]
    assert rest, f"no subcommand in {argv}"
    return rest[0], rest[1:]


def flags_in(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]


def check_command_line(argv: list[str], where: str) -> argparse.Namespace:
    """Assert `argv` is a command line switchyard takes, with every flag spelled exactly."""
    command, args = _command_of(argv)
    known = options_of(command)
    if known is None:
        raise AssertionError(f"{where}: `switchyard {command}` is not a switchyard command")
    unknown = [flag for flag in flags_in(args) if flag not in known]
    assert not unknown, f"{where}: `switchyard {command}` has no option {unknown}"
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(f"{where}: switchyard rejects {argv}:\n{stderr.getvalue()}") from None


def option_value(args: list[str], flag: str) -> str | None:
    """The value given to `flag` (`--flag V` or `--flag=V`), the last one if repeated; None if absent."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def option_values(args: list[str], flag: str) -> list[str]:
    """Every value of a repeatable flag, in order."""
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag] + [
        arg.split("=", 1)[1] for arg in args if arg.startswith(flag + "=")
    ]


def default_of(command: str, dest: str) -> Any:
    """The default of `switchyard COMMAND`'s option stored in `dest` (e.g. drain_timeout)."""
    sub = _subparsers(build_parser())[command]
    return next(action.default for action in sub._actions if action.dest == dest)


def check_command_lines(lines: list[tuple[Any, list[str]]]) -> None:
    """check_command_line for each (where, argv)."""
    for where, argv in lines:
        check_command_line(argv, str(getattr(where, "where", where)))
