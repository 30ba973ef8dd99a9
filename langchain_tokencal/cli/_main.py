"""`main`: parse the command line, run one subcommand, turn errors into a line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_tokencal.cli import _commands
from langchain_tokencal.cli._calibrate import calibrate
from langchain_tokencal.cli._encodings import encodings
from langchain_tokencal.cli._output import cli_logging, first_line, print_error
from langchain_tokencal.cli._parser import build_parser, check_options
from langchain_tokencal.cli._session import Context
from langchain_tokencal.errors import TokenCalError
from langchain_tokencal.storage import default_store_url

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[Context], int]] = {
    "calibrate": calibrate,
    "count": _commands.count,
    "demo": _commands.demo,
    "encodings": encodings,
    "export": _commands.export,
    "health": _commands.health,
    "import": _commands.import_,
    "stats": _commands.stats,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tokencal`` command; return its exit code.

    Exit codes: 0 on success, 1 on an error (one ``tokencal: error:`` line
    on stderr) or, for ``health``, on any warning; 2 for a malformed command
    line (argparse).

    Example:
        ```python
        from langchain_tokencal.cli import main

        main(["--store", "memory://", "count", "--model", "gpt-4o", "messages.json"])
        ```
    """
    args = build_parser().parse_args(argv)
    with cli_logging() as log:
        ctx = Context(args, log)
        try:
            check_options(args)
            if args.command not in {"demo", "encodings"}:
                ctx.url = args.store or default_store_url()
            return _COMMANDS[args.command](ctx)
        except TokenCalError as err:
            print_error(first_line(err))
            return 1
        except KeyboardInterrupt:
            # The handler was closed on the way out: what was learned is kept.
            print_error("interrupted")
            return 130
