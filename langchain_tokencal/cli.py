"""The ``tokencal`` command: count prompts and run the demonstration."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tokencal import __version__
from langchain_tokencal.errors import TokenCalError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokencal",
        description="Accurate prompt token counts for LangChain chat models.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the offline demonstration")
    count = sub.add_parser("count", help="count the prompt tokens of a message file")
    count.add_argument("--model", required=True, help="model name, e.g. gpt-4o")
    count.add_argument("--provider", default=None, help="provider, e.g. anthropic")
    count.add_argument(
        "--tools", type=Path, default=None, help="JSON file of tool schemas"
    )
    count.add_argument("messages", help="JSON file of messages, or - for stdin")
    return parser


def _read_json(path: str | Path, what: str) -> Any:
    try:
        text = (
            sys.stdin.read()
            if str(path) == "-"
            else Path(path).read_text(encoding="utf-8")
        )
    except OSError as err:
        msg = f"cannot read {what} {str(path)!r}: {err.strerror or err}"
        raise TokenCalError(msg) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = (
            f"{what} {str(path)!r} is not valid JSON "
            f"(line {err.lineno}, column {err.colno}): {err.msg}"
        )
        raise TokenCalError(msg) from err


def _count(args: argparse.Namespace) -> int:
    from langchain_tokencal.calibrated import create_counter  # noqa: PLC0415

    messages = _read_json(args.messages, "messages file")
    if not isinstance(messages, list):
        msg = "the messages file must hold a JSON list of messages"
        raise TokenCalError(msg)
    tools = _read_json(args.tools, "tools file") if args.tools else None
    try:
        est = create_counter(args.model, args.provider).estimate(messages, tools)
    except (ValueError, TypeError, NotImplementedError) as err:
        msg = f"cannot read the messages: {err}"
        raise TokenCalError(msg) from err
    print(
        f"{est.tokens} tokens  [{est.low}, {est.high}]  "
        f"source={est.source}  confidence={est.confidence:.2f}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tokencal`` command; return its exit code.

    Example:
        ```python
        from langchain_tokencal.cli import main

        main(["demo"])
        ```
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from langchain_tokencal.demo import run_demo  # noqa: PLC0415

            run_demo(sys.stdout)
            return 0
        return _count(args)
    except TokenCalError as err:
        print(f"tokencal: error: {err}", file=sys.stderr)
        return 1
