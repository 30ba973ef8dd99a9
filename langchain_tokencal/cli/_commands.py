"""The subcommands of ``tokencal`` and their argument parser."""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
import tempfile
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from langchain_core._api import LangChainBetaWarning
from langchain_core.load import load
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    convert_to_messages,
)

from langchain_tokencal import __version__
from langchain_tokencal._calibration import create_counter
from langchain_tokencal._callbacks import TokenCalibrationHandler
from langchain_tokencal._providers import (
    PROVIDERS,
    canonical,
    snapshot_of,
    unknown_provider_message,
)
from langchain_tokencal._reporting import stats_rows
from langchain_tokencal.errors import TokenCalError, UnknownProviderError
from langchain_tokencal.events import read_events, write_events
from langchain_tokencal.storage import default_store_url, open_store, redact_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from langchain_tokencal._calibration import ModelStats, TokenEstimate

__all__ = ["main"]

# Lines between two progress updates, and between two syncs with the store
# (so an unreachable store stops a long run early instead of at the end).
_PROGRESS_EVERY = 1000
_SYNC_EVERY = 5000
# Bad lines reported one by one; the rest are only counted.
_BAD_SHOWN = 20
# Distinct messages kept converted: a logged conversation repeats its history
# on every line, and converting a message costs far more than looking it up.
_MEMO_SIZE = 20_000
# Coefficients closer to zero than this are left out of summaries.
_SHOWN = 1e-3
# LangChain's ``allowed_objects="messages"`` admits the current message classes
# (and its allowlist is computed once); these older ones need naming.
_LEGACY_CLASSES = (ChatMessage, ChatMessageChunk, FunctionMessage, FunctionMessageChunk)
_LEGACY_NAMES = frozenset(cls.__name__ for cls in _LEGACY_CLASSES)
# Columns of `stats_rows` that are text, left out of ``stats --json``.
_TEXT_COLUMNS = frozenset({"model", "provider", "counter"})


# -- arguments ----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokencal",
        description="Accurate prompt token counts for LangChain chat models.",
        epilog=(
            "--store: memory://, sqlite:///relative.db, sqlite:////absolute.db or "
            "redis://host:port/db (pip install 'langchain-tokencal[redis]'); "
            "default: $TOKENCAL_STORE, else a per-user SQLite file."
        ),
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

    count = sub.add_parser(
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

    calibrate = sub.add_parser(
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
    calibrate.add_argument("log", help="JSON-lines file, or - for stdin")

    stats = sub.add_parser(
        "stats", parents=[common], help="show the calibration of every model"
    )
    stats.add_argument(
        "--json", action="store_true", help="print a JSON object keyed by model"
    )
    sub.add_parser(
        "health",
        parents=[common],
        help="check every model; exit 1 on any warning",
    )
    export = sub.add_parser(
        "export", parents=[common], help="save the stored calibration to a file"
    )
    export.add_argument("file", help="calibration file to write")
    imp = sub.add_parser(
        "import", parents=[common], help="add a saved calibration to the store"
    )
    imp.add_argument("file", help="calibration file written by export")
    sub.add_parser("demo", help="run the offline demonstration")
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


def _check_options(args: argparse.Namespace) -> None:
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


# -- output, logging and the store --------------------------------------------


def _error(text: str) -> None:
    print(f"tokencal: error: {text}", file=sys.stderr)


class _CliLog(logging.Handler):
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
def _cli_logging() -> Iterator[_CliLog]:
    logger = logging.getLogger("langchain_tokencal")
    handler = _CliLog()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@dataclass(slots=True)
class _Context:
    args: argparse.Namespace
    log: _CliLog
    url: str = ""

    @property
    def shown(self) -> str:
        """The store URL with any password hidden."""
        return redact_url(self.url)

    def check_store(self, handler: TokenCalibrationHandler, when: str) -> None:
        """Sync with the store now; raise if it cannot be reached."""
        if not handler.flush():
            msg = (
                f"cannot reach the store {self.shown} {when}: {self.log.store_reason()}"
            )
            raise TokenCalError(msg)


@contextmanager
def _opened(
    ctx: _Context,
    make: Callable[[], TokenCalibrationHandler] | None = None,
) -> Iterator[TokenCalibrationHandler]:
    """A handler on the store, checked reachable, closed (flushed) at the end."""
    handler = make() if make else TokenCalibrationHandler(store=ctx.url)
    try:
        ctx.check_store(handler, "to load the calibration")
        yield handler
    finally:
        handler.close()


# -- reading messages -----------------------------------------------------------


class _BadLineError(Exception):
    """A log line that cannot be used; its message says why."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


class _Converter:
    """Turns logged messages into LangChain messages, memoizing repeats.

    Accepts LangChain serialized messages (``{"lc": 1, "type": "constructor",
    ...}``, loaded with an allowlist of message classes), OpenAI-style role
    dicts, ``[role, content]`` pairs and plain strings.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], BaseMessage] = {}
        self._last: tuple[Sequence[Any], list[BaseMessage]] = ((), [])
        self._key = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def many(self, items: Sequence[Any]) -> list[BaseMessage]:
        # Consecutive calls of a conversation share their first messages:
        # comparing with the previous line is far cheaper than a memo key.
        last_items, last_messages = self._last
        shared = 0
        for old, new in zip(last_items, items, strict=False):
            if old != new:
                break
            shared += 1
        messages = last_messages[:shared] + [self.one(x) for x in items[shared:]]
        self._last = (items, messages)
        return messages

    def one(self, item: Any) -> BaseMessage:
        key = (type(item).__name__, item if isinstance(item, str) else self._key(item))
        message = self._memo.get(key)
        if message is None:
            message = self._convert(item)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = message
        return message

    @staticmethod
    def _convert(item: Any) -> BaseMessage:
        try:
            if isinstance(item, dict) and item.get("lc") == 1:
                ident = item.get("id")
                legacy = (
                    isinstance(ident, list) and ident and ident[-1] in _LEGACY_NAMES
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", LangChainBetaWarning)
                    loaded = load(
                        item, allowed_objects=_LEGACY_CLASSES if legacy else "messages"
                    )
                if not isinstance(loaded, BaseMessage):
                    msg = "a serialized object that is not a message"
                    raise TypeError(msg)  # noqa: TRY301 - one message for any failure
                return loaded
            (message,) = convert_to_messages([item])
        except (ValueError, TypeError, KeyError, NotImplementedError) as err:
            msg = f"cannot read a message: {_first_line(err)}"
            raise _BadLineError(msg) from err
        return message


def _prompt_items(value: Any) -> list[Any]:
    """The messages of one prompt, unwrapping LangSmith's list of one prompt."""
    if not isinstance(value, list):
        msg = "the messages must be a JSON list"
        raise _BadLineError(msg)
    if value and all(isinstance(x, list) and not _is_pair(x) for x in value):
        if len(value) > 1:
            msg = f"the messages hold {len(value)} prompts; a call has one"
            raise _BadLineError(msg)
        value = value[0]
    if not value:
        msg = "the prompt has no messages"
        raise _BadLineError(msg)
    items: list[Any] = value
    return items


def _is_pair(item: list[Any]) -> bool:
    """True for a ``[role, content]`` message rather than a list of messages."""
    return len(item) == 2 and isinstance(item[0], str)  # noqa: PLR2004 - a pair


def _read_json(path: str, what: str) -> Any:
    try:
        text = (
            sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        )
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        msg = f"cannot read {what} {path!r}: {reason}"
        raise TokenCalError(msg) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = (
            f"{what} {path!r} is not valid JSON "
            f"(line {err.lineno}, column {err.colno}): {err.msg}"
        )
        raise TokenCalError(msg) from err


# -- count --------------------------------------------------------------------


def _count(ctx: _Context) -> int:
    args = ctx.args
    raw = _read_json(args.messages, "messages file")
    try:
        messages = _Converter().many(_prompt_items(raw))
    except _BadLineError as err:
        msg = f"messages file {args.messages!r}: {err}"
        raise TokenCalError(msg) from err
    tools = _read_json(args.tools, "tools file") if args.tools else None
    if tools is not None and not isinstance(tools, list):
        msg = "the tools file must hold a JSON list of tool schemas"
        raise TokenCalError(msg)
    with _opened(ctx) as handler:
        try:
            est, note = _estimate(ctx, handler, messages, tools)
        except (ValueError, TypeError, NotImplementedError) as err:
            msg = f"cannot count the messages: {_first_line(err)}"
            raise TokenCalError(msg) from err
    print(
        f"{est.tokens} tokens  [{est.low}, {est.high}]  "
        f"source={est.source}  confidence={est.confidence:.2f}"
    )
    if note:
        print(f"tokencal: note: {note}", file=sys.stderr)
    return 0


def _estimate(
    ctx: _Context,
    handler: TokenCalibrationHandler,
    messages: list[BaseMessage],
    tools: list[Any] | None,
) -> tuple[TokenEstimate, str | None]:
    model, provider = ctx.args.model, ctx.args.provider
    if _is_known(model, handler.models):
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


def _is_known(model: str, models: Sequence[str]) -> bool:
    """The handler has a counter for ``model`` or a model it is a snapshot of."""
    return model in models or snapshot_of(model, models) is not None


# -- calibrate ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    """One recorded call, ready for `TokenCalibrationHandler.observe`."""

    messages: list[BaseMessage]
    response: Any
    tools: list[Any] | None
    model: str | None
    provider: str | None


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


def _get(mapping: Any, *keys: str | int) -> Any:
    """``mapping[k1][k2]...`` or None, through dicts and lists."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(mapping, list) or len(mapping) <= key:
                return None
        elif not isinstance(mapping, dict):
            return None
        mapping = mapping[key] if isinstance(key, int) else mapping.get(key)
    return mapping


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _call_of(obj: Any, convert: _Converter) -> _Call | None:
    """Read one log line; None for a run to skip (not a successful chat call)."""
    if not isinstance(obj, dict):
        msg = "expected a JSON object on each line"
        raise _BadLineError(msg)
    if "messages" not in obj and isinstance(obj.get("inputs"), dict):
        return _run_of(obj, convert)
    if "messages" not in obj:
        msg = 'no "messages" (nor a LangSmith run\'s "inputs")'
        raise _BadLineError(msg)
    if "usage" in obj:
        response = obj["usage"]
    elif "response" in obj:
        response = obj["response"]
        if isinstance(response, dict) and response.get("lc") == 1:
            response = convert.one(response)
    else:
        msg = 'no "usage" or "response"'
        raise _BadLineError(msg)
    tools = obj.get("tools")
    if tools is not None and not isinstance(tools, list):
        msg = '"tools" must be a list'
        raise _BadLineError(msg)
    model = obj.get("model")
    if model is not None and _text(model) is None:
        msg = '"model" must be a model name'
        raise _BadLineError(msg)
    messages = convert.many(_prompt_items(obj["messages"]))
    return _Call(messages, response, tools, model, _text(obj.get("provider")))


def _run_of(run: dict[str, Any], convert: _Converter) -> _Call | None:
    """A LangSmith run export: inputs.messages, outputs, extra.metadata."""
    if run.get("run_type", "llm") != "llm" or run.get("error"):
        return None
    outputs = run.get("outputs")
    items = run["inputs"].get("messages")
    if not isinstance(outputs, dict) or items is None:
        # Pending runs, completion-LLM runs (inputs.prompts): no chat prompt.
        return None
    messages = convert.many(_prompt_items(items))
    extra = run.get("extra") if isinstance(run.get("extra"), dict) else {}
    usage = outputs.get("usage_metadata") or _get(extra, "metadata", "usage_metadata")
    reply = _get(outputs, "generations", 0, 0, "message")
    response: Any = None
    if isinstance(reply, dict):
        message = convert.one(reply)
        if isinstance(message, AIMessage):
            if usage and not message.usage_metadata:
                message = message.model_copy(update={"usage_metadata": usage})
            # The reply itself: its cost in the next prompt is learned too.
            response = message
    if response is None:
        # llm_output, a raw provider payload...: let parse_usage look.
        response = usage or outputs
    params = _get(extra, "invocation_params") or {}
    tools = [
        tool
        for key in ("tools", "functions")
        if isinstance(params.get(key), list)
        for tool in params[key]
    ]
    model = _text(_get(extra, "metadata", "ls_model_name")) or next(
        (_text(params.get(k)) for k in ("model", "model_name") if _text(params.get(k))),
        None,
    )
    provider = _text(_get(extra, "metadata", "ls_provider"))
    return _Call(messages, response, tools or None, model, provider)


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


def _size(stream: IO[Any]) -> int | None:
    """The size of a regular file behind ``stream``; None for pipes and terminals."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        # io.StringIO and friends have no file descriptor.
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size else None


def _numbered(stream: IO[Any]) -> Iterator[tuple[int, str | None, int]]:
    """(line number, text or None if not UTF-8, bytes read so far)."""
    done = 0
    for n, raw in enumerate(stream, 1):
        if isinstance(raw, bytes):
            done += len(raw)
            try:
                text: str | None = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                text = None
        else:
            done += len(raw)
            text = raw
        yield n, text, done


@contextmanager
def _log_lines(path: str) -> Iterator[tuple[str, int | None, Iterator[Any]]]:
    """The log's display name, size (if known) and numbered lines."""
    if path == "-":
        stream: IO[Any] = getattr(sys.stdin, "buffer", sys.stdin)
        yield "<stdin>", _size(stream), _numbered(stream)
        return
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        msg = f"cannot read log file {path!r}: {err.strerror or err}"
        raise TokenCalError(msg) from err
    with handle:
        yield path, _size(handle), _numbered(handle)


class _Run:
    """One ``calibrate`` run: feeds lines to the handler and tallies them."""

    def __init__(
        self,
        ctx: _Context,
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
        self._convert = _Converter()
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
            self._bad(lineno, f"cannot learn from it: {_first_line(err)}")
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
            s = _stats_for(stats, model)
            if s is not None and tally.pending:
                for local, calibrated in s.errors[-tally.pending :]:
                    tally.local_error += abs(local)
                    tally.calibrated_error += abs(calibrated)
                    tally.measured += 1
            tally.pending = 0
        return stats

    def _read(self, lineno: int, text: str | None) -> _Call | None:
        if text is None:
            self._bad(lineno, "not UTF-8 text")
            return None
        if not text.strip():
            return None
        try:
            call = _call_of(json.loads(text.rstrip("\r\n")), self._convert)
        except json.JSONDecodeError as err:
            self._bad(lineno, f"invalid JSON (column {err.colno}): {err.msg}")
            return None
        except _BadLineError as err:
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


def _calibrate(ctx: _Context) -> int:
    args = ctx.args
    with _log_lines(args.log) as (name, total, lines), _opened(ctx) as handler:
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
        _error(f"{run.bad} bad line(s) in {name} were skipped")
        return 1
    return 0


def _stats_for(stats: Mapping[str, ModelStats], model: str) -> ModelStats | None:
    found = stats.get(model)
    if found is None:
        # A dated snapshot was learned under the model it belongs to.
        keys = [k for k in stats if _is_known(model, [k])]
        found = stats[keys[0]] if keys else None
    return found


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
        s = _stats_for(stats, model)
        if s is not None:
            print(f"  coefficients: {_coefficients(s.coefficients)}")
    if run.skipped:
        print(
            f"{run.name}: skipped {run.skipped} run(s) that were not chat model calls"
        )
    if run.tallies:
        print(f"saved in {shown}")


def _coefficients(coefficients: Mapping[str, float]) -> str:
    shown = [f"{k}={v:.3g}" for k, v in coefficients.items() if abs(v) > _SHOWN]
    return ", ".join(shown) or "none yet"


# -- stats, health, export, import ------------------------------------------


def _stats(ctx: _Context) -> int:
    with _opened(ctx) as handler:
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
    print(_table(rows))
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _table(rows: list[dict[str, Any]]) -> str:
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
            f"{r['memo_hit_rate']:.0%}",
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
        out.append(f"  coefficients: {_coefficients(coef)}")
    return "\n".join(out)


def _health(ctx: _Context) -> int:
    with _opened(ctx) as handler:
        report = handler.health(log=False)
        models = handler.models
    for issue in report.issues:
        print(f"{issue.severity}: {issue.model}: {issue.check}: {issue.message}")
    warnings_ = sum(i.severity == "warning" for i in report.issues)
    if report.ok:
        print(
            f"healthy: {len(models)} model(s) checked, "
            f"{len(report.issues)} note(s), no warning"
        )
        return 0
    print(f"unhealthy: {warnings_} warning(s) over {len(models)} model(s)")
    return 1


def _export(ctx: _Context) -> int:
    with _opened(ctx) as handler:
        written = handler.save(ctx.args.file)
        models = handler.models
    names = ", ".join(models) or "none"
    print(
        f"exported {written} events ({len(models)} model(s): {names}) "
        f"from {ctx.shown} to {ctx.args.file}"
    )
    return 0


def _import(ctx: _Context) -> int:
    path = ctx.args.file
    events = read_events(path)
    # Importing the same file twice must not count its reports twice.
    store = open_store(ctx.url)
    try:
        held = set(store.read()[0])
    finally:
        store.close()
    new = [e for e in events if e not in held]
    if not new:
        print(f"nothing to import: {ctx.shown} already holds all of {path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tokencal-") as folder:
        fresh = Path(folder) / "new.jsonl"
        write_events(fresh, new)
        with _opened(
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
    )
    return 0


def _demo(ctx: _Context) -> int:
    from langchain_tokencal.demo import run_demo  # noqa: PLC0415 - only for demo

    del ctx
    run_demo(sys.stdout)
    return 0


_COMMANDS: dict[str, Callable[[_Context], int]] = {
    "calibrate": _calibrate,
    "count": _count,
    "demo": _demo,
    "export": _export,
    "health": _health,
    "import": _import,
    "stats": _stats,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tokencal`` command; return its exit code.

    Exit codes: 0 on success, 1 on an error (one ``tokencal: error:`` line
    on stderr) or, for ``health``, on any warning; 2 for a malformed command
    line (argparse).

    Example:
        ```python
        from langchain_tokencal.cli._commands import main

        main(["--store", "memory://", "count", "--model", "gpt-4o", "messages.json"])
        ```
    """
    args = _parser().parse_args(argv)
    with _cli_logging() as log:
        ctx = _Context(args, log)
        try:
            _check_options(args)
            if args.command != "demo":
                ctx.url = args.store or default_store_url()
            return _COMMANDS[args.command](ctx)
        except TokenCalError as err:
            _error(_first_line(err))
            return 1
        except KeyboardInterrupt:
            # The handler was closed on the way out: what was learned is kept.
            _error("interrupted")
            return 130
