"""``tokencal calibrate``: learn from a log, with progress, then report the run.

The report gives, per model, the calls read, learned and rejected (by reason),
the prompt-token error of the local and the calibrated count over this file's
reports, and the coefficients learned.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tokencal._callbacks import TokenCalibrationHandler
from langchain_tokencal._providers import canonical
from langchain_tokencal.cli._logs import call_of, log_lines
from langchain_tokencal.cli._messages import BadLineError, Converter
from langchain_tokencal.cli._output import coefficients_text, first_line, print_error
from langchain_tokencal.cli._session import opened, stats_for
from langchain_tokencal.storage import StoreError, open_store
from langchain_tokencal.storage._base import StoreBase

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tokencal._calibration import ModelStats
    from langchain_tokencal.cli._logs import Call
    from langchain_tokencal.cli._session import Context

__all__ = ["calibrate"]

# Lines between two progress updates, and between two syncs with the store
# (so an unreachable store stops a long run early instead of at the end).
_PROGRESS_EVERY = 1000
_SYNC_EVERY = 5000
# Bad lines reported one by one; the rest are only counted.
_BAD_SHOWN = 20


@dataclass(slots=True)
class _Tally:
    read: int = 0
    learned: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # Sums of the absolute relative errors of this run's reports, taken from
    # the counter's bounded error window before it drops them.
    measured: int = 0
    local_error: float = 0.0
    calibrated_error: float = 0.0
    pending: int = 0


class _Progress:
    r"""A ``\r`` line on stderr: lines read and, for a file, the share of it."""

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._width = 0
        self._drawn = -1

    def tick(self, lines: int, done: int) -> None:
        if self.enabled and lines % _PROGRESS_EVERY == 0:
            self._draw(lines, done)

    def clear(self) -> None:
        """Blank the line, so a message can be printed in its place."""
        if self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            self._width = 0

    def finish(self, lines: int, done: int) -> None:
        if self.enabled:
            if self._drawn != lines or not self._width:
                self._draw(lines, done)
            sys.stderr.write("\n")
            self._width = 0

    def _draw(self, lines: int, done: int) -> None:
        share = ""
        if self.total:
            share = f" ({min(100 * done // self.total, 100)}%)"
        text = f"tokencal: {lines:,} lines read{share}"
        sys.stderr.write("\r" + text.ljust(self._width))
        sys.stderr.flush()
        self._width = len(text)
        self._drawn = lines


class _Run:
    """One ``calibrate`` run: feeds lines to the handler and tallies them."""

    def __init__(
        self,
        ctx: Context,
        handler: TokenCalibrationHandler,
        name: str,
        progress: _Progress,
    ) -> None:
        self.name = name
        self.tallies: dict[str, _Tally] = {}
        self.bad = 0
        self.skipped = 0
        self._args = ctx.args
        self._handler = handler
        self._progress = progress
        self._convert = Converter()
        # Errors are harvested before the counter's window can drop them.
        self._window = max(1, handler.config.max_points // 2)

    def feed(self, lineno: int, text: str | None) -> None:
        """Learn from one line, or report why it cannot be used."""
        call = self._read(lineno, text)
        if call is None:
            return
        model = self._args.model or call.model
        if not model:
            self._bad(lineno, 'no model: pass --model or give each line a "model"')
            return
        provider = self._args.provider or call.provider
        if provider and canonical(provider) is None:
            # LangSmith's ls_provider is open-ended; an unknown one would only
            # name the counter, and the model name is a better guess.
            provider = None
        try:
            reason = self._handler.observe(
                call.messages, call.response, model, call.tools, provider=provider
            )
        except (ValueError, TypeError, KeyError, NotImplementedError) as err:
            self._bad(lineno, f"cannot learn from it: {first_line(err)}")
            return
        tally = self.tallies.setdefault(model, _Tally())
        tally.read += 1
        if reason is None:
            tally.learned += 1
            tally.pending += 1
            if tally.pending >= self._window:
                self.harvest()
        else:
            tally.rejected[reason] += 1

    def harvest(self) -> dict[str, ModelStats]:
        """Add the errors of the reports learned since the last harvest.

        Each report's error is measured before it is learned, so the errors
        this run added say how well the local and calibrated counts did.
        """
        stats = self._handler.stats()
        for model, tally in self.tallies.items():
            s = stats_for(stats, model)
            if s is not None and tally.pending:
                for local, calibrated in s.errors[-tally.pending :]:
                    tally.local_error += abs(local)
                    tally.calibrated_error += abs(calibrated)
                    tally.measured += 1
            tally.pending = 0
        return stats

    def _read(self, lineno: int, text: str | None) -> Call | None:
        if text is None:
            self._bad(lineno, "not UTF-8 text")
            return None
        if not text.strip():
            return None
        try:
            call = call_of(json.loads(text.rstrip("\r\n")), self._convert)
        except json.JSONDecodeError as err:
            self._bad(lineno, f"invalid JSON (column {err.colno}): {err.msg}")
            return None
        except BadLineError as err:
            self._bad(lineno, str(err))
            return None
        if call is None:
            self.skipped += 1
        return call

    def _bad(self, lineno: int, reason: str) -> None:
        self.bad += 1
        if self.bad <= _BAD_SHOWN:
            self._progress.clear()
            print(f"{self.name}:{lineno}: {reason}", file=sys.stderr)


def calibrate(ctx: Context) -> int:
    """``tokencal calibrate LOG``: exit 1 if any line was bad (and skipped).

    A log file is learned under an origin derived from its content, so the
    store applies it once: the same file again is refused (``--again`` learns
    it anew, under a fresh origin).
    """
    args = ctx.args
    origin = None if args.log == "-" or args.again else _file_origin(args.log)
    if origin is not None and _already(ctx, origin):
        print(
            f"{args.log}: already calibrated into {ctx.shown} (the same content); "
            "nothing learned. Pass --again to learn from it again."
        )
        return 0

    def make() -> TokenCalibrationHandler:
        return TokenCalibrationHandler(store=ctx.url, origin=origin)

    with (
        log_lines(args.log) as (name, total, lines),
        opened(ctx, make) as handler,
    ):
        progress = _Progress(total, enabled=args.progress or sys.stderr.isatty())
        run = _Run(ctx, handler, name, progress)
        lineno = done = 0
        for lineno, text, done in lines:
            run.feed(lineno, text)
            progress.tick(lineno, done)
            if lineno % _SYNC_EVERY == 0:
                ctx.check_store(handler, f"after line {lineno}")
        progress.finish(lineno, done)
        ctx.check_store(handler, "to save the calibration")
        stats = run.harvest()
    _report(run, stats, ctx.shown)
    if run.bad:
        if run.bad > _BAD_SHOWN:
            print(f"{name}: ... and {run.bad - _BAD_SHOWN} more", file=sys.stderr)
        print_error(f"{run.bad} bad line(s) in {name} were skipped")
        return 1
    return 0


def _file_origin(path: str) -> str | None:
    """``calibrate-`` and the SHA-256 of the file's bytes (None if unreadable)."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None  # log_lines reports it
    return "calibrate-" + digest.hexdigest()[:32]


def _already(ctx: Context, origin: str) -> bool:
    """Whether the store applied events of ``origin`` before."""
    try:
        store = open_store(ctx.url)
    except StoreError:
        return False  # the handler's own check says what is wrong
    try:
        return isinstance(store, StoreBase) and store.applied(origin) > 0
    except StoreError:
        return False
    finally:
        store.close()


def _report(run: _Run, stats: Mapping[str, ModelStats], shown: str) -> None:
    if not run.tallies:
        print(f"{run.name}: no calls to learn from")
    for model, tally in sorted(run.tallies.items()):
        rejected = sum(tally.rejected.values())
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(tally.rejected.items()))
        print(
            f"{model}: {tally.read} calls read, {tally.learned} learned, "
            f"{rejected} rejected" + (f" ({reasons})" if reasons else "")
        )
        if tally.measured:
            n = tally.measured
            print(
                f"  prompt-token error over this file: local "
                f"{tally.local_error / n:.2%} -> calibrated "
                f"{tally.calibrated_error / n:.2%} ({n} reports)"
            )
        s = stats_for(stats, model)
        if s is not None:
            text = coefficients_text(s.coefficients, reports=s.observations)
            print(f"  coefficients: {text}")
    if run.skipped:
        print(
            f"{run.name}: skipped {run.skipped} run(s) that were not chat model calls"
        )
    if run.tallies:
        if shown.startswith("memory://"):
            print("kept in memory only (--store memory://): nothing was saved")
        else:
            print(f"saved in {shown}")
