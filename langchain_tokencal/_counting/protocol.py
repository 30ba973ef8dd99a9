"""The counter protocol: what a token counter is, and what it counts with.

`TokenCounter` is the shape every counter has (a callable over messages and
tools); `CounterInfo` says what a local counter counts with; `as_messages`
turns what a caller passes into LangChain messages, without a copy when it
already is a list of them.

Note:
    This module must not use ``from __future__ import annotations``:
    `trim_messages` reads the annotation of the first parameter of a
    counter's ``__call__`` at run time (see `LocalCounter`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue

from langchain_tokencal._counting.kinds import all_messages

__all__ = ["CounterInfo", "TokenCounter", "as_messages"]


def as_messages(messages: Sequence[Any] | PromptValue) -> Sequence[BaseMessage]:
    """Return ``messages`` as LangChain messages, converting only if needed.

    A list or tuple of `BaseMessage` is returned as it is (no copy); message-like
    items (tuples, dicts, strings) go through `convert_to_messages`; a single
    string, a `PromptValue` or an iterator are accepted too.

    Example:
        ```python
        from langchain_tokencal._counting import as_messages

        (message,) = as_messages([("user", "hi")])
        assert message.type == "human"
        ```
    """
    if not isinstance(messages, (list, tuple)):
        if isinstance(messages, str):
            return convert_to_messages([messages])
        if isinstance(messages, PromptValue):
            return messages.to_messages()
        messages = list(messages)  # an iterator must not be consumed twice
    if all_messages(messages):
        return messages
    return convert_to_messages(messages)


@runtime_checkable
class TokenCounter(Protocol):
    """Anything that counts the prompt tokens of a message list (and tools).

    Example:
        ```python
        from langchain_tokencal._counting import TokenCounter, local_counter

        assert isinstance(local_counter("gpt-4o"), TokenCounter)
        ```
    """

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the prompt tokens of ``messages`` with ``tools`` bound."""
        ...


@dataclass(frozen=True, slots=True)
class CounterInfo:
    """What a local counter counts with.

    Attributes:
        model: The model name the counter was made for.
        provider: The provider it was made for, or None.
        kind: ``"exact"`` for an OpenAI model counted with its own tiktoken
            encoding, else ``"approximate"``.
        encoding: The tiktoken encoding used, or None for the pure
            character-class approximation.
        fallback: True when the wanted encoding could not be loaded.
        reason: Why the count is not exact, or None.
        tokenizer: What an exact non-OpenAI counter counts with (a
            ``tokenizer.json`` folder, ``mistral-common``...), or None.

    Example:
        ```python
        from langchain_tokencal._counting import local_counter

        info = local_counter("gpt-4o").info
        assert (info.kind, info.encoding) == ("exact", "o200k_base")
        ```
    """

    model: str
    provider: str | None
    kind: str
    encoding: str | None
    fallback: bool
    reason: str | None
    tokenizer: str | None = None
