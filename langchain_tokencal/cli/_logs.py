"""Log files of recorded calls, read line by line into calls to learn from.

Two line formats are read: ``{"messages": [...], "usage": {...} or
"response": {...}, "tools": [...], "model": "..."}``, and a LangSmith run
export (``inputs.messages``, ``outputs`` with ``usage_metadata``,
``extra.metadata``).
"""

from __future__ import annotations

import os
import stat
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage

from langchain_tokencal.cli._messages import BadLineError, Converter, prompt_items
from langchain_tokencal.errors import TokenCalError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Call", "call_of", "log_lines"]


@dataclass(frozen=True, slots=True)
class Call:
    """One recorded call, ready for `TokenCalibrationHandler.observe`."""

    messages: list[BaseMessage]
    response: Any
    tools: list[Any] | None
    model: str | None
    provider: str | None


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


def call_of(obj: Any, convert: Converter) -> Call | None:
    """Read one log line; None for a run to skip (not a successful chat call)."""
    if not isinstance(obj, dict):
        msg = "expected a JSON object on each line"
        raise BadLineError(msg)
    if "messages" not in obj and isinstance(obj.get("inputs"), dict):
        return _run_of(obj, convert)
    if "messages" not in obj:
        msg = 'no "messages" (nor a LangSmith run\'s "inputs")'
        raise BadLineError(msg)
    if "usage" in obj:
        response = obj["usage"]
    elif "response" in obj:
        response = obj["response"]
        if isinstance(response, dict) and response.get("lc") == 1:
            response = convert.one(response)
    else:
        msg = 'no "usage" or "response"'
        raise BadLineError(msg)
    tools = obj.get("tools")
    if tools is not None and not isinstance(tools, list):
        msg = '"tools" must be a list'
        raise BadLineError(msg)
    model = obj.get("model")
    if model is not None and _text(model) is None:
        msg = '"model" must be a model name'
        raise BadLineError(msg)
    messages = convert.many(prompt_items(obj["messages"]))
    return Call(messages, response, tools, model, _text(obj.get("provider")))


def _run_of(run: dict[str, Any], convert: Converter) -> Call | None:
    """A LangSmith run export: inputs.messages, outputs, extra.metadata."""
    if run.get("run_type", "llm") != "llm" or run.get("error"):
        return None
    outputs = run.get("outputs")
    items = run["inputs"].get("messages")
    if not isinstance(outputs, dict) or items is None:
        # Pending runs, completion-LLM runs (inputs.prompts): no chat prompt.
        return None
    messages = convert.many(prompt_items(items))
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
    return Call(messages, response, tools or None, model, provider)


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
        done += len(raw)
        if isinstance(raw, bytes):
            try:
                text: str | None = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError:
                text = None
        else:
            text = raw
        yield n, text, done


@contextmanager
def log_lines(path: str) -> Iterator[tuple[str, int | None, Iterator[Any]]]:
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
