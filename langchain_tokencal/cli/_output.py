"""What ``tokencal`` writes: the error line, the library's warnings, the tables.

Results go to stdout; errors, warnings, notes and progress to stderr, so a
command's output can be piped on.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "CliLog",
    "cli_logging",
    "coefficients_text",
    "first_line",
    "print_error",
    "stats_table",
]

# Coefficients closer to zero than this are left out of summaries.
_SHOWN = 1e-3


def print_error(text: str) -> None:
    """Write the one ``tokencal: error:`` line of a failed command."""
    print(f"tokencal: error: {text}", file=sys.stderr)


def first_line(err: BaseException) -> str:
    """An error's whole message on one line (its fix is often at the end)."""
    text = " ".join(line.strip() for line in str(err).strip().splitlines())
    return text or type(err).__name__


class CliLog(logging.Handler):
    """Shows the library's warnings on stderr; keeps the store sync's aside.

    The CLI checks the store itself and says so in one error line, so the
    sync's "counting goes on in memory and is retried" (true for a long-lived
    process, not for a command about to exit) is kept for that line instead.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.store_problems: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "langchain_tokencal.storage._sync":
            self.store_problems.append(record)
            return
        text = record.getMessage().removeprefix("tokencal: ")
        print(f"tokencal: warning: {text}", file=sys.stderr)

    def store_reason(self) -> str:
        """The last reason the sync gave for failing, or a generic one."""
        if not self.store_problems:
            return "it could not be read or written"
        record = self.store_problems[-1]
        args = record.args
        # The sync logs (url, error); show the error alone.
        if isinstance(args, tuple) and len(args) == 2:  # noqa: PLR2004 - see above
            return str(args[1])
        return record.getMessage()


@contextmanager
def cli_logging() -> Iterator[CliLog]:
    """Route the library's log to a `CliLog` for the length of one command."""
    logger = logging.getLogger("langchain_tokencal")
    handler = CliLog()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def coefficients_text(coefficients: Mapping[str, float], *, reports: int) -> str:
    """``name=value, ...`` of the coefficients that are not about zero.

    A model without reports has only its prior (the rates other vocabularies
    typically spend beyond the local one): "none yet", not numbers that look
    learned.
    """
    if not reports:
        return "none yet"
    shown = [f"{k}={v:.3g}" for k, v in coefficients.items() if abs(v) > _SHOWN]
    return ", ".join(shown) or "none yet"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def stats_table(rows: list[dict[str, Any]]) -> str:
    """The ``tokencal stats`` table of `stats_rows`, a coefficients line per model."""
    head = (
        "model",
        "provider",
        "reports",
        "rejected",
        "local err",
        "calibrated err",
        "recent err",
        "confidence",
        "memo hits",
    )
    cells = [
        (
            str(r["model"]),
            str(r["provider"] or "-"),
            str(r["reports"]),
            str(r["rejected"]),
            _pct(r["local_error_%"]),
            _pct(r["calibrated_error_%"]),
            _pct(r["recent_error_%"]),
            f"{r['confidence']:.3f}",
            _pct(r["memo_hit_%"]),
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]

    def line(values: Sequence[str]) -> str:
        # Text columns to the left, numbers to the right.
        return "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)  # noqa: PLR2004 - model and provider
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [line(head)]
    for row, values in zip(rows, cells, strict=True):
        out.append(line(values))
        coef = {k[5:]: v for k, v in row.items() if k.startswith("coef_")}
        reports = int(row.get("reports") or 0)
        out.append(f"  coefficients: {coefficients_text(coef, reports=reports)}")
    return "\n".join(out)
