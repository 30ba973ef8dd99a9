"""Logged messages turned into LangChain messages, and the JSON files that hold them.

A prompt may be written as LangChain serialized messages (``{"lc": 1, "type":
"constructor", ...}``), OpenAI-style role dicts, ``[role, content]`` pairs or
plain strings, and LangSmith wraps it in a list of one prompt.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core._api import LangChainBetaWarning
from langchain_core.load import load
from langchain_core.messages import (
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    convert_to_messages,
)

from langchain_tokencal.cli._output import first_line
from langchain_tokencal.errors import TokenCalError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BadLineError", "Converter", "prompt_items", "read_json"]

# Distinct messages kept converted: a logged conversation repeats its history
# on every line, and converting a message costs far more than looking it up.
_MEMO_SIZE = 20_000
# LangChain's ``allowed_objects="messages"`` admits the current message classes
# (and its allowlist is computed once); these older ones need naming.
_LEGACY_CLASSES = (ChatMessage, ChatMessageChunk, FunctionMessage, FunctionMessageChunk)
_LEGACY_NAMES = frozenset(cls.__name__ for cls in _LEGACY_CLASSES)


class BadLineError(Exception):
    """A log line that cannot be used; its message says why."""


class Converter:
    """Turns logged messages into LangChain messages, memoizing repeats.

    Accepts LangChain serialized messages (``{"lc": 1, "type": "constructor",
    ...}``, loaded with an allowlist of message classes), OpenAI-style role
    dicts, ``[role, content]`` pairs and plain strings. Not thread-safe: one
    per command.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], BaseMessage] = {}
        self._last: tuple[Sequence[Any], list[BaseMessage]] = ((), [])
        self._key = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def many(self, items: Sequence[Any]) -> list[BaseMessage]:
        """The messages of one prompt."""
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
        """One message; raises `BadLineError` if it cannot be read."""
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
            msg = f"cannot read a message: {first_line(err)}"
            raise BadLineError(msg) from err
        return message


def prompt_items(value: Any) -> list[Any]:
    """The messages of one prompt, unwrapping LangSmith's list of one prompt."""
    if not isinstance(value, list):
        msg = "the messages must be a JSON list"
        raise BadLineError(msg)
    if value and all(isinstance(x, list) and not _is_pair(x) for x in value):
        if len(value) > 1:
            msg = f"the messages hold {len(value)} prompts; a call has one"
            raise BadLineError(msg)
        value = value[0]
    if not value:
        msg = "the prompt has no messages"
        raise BadLineError(msg)
    items: list[Any] = value
    return items


def _is_pair(item: list[Any]) -> bool:
    """True for a ``[role, content]`` message rather than a list of messages."""
    return len(item) == 2 and isinstance(item[0], str)  # noqa: PLR2004 - a pair


def read_json(path: str, what: str) -> Any:
    """The JSON value of a file (``-`` for stdin); ``what`` names it in errors."""
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
