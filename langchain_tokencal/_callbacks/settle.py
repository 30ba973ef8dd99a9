"""Settling ended runs: parse each reply's usage, bill it, queue it for learning.

``on_llm_end`` only queues the reply (an O(1) append); the usage is parsed
(a stream whose chunks each carried cumulative usage: the last chunk's),
billed and handed to the model's counter when the handler is next read (a
count, ``usage``, ``stats()``, ``flush()``, a store push) or, when nothing
reads, inside the callback once `SETTLE_AT` replies wait. Billing keeps plain
integer sums per model (`ModelTotals`), in ``USAGE_FIELDS`` order.

Thread-safe: the queue is a deque any thread may drain (each run is taken
once), and the totals are summed under a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from langchain_core.messages import AIMessage, BaseMessage

from langchain_tokencal._calibration import Observation, ReplyParts
from langchain_tokencal._callbacks.guard import contain
from langchain_tokencal._callbacks.introspect import tool_calls
from langchain_tokencal._reasons import (
    CACHE_HIT,
    INFLATED_STREAM,
    MALFORMED_USAGE,
    NO_USAGE,
    STREAM_WITHOUT_INPUT,
)
from langchain_tokencal._usage import (
    USAGE_FIELDS,
    TokenUsage,
    coerce_usage,
    explain_usage,
    parse_usage,
    usage_metadata,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.outputs import LLMResult

    from langchain_tokencal._calibration import CalibratedCounter
    from langchain_tokencal._callbacks.baseline import Baseline
    from langchain_tokencal._callbacks.registry import CounterRegistry
    from langchain_tokencal._callbacks.runs import Pending

__all__ = ["SETTLE_AT", "ModelTotals", "Settler"]

SETTLE_AT: Final = 64
"""How many ended runs may wait unsettled: the one that makes this many is
settled, with the others, inside its own ``on_llm_end``."""


class ModelTotals:
    """One model's summed usage, one attribute per name in ``USAGE_FIELDS``.

    Not thread-safe on its own: `Settler` adds to it under its lock.

    Example:
        ```python
        from langchain_tokencal._callbacks.settle import ModelTotals

        totals = ModelTotals()
        totals.input_tokens += 12
        assert totals.row()[:3] == (12, 0, 0)
        ```
    """

    __slots__ = USAGE_FIELDS

    def __init__(self) -> None:
        """All sums at zero."""
        for name in USAGE_FIELDS:
            setattr(self, name, 0)

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int
    cache_creation: int
    reasoning: int
    input_audio: int
    output_audio: int

    def add(self, row: Sequence[int]) -> None:
        """Add one call's counts, given in ``USAGE_FIELDS`` order."""
        self.input_tokens += row[0]
        self.output_tokens += row[1]
        self.total_tokens += row[2]
        self.cache_read += row[3]
        self.cache_creation += row[4]
        self.reasoning += row[5]
        self.input_audio += row[6]
        self.output_audio += row[7]

    def row(self) -> tuple[int, ...]:
        """The sums in ``USAGE_FIELDS`` order."""
        return tuple(getattr(self, name) for name in USAGE_FIELDS)


def reason(usage: TokenUsage | None, streamed: list[int] | None) -> str | None:
    """Why a run's usage cannot be learned from, or ``None`` when it can.

    ``streamed`` holds the input tokens of each streamed chunk that carried
    usage (``None`` for a run that did not stream any).
    """
    if usage is None:
        return NO_USAGE
    if "llm_cache_hit" in usage.flags:
        return CACHE_HIT
    if "server_tool_input" in usage.flags:
        return "server tool input"
    if streamed is not None and usage.input_tokens == 0 and usage.output_tokens:
        # The stream's usage counted the reply only (an Anthropic-compatible
        # server's output-only message_delta): usage reporting is on, yet it
        # never names the prompt.
        return STREAM_WITHOUT_INPUT
    if streamed and len(streamed) > 1 and usage.input_tokens > max(streamed):
        # Chunks that each carried the prompt count were summed by the merge.
        return INFLATED_STREAM
    return None


def _missing(payload: object) -> str:
    """Why a payload gave no usage: none at all, or usage that cannot be true."""
    try:
        said = explain_usage(payload)
    except Exception:  # noqa: BLE001 - only the reason's name is at stake
        return NO_USAGE
    return MALFORMED_USAGE if said.startswith("rejected") else NO_USAGE


def cumulative_usage(pending: Pending) -> TokenUsage | None:
    """The call's usage from the last streamed chunk, if the chunks were cumulative.

    Every chunk that named the prompt named the same count (vLLM's
    ``continuous_usage_stats``, Gemini): the last one holds the whole call's
    usage, output included. Counts that changed within the stream (server
    tools fed results back) are not the prompt's: ``None``.
    """
    last = pending.last_chunk
    if not last or not pending.streamed:
        return None
    usage = parse_usage(last)
    inputs = {n for n in pending.streamed if n}
    if usage is None or inputs != {usage.input_tokens}:
        return None
    return replace(usage, flags=usage.flags | {"cumulative_stream"})


def unsummed(
    pending: Pending, merged: TokenUsage | None
) -> tuple[TokenUsage | None, TokenUsage | None, str | None]:
    """What to learn, what to bill and why not, for a stream LangChain summed.

    The merge summed cumulative counts; the last chunk's are the call's: bill
    them, and learn from them when they are the prompt's.
    """
    last = cumulative_usage(pending)
    if last is not None:
        return last, last, None
    billed = parse_usage(pending.last_chunk) if pending.last_chunk else merged
    return merged, billed, INFLATED_STREAM


class Settler:
    """The ended-run queue of one handler, and the usage it has billed.

    Args:
        registry: The handler's counters (a settled run is learned by its own).
        bill_store: Where each billed increment also goes (the store sync).

    Example:
        ```python
        from langchain_tokencal._callbacks.registry import CounterRegistry
        from langchain_tokencal._callbacks.settle import Settler
        from langchain_tokencal._usage import TokenUsage
        from langchain_tokencal.config import CounterConfig

        registry = CounterRegistry(CounterConfig(), "me", lambda events: None)
        settler = Settler(registry, lambda model, row: None)
        settler.bill("gpt-4o", TokenUsage(10, 2, 12))
        assert settler.usage()["gpt-4o"]["total_tokens"] == 12
        ```
    """

    __slots__ = ("_bill_store", "_lock", "_registry", "_totals", "baseline", "ended")

    def __init__(
        self,
        registry: CounterRegistry,
        bill_store: Callable[[str, Sequence[int]], None],
    ) -> None:
        """Create an empty queue with nothing billed."""
        self._registry = registry
        self._bill_store = bill_store
        # Measured against every learned report (see `baseline`), if set.
        self.baseline: Baseline | None = None
        self._lock = threading.Lock()
        self._totals: dict[str, ModelTotals] = {}
        # Runs ended and not yet parsed: (pending, reply message).
        self.ended: deque[tuple[Pending | None, BaseMessage]] = deque()

    def end(
        self, pending: Pending | None, response: LLMResult, *, raise_error: bool
    ) -> None:
        """Queue an ended run's reply (settling the queue once it is full)."""
        try:
            message: Any = getattr(response.generations[0][0], "message", None)
        except IndexError:
            message = None
        if not isinstance(message, BaseMessage):
            self.settle(pending, None, response)  # completion models: rare
            return
        # The message object, not its generation: an LLM cache later points the
        # cached generation at a zero-cost copy; the message itself stays as is.
        ended = self.ended
        ended.append((pending, message))
        if len(ended) >= SETTLE_AT:
            # Nobody reads: bound it, learning as it goes.
            self.settle_ended(raise_error=raise_error, learn=True)

    def settle_ended(self, *, raise_error: bool, learn: bool = False) -> None:
        """Parse, bill and queue for learning the runs that ended before this call.

        Not those that keep ending meanwhile: busy threads could otherwise
        keep the caller settling forever. ``learn``: whether settling may also
        learn (in a callback); a reader that counts next learns there, within
        its budget, instead.
        """
        ended = self.ended
        for _ in range(len(ended)):
            try:
                pending, message = ended.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                self.settle(pending, message, None, learn=learn)
            except Exception as err:  # noqa: BLE001 - one bad report loses nothing else
                contain(err, raise_error=raise_error, doing="learn from a response")

    def settle(
        self,
        pending: Pending | None,
        message: BaseMessage | None,
        response: LLMResult | None,
        *,
        learn: bool = True,
    ) -> None:
        """Parse one ended run's usage, bill it, and queue it for learning."""
        usage = parse_usage(message if message is not None else response)
        registry = self._registry
        if pending is None:
            # Started before this handler was attached, or expired: bill only.
            if usage is not None and "llm_cache_hit" not in usage.flags:
                # The response names a snapshot: bill it under the model's key.
                name = usage.model or "unknown"
                self.bill(registry.aliases.get(name, name), usage)
            return
        counter = registry.counter_for(pending.model, pending.provider)
        snapshot = usage.model if usage is not None else None
        if snapshot and snapshot != pending.model and snapshot not in registry.aliases:
            registry.alias(snapshot, pending.model)
        why = reason(usage, pending.streamed)
        billed = usage
        if why == INFLATED_STREAM:
            usage, billed, why = unsummed(pending, usage)
        if billed is not None and "llm_cache_hit" not in billed.flags:
            self.bill(pending.model, billed)
        if why is not None or usage is None:
            counter.reject(
                why or _missing(message if message is not None else response)
            )
            return
        if self.baseline is not None:
            self.baseline.measure(
                pending.model, pending.messages, pending.tools, usage.input_tokens
            )
        reply = None
        if isinstance(message, BaseMessage):
            # Copy the parts, not the result's own object: an LLM cache holds and
            # later rewrites what it stored. The message is built when learning.
            content = message.content
            if not isinstance(content, str):
                content = [dict(b) if isinstance(b, dict) else b for b in content]
            reply = ReplyParts(content, tool_calls(message))
        counter.submit(
            Observation(pending.messages, pending.tools, usage, reply), learn=learn
        )

    def observe(
        self,
        counter: CalibratedCounter,
        messages: Sequence[Any],
        response_or_usage: Any,
        tools: Sequence[Any] | None,
        provider: str | None,
    ) -> str | None:
        """Bill and learn one call made without callbacks; why not, or None."""
        usage = coerce_usage(response_or_usage, provider)
        why = _missing(response_or_usage) if usage is None else reason(usage, None)
        if why is not None or usage is None:
            counter.reject(why or NO_USAGE)
            return why or NO_USAGE
        self.bill(counter.model, usage)
        if self.baseline is not None:
            self.baseline.measure(counter.model, messages, tools, usage.input_tokens)
        reply = response_or_usage if isinstance(response_or_usage, AIMessage) else None
        return counter.observe(messages, usage, tools, reply=reply)

    def bill(self, model: str, usage: TokenUsage) -> None:
        """Add one call's usage to the model's totals and to the store's."""
        # Plain integer sums under the lock: langchain-core's add_usage merges
        # dicts recursively, which costs more than the rest of the hook.
        extras = usage.extras
        row = (
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            usage.cache_read,
            usage.cache_creation,
            usage.reasoning,
            extras.get("input_audio", 0) if extras else 0,
            extras.get("output_audio", 0) if extras else 0,
        )
        with self._lock:
            totals = self._totals.get(model)
            if totals is None:
                totals = self._totals[model] = ModelTotals()
            totals.add(row)
        self._bill_store(model, row)

    def usage(self) -> dict[str, UsageMetadata]:
        """The billed usage per model (a new mapping; settle first to be current)."""
        with self._lock:
            rows = {model: totals.row() for model, totals in self._totals.items()}
        return {model: usage_metadata(row) for model, row in rows.items()}
