"""The subcommands that read or move a stored calibration.

``count`` estimates a prompt, ``stats`` and ``health`` show the calibration,
``export`` and ``import`` move it between stores, and ``demo`` runs offline.
Each takes the command's `Context` and returns its exit code.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_tokencal._calibration import create_counter
from langchain_tokencal._callbacks import TokenCalibrationHandler
from langchain_tokencal._providers import canonical
from langchain_tokencal._reporting import HealthThresholds, stats_rows
from langchain_tokencal.cli._messages import (
    BadLineError,
    Converter,
    prompt_items,
    read_json,
)
from langchain_tokencal.cli._output import first_line, stats_table
from langchain_tokencal.cli._session import is_known, opened
from langchain_tokencal.errors import TokenCalError
from langchain_tokencal.events import (
    EventError,
    LearnEvent,
    check_event,
    read_events,
    write_events,
)
from langchain_tokencal.storage import open_store
from langchain_tokencal.storage._urls import sqlite_path

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_tokencal._calibration import TokenEstimate
    from langchain_tokencal.cli._session import Context

__all__ = ["count", "demo", "export", "health", "import_", "stats"]

# Columns of `stats_rows` that are text, left out of ``stats --json``.
_TEXT_COLUMNS = frozenset({"model", "provider", "counter"})


def count(ctx: Context) -> int:
    """``tokencal count``: one estimate on stdout, a note on stderr if any."""
    args = ctx.args
    raw = read_json(args.messages, "messages file")
    try:
        messages = Converter().many(prompt_items(raw))
    except BadLineError as err:
        msg = f"messages file {args.messages!r}: {err}"
        raise TokenCalError(msg) from err
    tools = read_json(args.tools, "tools file") if args.tools else None
    if isinstance(tools, dict):
        tools = [tools]  # one tool schema on its own
    if tools is not None and not isinstance(tools, list):
        msg = "the tools file must hold a tool schema or a JSON list of them"
        raise TokenCalError(msg)
    with opened(ctx) as handler:
        try:
            est, note = _estimate(ctx, handler, messages, tools)
        except (ValueError, TypeError, NotImplementedError) as err:
            msg = f"cannot count the messages: {first_line(err)}"
            raise TokenCalError(msg) from err
    print(
        f"{est.tokens} tokens  [{est.low}, {est.high}]  "
        f"source={est.source}  confidence={est.confidence:.2f}"
    )
    if note:
        print(f"tokencal: note: {note}", file=sys.stderr)
    return 0


def _estimate(
    ctx: Context,
    handler: TokenCalibrationHandler,
    messages: list[BaseMessage],
    tools: list[Any] | None,
) -> tuple[TokenEstimate, str | None]:
    model, provider = ctx.args.model, ctx.args.provider
    if is_known(model, handler.models):
        est = handler.estimate(messages, model=model, tools=tools)
        stored = handler.stats()[est.model].provider
        if provider and stored and canonical(provider) != stored:
            return est, (
                f"{est.model!r} is calibrated for provider {stored!r}; "
                "--provider was not used"
            )
        return est, None
    # Not in the store: count locally, without writing a new model to the store.
    counter = create_counter(model, provider, config=handler.config)
    est = counter.estimate(messages, tools)
    info = counter.stats().counter
    if info.kind == "exact":
        return est, None
    return est, (
        f"no calibration stored for {model!r} in {ctx.shown}; this is the "
        f"local estimate ({info.reason}); run `tokencal calibrate` on its logs"
    )


def stats(ctx: Context) -> int:
    """``tokencal stats [--json]``: the table, or numbers keyed by model."""
    with opened(ctx) as handler:
        rows = stats_rows(handler.stats())
    if ctx.args.json:
        numbers = {
            row["model"]: {k: v for k, v in row.items() if k not in _TEXT_COLUMNS}
            for row in rows
        }
        print(json.dumps(numbers, indent=2))
        return 0
    if not rows:
        print(f"no calibration in {ctx.shown} yet; run `tokencal calibrate`")
        return 0
    print(stats_table(rows))
    return 0


def health(ctx: Context) -> int:
    """``tokencal health``: every issue, then a verdict; exit 1 on a warning.

    A gate: a SQLite store that does not exist (a mistyped path) is an error,
    not a new empty file, and a store with nothing learned is unhealthy.
    """
    thresholds = _thresholds(ctx.args.threshold)
    path = sqlite_path(ctx.url)
    if path is not None and not Path(path).exists():
        msg = (
            f"no store at {path}: nothing has been learned there. Check the path "
            "(--store or TOKENCAL_STORE)."
        )
        raise TokenCalError(msg)
    with opened(ctx) as handler:
        report = handler.health(log=False, thresholds=thresholds)
        models = handler.models
    if not models:
        print(f"warning: {ctx.shown}: the store holds no calibration yet")
        print("unhealthy: 1 warning(s) over 0 model(s)")
        return 1
    for issue in report.issues:
        print(f"{issue.severity}: {issue.model}: {issue.check}: {issue.message}")
    print(f"thresholds: {report.thresholds}")
    warnings_ = sum(i.severity == "warning" for i in report.issues)
    if report.ok:
        print(
            f"healthy: {len(models)} model(s) checked, "
            f"{len(report.issues)} note(s), no warning"
        )
        return 0
    print(f"unhealthy: {warnings_} warning(s) over {len(models)} model(s)")
    return 1


def _thresholds(pairs: list[str]) -> HealthThresholds:
    """``--threshold NAME=VALUE`` options as thresholds (numbers as numbers).

    Raises:
        TokenCalError: On a pair without ``=`` or a value that is not a
            number; `ConfigError` (one) on a threshold `HealthThresholds`
            refuses.
    """
    values: dict[str, float | int] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            msg = f"--threshold takes NAME=VALUE, got {pair!r}"
            raise TokenCalError(msg)
        try:
            number = float(raw)
        except ValueError:
            msg = f"--threshold {name.strip()}: {raw!r} is not a number"
            raise TokenCalError(msg) from None
        # Whole numbers as integers: min_lookups and min_points are counts.
        whole = number.is_integer() and "." not in raw
        values[name.strip()] = int(number) if whole else number
    return HealthThresholds.from_mapping(values)


def export(ctx: Context) -> int:
    """``tokencal export FILE``: save the stored calibration."""
    with opened(ctx) as handler:
        written = handler.save(ctx.args.file)
        models = handler.models
    names = ", ".join(models) or "none"
    print(
        f"exported {written} events ({len(models)} model(s): {names}) "
        f"from {ctx.shown} to {ctx.args.file}"
    )
    return 0


def import_(ctx: Context) -> int:
    """``tokencal import FILE``: add the events the store does not hold yet."""
    path = ctx.args.file
    # A deployment step must not half-import a truncated file and succeed.
    events = read_events(path, strict=True)
    # Events no counter could have learned are not imported (nor counted as new).
    checked = [e for e in events if _in_range(e)]
    refused = len(events) - len(checked)
    events = checked
    # Importing the same file twice must not count its reports twice.
    store = open_store(ctx.url)
    try:
        held = set(store.read()[0])
    finally:
        store.close()
    new = [e for e in events if e not in held]
    skipped = f"; {refused} out of range were skipped" if refused else ""
    if not new:
        print(f"nothing to import: {ctx.shown} already holds all of {path}{skipped}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tokencal-") as folder:
        fresh = Path(folder) / "new.jsonl"
        write_events(fresh, new)
        with opened(
            ctx, lambda: TokenCalibrationHandler.load(fresh, store=ctx.url)
        ) as handler:
            ctx.check_store(handler, "to save the imported calibration")
            models = sorted({e.model for e in new})
    print(
        f"imported {len(new)} events ({len(models)} model(s): {', '.join(models)}) "
        f"from {path} into {ctx.shown}"
        + (
            f"; {len(events) - len(new)} were already there"
            if len(new) < len(events)
            else ""
        )
        + skipped
    )
    return 0


def _in_range(event: LearnEvent) -> bool:
    try:
        check_event(event)
    except EventError:
        return False
    return True


def demo(ctx: Context) -> int:
    """``tokencal demo``: the offline demonstration, on stdout."""
    from langchain_tokencal.demo import run_demo  # noqa: PLC0415 - only for demo

    del ctx
    run_demo(sys.stdout)
    return 0
