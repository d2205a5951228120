"""``python -m switchyard.mock_provider``: the same entry point without the project-wide CLI."""

from __future__ import annotations

import argparse
import sys

from switchyard.mock_provider.cli import configure_parser, main


def _run() -> int:
    parser = argparse.ArgumentParser(
        prog="switchyard mock-provider",
        description="Fake OpenAI- or Anthropic-shaped LLM provider with injectable failures and request recording.",
    )
    configure_parser(parser)
    return main(parser.parse_args())


if __name__ == "__main__":
    sys.exit(_run())
