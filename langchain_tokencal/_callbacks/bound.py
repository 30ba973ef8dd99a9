"""The bound counter: a ``trim_messages``-ready counter for one model and tool set.

`TokenCalibrationHandler.counter` returns one; calling it counts (or, when
conservative, estimates the high end of) the whole message list through the
handler, so it always uses what the handler has learned by then.
"""

# NB: no ``from __future__ import annotations``: ``trim_messages`` reads the
# annotation of ``__call__``'s first parameter to choose whole-list mode.

from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from langchain_tokencal._calibration import TokenEstimate

__all__ = ["BoundCounter"]


class _Counts(Protocol):
    """What a bound counter needs of its handler."""

    def count_messages(
        self,
        messages: Sequence[Any],
        model: str | None = ...,
        tools: Sequence[Any] | None = ...,
        *,
        provider: str | None = ...,
    ) -> int: ...

    def estimate(
        self,
        messages: Sequence[Any],
        model: str | None = ...,
        tools: Sequence[Any] | None = ...,
        *,
        provider: str | None = ...,
    ) -> TokenEstimate: ...


class BoundCounter:
    """A ``trim_messages``-ready counter bound to one model and tool set.

    Thread-safe as its handler is; it holds no state of its own.

    Example:
        ```python
        from langchain_core.messages import HumanMessage, trim_messages

        from langchain_tokencal import TokenCalibrationHandler

        handler = TokenCalibrationHandler()
        count = handler.counter("gpt-4o")
        trim_messages([HumanMessage("hi")], max_tokens=50, token_counter=count)
        ```
    """

    __slots__ = ("_conservative", "_handler", "_model", "_provider", "_tools")

    def __init__(
        self,
        handler: _Counts,
        model: str,
        tools: Sequence[Any] | None,
        *,
        conservative: bool,
        provider: str | None,
    ) -> None:
        """Bind ``handler`` to a model, tools and provider."""
        self._handler = handler
        self._model = model
        self._tools = tools
        self._conservative = conservative
        self._provider = provider

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        """The prompt tokens of ``messages`` (the high end when conservative)."""
        handler, model, tools = self._handler, self._model, self._tools
        if self._conservative:
            return handler.estimate(
                messages, model, tools, provider=self._provider
            ).high
        return handler.count_messages(messages, model, tools, provider=self._provider)

    def __repr__(self) -> str:
        """Which model it counts for, and whether conservatively."""
        kind = "conservative " if self._conservative else ""
        return f"<{kind}token counter for {self._model!r}>"
