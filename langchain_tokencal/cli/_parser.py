"""The command line of ``tokencal``: its options, subcommands and their checks."""

from __future__ import annotations

import argparse
from typing import Any

from langchain_tokencal import __version__
from langchain_tokencal._providers import (
    PROVIDERS,
    canonical,
    unknown_provider_message,
)
from langchain_tokencal.errors import TokenCalError, UnknownProviderError

__all__ = ["build_parser", "check_options"]


_STORES = (
    "--store: memory://, sqlite:///relative.db, sqlite:////absolute.db or "
    "redis://host:port/db (pip install 'langchain-tokencal[redis]'); "
    "default: $TOKENCAL_STORE, else a per-user SQLite file."
)
_EXITS = "Exit codes: 0 done, 1 an error (one line on stderr), 2 a malformed command."


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``tokencal`` and every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tokencal",
        description="Accurate prompt token counts for LangChain chat models.",
        epilog=f"{_STORES} {_EXITS}",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    store_help = "where the calibration is kept (see below)"
    parser.add_argument("--store", metavar="URL", default=None, help=store_help)
    # Also accepted after the subcommand; SUPPRESS keeps an omitted one from
    # overwriting a --store given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", metavar="URL", default=argparse.SUPPRESS, help=store_help
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        # Every subcommand's --help explains --store (its "see below").
        return sub.add_parser(name, epilog=f"{_STORES} {_EXITS}", **kwargs)

    count = add(
        "count",
        parents=[common],
        help="count the prompt tokens of a message file",
        description="Estimate a prompt's tokens from the stored calibration.",
    )
    _model_options(count, model_help="model name, e.g. gpt-4o", required=True)
    count.add_argument(
        "--tools", metavar="FILE", default=None, help="JSON file of tool schemas"
    )
    count.add_argument("messages", help="JSON file of messages, or - for stdin")

    calibrate = add(
        "calibrate",
        parents=[common],
        help="learn from a log of recorded calls (JSON lines)",
        description=(
            'Learn from recorded calls, one JSON object per line: {"messages": '
            '[...], "usage": {...} or "response": {...}, "tools": [...], '
            '"model": "..."}, or a LangSmith run export (inputs.messages and '
            "outputs with usage_metadata)."
        ),
    )
    _model_options(
        calibrate,
        model_help="model of every line (default: each line's own model)",
        required=False,
    )
    calibrate.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr (the default when stderr is a terminal)",
    )
    calibrate.add_argument(
        "--again",
        action="store_true",
        help="learn from a file the store already learned from (counted again)",
    )
    calibrate.add_argument("log", help="JSON-lines file, or - for stdin")

    stats = add(
        "stats",
        parents=[common],
        help="show the calibration of every model",
        description=(
            "Show each model's reports, rejections, errors (local and "
            "calibrated, in percent), confidence and learned coefficients."
        ),
    )
    stats.add_argument(
        "--json", action="store_true", help="print a JSON object keyed by model"
    )
    health = add(
        "health",
        parents=[common],
        help="check every model; exit 1 on any warning",
        description=(
            "Check every model (missing usage, low confidence, rising error, a "
            "misreporting server, a fallen-back tokenizer) and exit 1 on any "
            "warning, a store with nothing learned, or a SQLite path that does "
            "not exist: a deployment gate. The thresholds used are printed; "
            "--threshold changes one."
        ),
    )
    health.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a health threshold, e.g. low_confidence=0.8 (repeatable; names: "
        "low_confidence, rising_factor, rising_floor, no_usage_share, "
        "rejected_share, low_hit_rate, min_lookups, min_points)",
    )
    export = add(
        "export",
        parents=[common],
        help="save the stored calibration to a file",
        description=(
            "Write the store's calibration to a JSON-lines file of events "
            "(numbers and hashes, never prompt text), for tokencal import."
        ),
    )
    export.add_argument("file", help="calibration file to write")
    imp = add(
        "import",
        parents=[common],
        help="add a saved calibration to the store",
        description=(
            "Add the events of a file written by tokencal export that the "
            "store does not hold yet; importing a file twice adds nothing."
        ),
    )
    imp.add_argument("file", help="calibration file written by export")
    enc = add(
        "encodings",
        help="show or install tiktoken's encoding files (offline)",
        description=(
            "Show whether tiktoken's encoding files are in the folder tiktoken "
            "reads ($TIKTOKEN_CACHE_DIR, else its default), and with --install "
            "write them from an offline source, each checked against the "
            "SHA-256 tiktoken expects. Exit 1 while o200k_base or cl100k_base "
            "is missing."
        ),
    )
    enc.add_argument("--install", action="store_true", help="write the missing files")
    enc.add_argument(
        "--from",
        dest="source",
        default="quicktok",
        metavar="SOURCE",
        help="quicktok (the quicktok-v1 package's vocabularies, the default) or "
        "a folder holding <name>.tiktoken files",
    )
    enc.add_argument(
        "--dir", default=None, help="the cache folder (default: tiktoken's)"
    )
    add(
        "demo",
        help="run the offline demonstration",
        description=(
            "Run a simulated session against an offline model with hidden "
            "costs, calibrated live, and print how the counts improve."
        ),
    )
    return parser


def _model_options(
    parser: argparse.ArgumentParser, *, model_help: str, required: bool
) -> None:
    parser.add_argument("--model", required=required, help=model_help)
    parser.add_argument(
        "--provider",
        default=None,
        help=f"provider: {', '.join(PROVIDERS)} or an alias",
    )


def check_options(args: argparse.Namespace) -> None:
    """Refuse a blank model or an unknown provider before touching anything."""
    model = getattr(args, "model", None)
    if model is not None and not model.strip():
        msg = "--model must name a model, e.g. --model gpt-4o"
        raise TokenCalError(msg)
    provider = getattr(args, "provider", None)
    if provider is not None and canonical(provider) is None:
        msg = unknown_provider_message(
            provider, none_means="guess it from the model name (omit --provider)"
        )
        raise UnknownProviderError(msg)
