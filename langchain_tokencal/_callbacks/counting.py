"""The counting methods of the handler: counts, estimates, counters and trims.

`TokenCalibrationHandler` inherits them. Each resolves ``model=`` (a name or a
chat model, `model_ref`) to the model's calibrated counter after settling the
runs that ended, then delegates: to the counter, to a `BoundCounter`, or to
`trim_history`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import trim_messages

from langchain_tokencal._callbacks.bound import BoundCounter, as_system
from langchain_tokencal._callbacks.models import model_ref
from langchain_tokencal._callbacks.trim import trim_history
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage, SystemMessage
    from langchain_core.runnables import Runnable

    from langchain_tokencal._calibration import CalibratedCounter, TokenEstimate
    from langchain_tokencal._callbacks.baseline import Baseline
    from langchain_tokencal._callbacks.registry import CounterRegistry

__all__ = ["CountingMethods"]


class CountingMethods:
    """Counting by model name or chat model; mixed into the handler."""

    _registry: CounterRegistry
    _ended: Any
    # The baseline that answers counts in shadow mode (None: ours answers).
    _shadow: Baseline | None = None

    if TYPE_CHECKING:

        def _settle_ended(self) -> None: ...

    def _lookup(
        self, model: Any, tools: Sequence[Any] | None, provider: str | None
    ) -> tuple[CalibratedCounter, Sequence[Any] | None]:
        """The counter ``model=`` stands for, and the tools to count."""
        if self._ended:
            self._settle_ended()
        ref = model_ref(model)
        registry = self._registry
        counter = registry.counter_for(
            registry.resolve(ref.name), provider or ref.provider
        )
        return counter, ref.tools if tools is None else tools

    def count_messages(
        self,
        messages: Sequence[Any],
        model: str | BaseChatModel | Runnable[Any, Any] | None = None,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> int:
        """Count the prompt tokens ``messages`` will cost on ``model``.

        Args:
            messages: The prompt: messages or LangChain message-like inputs.
            model: The configured model name (or a dated snapshot of it), or
                the chat model itself, keyed as the callback keys its runs; a
                ``bind_tools`` binding also brings its tools. May be omitted
                when the handler has seen exactly one model.
            tools: Tools that will be bound to the call.
            provider: Where the model is served (``"anthropic"``, ``"ollama"``...),
                for a model no run has reported yet; it picks the local counter
                and the priors. Guessed from the model name when omitted.

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            n = handler.count_messages([("user", "hi")], model="gpt-4o")
            ```
        """
        counter, tools = self._lookup(model, tools, provider)
        if self._shadow is not None:
            return self._shadow.count(messages, tools)
        return counter.count(messages, tools)

    def estimate(
        self,
        messages: Sequence[Any],
        model: str | BaseChatModel | Runnable[Any, Any] | None = None,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> TokenEstimate:
        """Estimate the prompt tokens with an interval and its basis.

        Args:
            messages: The prompt: messages or LangChain message-like inputs.
            model: A model name or chat model (see `count_messages`).
            tools: Tools that will be bound to the call.
            provider: Where the model is served (see `count_messages`).

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            est = handler.estimate([("user", "hi")], model="gpt-4o")
            assert est.low <= est.tokens <= est.high
            ```
        """
        counter, tools = self._lookup(model, tools, provider)
        return counter.estimate(messages, tools)

    def counter(
        self,
        model: str | BaseChatModel | Runnable[Any, Any],
        tools: Sequence[Any] | None = None,
        system: str | SystemMessage | None = None,
        conservative: bool = False,  # noqa: FBT001, FBT002 - the documented signature
        *,
        provider: str | None = None,
    ) -> BoundCounter:
        """LangChain's ``TokenCounter`` for ``trim_messages``, agents and budgets.

        The counter's signature is ``(messages, *, tools=None) -> int``:
        call-time tools replace the bound ones (deepagents passes them).

        Args:
            model: A model name or chat model (see `count_messages`).
            tools: Tools that will be bound (their cost is included).
            system: A system prompt the request carries outside the counted
                list (an agent's ``system_prompt``): counted as prepended to
                a list that does not start with a system message.
            conservative: Count the interval's ``high`` end, so a trimmed
                history rarely overflows the context window.
            provider: Where the model is served (see `count_messages`).

        A list holding only a system message counts what that message adds
        to a prompt, without the fixed costs (framing, tool preamble and
        schemas): ``trim_messages(include_system=True)`` subtracts it from
        the budget and then counts the rest as a prompt, so those costs are
        charged once.

        Example:
            ```python
            from langchain_core.messages import trim_messages

            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            history = [("user", "hi"), ("ai", "hello"), ("user", "bye")]
            trim_messages(
                history,
                max_tokens=20,
                token_counter=handler.counter("gpt-4o"),
                strategy="last",
            )
            ```
        """
        ref = model_ref(model)
        if ref.name is None:
            msg = "counter() needs model=: a model name or a chat model."
            raise ConfigError(msg)
        bound_tools = ref.tools if tools is None else tools
        prov = provider or ref.provider

        def resolve() -> CalibratedCounter:
            return self._lookup(ref.name, None, prov)[0]

        return BoundCounter(
            resolve,
            ref.name,
            bound_tools,
            system=as_system(system),
            conservative=conservative,
            shadow=self._shadow,
        )

    def trim(
        self,
        messages: Sequence[Any],
        max_tokens: int,
        model: str | BaseChatModel | Runnable[Any, Any] | None = None,
        tools: Sequence[Any] | None = None,
        *,
        system: str | SystemMessage | None = None,
        conservative: bool = False,
        provider: str | None = None,
        **trim_messages_kwargs: Any,
    ) -> list[BaseMessage]:
        """What ``trim_messages`` keeps with this handler's count, faster.

        The history's messages are read once, not once per candidate list;
        the result is the list ``trim_messages(messages, max_tokens,
        token_counter=handler.counter(model, tools, system, conservative))``
        returns.

        Args:
            messages: The history.
            max_tokens: The budget for the whole prompt.
            model: A model name or chat model (see `count_messages`).
            tools: Tools that will be bound (charged once).
            system: A system prompt sent outside ``messages`` (see `counter`).
            conservative: Count the interval's ``high`` end.
            provider: Where the model is served (see `count_messages`).
            **trim_messages_kwargs: ``strategy`` (default ``"last"``),
                ``include_system``, ``start_on``, ``end_on``,
                ``allow_partial``, ``text_splitter``.

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            history = [("system", "Be brief."), ("user", "hi"), ("ai", "hello")]
            kept = handler.trim(history, 30, model="gpt-4o", include_system=True)
            assert kept[0].type == "system"
            ```
        """
        counter, tools = self._lookup(model, tools, provider)
        trim_messages_kwargs.setdefault("strategy", "last")
        if self._shadow is not None:
            return trim_messages(
                messages,
                max_tokens=max_tokens,
                token_counter=self.counter(
                    counter.model, tools, system, conservative, provider=provider
                ),
                **trim_messages_kwargs,
            )
        return trim_history(
            counter,
            messages,
            max_tokens,
            tools=tools,
            system=as_system(system),
            conservative=conservative,
            label=counter.model,
            **trim_messages_kwargs,
        )
