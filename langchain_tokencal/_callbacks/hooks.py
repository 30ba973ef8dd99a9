"""The LangChain callback hooks of the handler: record, note, queue, forget.

`CallbackHooks` is the part of `TokenCalibrationHandler` that LangChain calls:
``on_chat_model_start``/``on_llm_start`` record the prompt of a run,
``on_llm_new_token`` notes the usage streamed chunks report, ``on_llm_end``
queues the reply for settling, ``on_llm_error`` forgets the run. Each is O(1)
(no I/O, no parsing) and guarded by `contain`: a bug is logged and never
reaches the model call, unless ``raise_error`` is set (as in tests).
Thread-safe; the hooks run inline on the event loop under ``ainvoke``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from typing_extensions import override

from langchain_tokencal._callbacks.guard import contain
from langchain_tokencal._callbacks.introspect import bound_tools, model_key
from langchain_tokencal._callbacks.runs import Pending
from langchain_tokencal._reasons import MODEL_ERROR, ODD_CHUNK

if TYPE_CHECKING:
    from uuid import UUID

    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import LLMResult

    from langchain_tokencal._callbacks.registry import CounterRegistry
    from langchain_tokencal._callbacks.runs import PendingRuns
    from langchain_tokencal._callbacks.settle import Settler

__all__ = ["CallbackHooks"]


class CallbackHooks(BaseCallbackHandler):
    """The callback hooks over a handler's pending runs, registry and settler.

    A base class, not used alone: `TokenCalibrationHandler` builds the three
    parts in its ``__init__``.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal._callbacks.hooks import CallbackHooks

        assert isinstance(TokenCalibrationHandler(), CallbackHooks)
        ```
    """

    raise_error: bool = False
    # The hooks only store references and pop them; staying on the event loop
    # saves two thread hops per call under ``ainvoke``.
    run_inline: bool = True

    _pending: PendingRuns
    _registry: CounterRegistry
    _settler: Settler

    @override
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the prompt of a chat model run."""
        try:
            params = kwargs.get("invocation_params")
            model, provider = model_key(serialized, metadata, params)
            prompt = list(messages[0]) if messages else []
            tools = bound_tools(params, kwargs.get("options"))
            self._pending.put(run_id, Pending(model, provider, prompt, tools))
        except Exception as err:  # noqa: BLE001 - never break the model call
            contain(err, raise_error=self.raise_error, doing="record a chat start")

    @override
    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record the prompt of a completion model run as one user message."""
        try:
            params = kwargs.get("invocation_params")
            model, provider = model_key(serialized, metadata, params)
            prompt = [HumanMessage(prompts[0])] if prompts else []
            self._pending.put(run_id, Pending(model, provider, prompt, None))
        except Exception as err:  # noqa: BLE001 - never break the model call
            contain(err, raise_error=self.raise_error, doing="record an LLM start")

    @override
    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the input tokens each streamed chunk with usage reports."""
        try:
            usage = (
                getattr(chunk.message, "usage_metadata", None)
                if isinstance(chunk, ChatGenerationChunk)
                else None
            )
            pending = self._pending.peek(run_id) if usage else None
            if pending is not None and usage:
                n = _input_tokens(usage)
                if n is None:
                    # Ignored, and counted: the run bills from its other chunks
                    # and its final message.
                    counter = self._registry.counter_for(
                        pending.model, pending.provider
                    )
                    counter.reject(ODD_CHUNK)
                    return
                if pending.streamed is None:
                    pending.streamed = []
                # A 0 too: a stream whose usage never names the prompt (an
                # output-only delta) is told apart from one without usage.
                pending.streamed.append(n)
                if n:
                    # A copy: merging the chunks may build on their dicts.
                    pending.last_chunk = {
                        k: dict(v) if isinstance(v, Mapping) else v
                        for k, v in usage.items()
                    }
        except Exception as err:  # noqa: BLE001 - never break the model call
            contain(err, raise_error=self.raise_error, doing="read a streamed chunk")

    @override
    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue the reply of a run: its usage is read at the next read or count."""
        try:
            raise_error = self.raise_error
            self._settler.end(
                self._pending.pop(run_id), response, raise_error=raise_error
            )
        except Exception as err:  # noqa: BLE001 - never break the model call
            contain(err, raise_error=self.raise_error, doing="learn from a response")

    @override
    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Forget the prompt of a failed run, and count the failure."""
        try:
            pending = self._pending.pop(run_id)
            if pending is not None:
                counter = self._registry.counter_for(pending.model, pending.provider)
                counter.reject(MODEL_ERROR)
        except Exception as err:  # noqa: BLE001 - never break the model call
            contain(err, raise_error=self.raise_error, doing="record a model error")


# Largest count a chunk may report (the bound `parse_usage` applies).
_MAX_COUNT = 10**9


def _input_tokens(usage: object) -> int | None:
    """A chunk's input tokens (0 when it names none), or None for odd usage.

    Odd: not a mapping, or ``input_tokens`` that is not an integer in
    ``[0, 1e9]`` (a bool, a string, a negative or absurd number).
    """
    if not isinstance(usage, Mapping):
        return None
    n = usage.get("input_tokens")
    if n is None:
        return 0
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX_COUNT:
        return None
    return n
