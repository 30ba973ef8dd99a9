"""The callback handler that learns token counts, and its context manager."""

# NB: no ``from __future__ import annotations``: the counters this module hands
# to ``trim_messages`` must carry evaluated annotations.

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.tracers.context import register_configure_hook
from typing_extensions import override

from langchain_tokencal._calibration import (
    CalibratedCounter,
    ModelStats,
    Observation,
    ReplyParts,
    TokenEstimate,
)
from langchain_tokencal._callbacks.runs import Pending, PendingRuns
from langchain_tokencal._providers import (
    canonical_label,
    provider_of_llm_type,
    snapshot_of,
)
from langchain_tokencal._reasons import (
    CACHE_HIT,
    INFLATED_STREAM,
    MODEL_ERROR,
    NO_USAGE,
)
from langchain_tokencal._reporting import (
    HealthReport,
    check_health,
    stats_frame,
    stats_html,
)
from langchain_tokencal._usage import USAGE_FIELDS, TokenUsage, parse_usage
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import LearnEvent, read_events, write_events
from langchain_tokencal.storage import MemoryStore, Store
from langchain_tokencal.storage._sync import StoreSync, open_or_defer

if TYPE_CHECKING:
    import os

    import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["TokenCalibrationHandler", "get_tokencal_callback"]


def _model_key(
    serialized: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
) -> tuple[str, str | None]:
    """The stable model key and provider of a run (configured name first)."""
    md = metadata or {}
    ip = params or {}
    model = md.get("ls_model_name")
    provider = md.get("ls_provider")
    if not model:
        for key in ("model", "model_name", "model_id", "deployment_name"):
            if ip.get(key):
                model = ip[key]
                break
    if not model and serialized:
        kwargs = serialized.get("kwargs") or {}
        model = kwargs.get("model") or kwargs.get("model_name")
    if not provider:
        provider = provider_of_llm_type(str(ip.get("_type", "")))
    return str(model or "unknown"), (str(provider) if provider else None)


# Ended runs wait for the next count, read or sync to be parsed and billed;
# this many are settled inside the callback when nothing reads meanwhile.
_SETTLE_AT = 64
# Invocation parameters that carry tools or an output schema.
_TOOL_PARAMS = frozenset({"tools", "functions", "response_format"})


def _bound_tools(
    params: Mapping[str, Any] | None, options: Mapping[str, Any] | None
) -> list[Any] | None:
    """Tools and structured-output schemas bound to a call: they are prompt."""
    ip = params or {}
    if ip.keys().isdisjoint(_TOOL_PARAMS) and (
        not options or options.get("ls_structured_output_format") is None
    ):
        return None  # the common call: nothing bound, nothing to inspect
    tools: list[Any] = []
    for key in ("tools", "functions"):
        value = ip.get(key)
        if isinstance(value, (list, tuple)):
            tools.extend(value)
    response_format = ip.get("response_format")
    inner = (
        response_format.get("json_schema")
        if isinstance(response_format, Mapping)
        else None
    )
    if isinstance(inner, Mapping) and isinstance(inner.get("schema"), Mapping):
        # OpenAI's {"type": "json_schema", ...} is no tool format the counters
        # read: restate it as the function tool of the same schema.
        function = {"name": str(inner.get("name") or "response_format")}
        if inner.get("description"):
            function["description"] = str(inner["description"])
        tools.append(
            {
                "type": "function",
                "function": {**function, "parameters": dict(inner["schema"])},
            }
        )
    elif isinstance(response_format, type):
        # A pydantic class, passed through as is (ChatOpenAI does).
        tools.append(response_format)
    if not tools and options:
        # ``with_structured_output`` by JSON mode leaves only this trace.
        structured = options.get("ls_structured_output_format")
        schema = structured.get("schema") if isinstance(structured, Mapping) else None
        if isinstance(schema, Mapping):
            tools.append(dict(schema))
    return tools or None


class _BoundCounter:
    """A ``trim_messages``-ready counter bound to one model and tool set."""

    __slots__ = ("_conservative", "_handler", "_model", "_provider", "_tools")

    def __init__(
        self,
        handler: "TokenCalibrationHandler",
        model: str,
        tools: Sequence[Any] | None,
        *,
        conservative: bool,
        provider: str | None,
    ) -> None:
        self._handler = handler
        self._model = model
        self._tools = tools
        self._conservative = conservative
        self._provider = provider

    def __call__(self, messages: Sequence[BaseMessage]) -> int:
        handler, model, tools = self._handler, self._model, self._tools
        if self._conservative:
            return handler.estimate(
                messages, model, tools, provider=self._provider
            ).high
        return handler.count_messages(messages, model, tools, provider=self._provider)

    def __repr__(self) -> str:
        kind = "conservative " if self._conservative else ""
        return f"<{kind}token counter for {self._model!r}>"


class TokenCalibrationHandler(BaseCallbackHandler):
    """Learns, per model, to count prompt tokens from the usage calls report.

    Attach it to chat models (``callbacks=[handler]``, ``config=``, or
    `get_tokencal_callback`). ``on_chat_model_start`` records the prompt,
    ``on_llm_end`` queues the reply that carries the usage; both are O(1) and
    never raise into the call (unless ``raise_error`` is set, for tests). The
    usage is parsed and billed at the next read (a count, ``usage``,
    ``stats()``, ``flush()``, a store sync) or inside the callback once 64
    replies wait, and learned from at the next count. Thread-safe and usable
    from async code.

    Args:
        config: A `CounterConfig` or a mapping of its settings.
        store: Where the calibration lives: ``None`` or ``"memory://"`` (this
            process only, the default), ``"sqlite:///path/to/file.db"`` (survives
            restarts; several processes may share the file),
            ``"redis://host:port/db"`` (shared across processes and machines;
            ``pip install 'langchain-tokencal[redis]'``), or a `Store`. What
            is stored is numbers and hashes, never prompt text. The store's I/O
            runs on a background thread; a store that is down degrades to
            in-memory counting with one warning and is retried.
        sync_interval: Seconds between background pushes to and pulls from
            the store.
        clock: Monotonic clock for the caches, injectable for tests.
        **settings: Individual `CounterConfig` settings over ``config``.

    Raises:
        StoreError: When ``store`` names a SQLite file that cannot be created
            or opened (a store that is merely unreachable is retried instead).
        ConfigError: On an unknown store scheme or an invalid setting.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal.testing._model import FakeUsageChatModel

        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(model="fake-claude", callbacks=[handler])
        history = [("user", "Summarize the plot of Hamlet in one line.")]
        llm.invoke(history)
        handler.count_messages(history, model="fake-claude")  # exact now
        ```
    """

    raise_error: bool = False
    # The hooks only store references and pop them; staying on the event loop
    # saves two thread hops per call under ``ainvoke``.
    run_inline: bool = True

    def __init__(
        self,
        *,
        config: CounterConfig | Mapping[str, Any] | None = None,
        store: "str | Store | None" = None,
        sync_interval: float = 2.0,
        clock: Callable[[], float] | None = None,
        **settings: Any,
    ) -> None:
        """Create a handler (loading what ``store`` already holds)."""
        super().__init__()
        if isinstance(config, Mapping):
            config = CounterConfig.from_mapping(config)
        config = config or CounterConfig()
        self.config = config.replace(**settings) if settings else config
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, CalibratedCounter] = {}
        self._aliases: dict[str, str] = {}
        # Per model: the sums of USAGE_FIELDS.
        self._usage: dict[str, list[int]] = {}
        # Runs ended and not yet parsed: (pending, reply message); see _end.
        self._ended: deque[tuple[Pending | None, BaseMessage]] = deque()
        self._pending = PendingRuns(
            self.config.pending_size,
            self.config.pending_ttl,
            **({} if clock is None else {"clock": clock}),
        )
        self.origin = uuid4().hex
        opened = open_or_defer(store)
        shared = None if isinstance(opened, MemoryStore) and store is None else opened
        self._sync = StoreSync(
            shared, self.origin, self._replay, interval=sync_interval
        )
        # Usage reaches the store once settled: settle before every push.
        self._sync.before_push(self._settle_ended)
        # Load what the store holds now; if it is unreachable this logs one
        # warning and the background thread retries.
        self._sync.start()

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> "TokenCalibrationHandler":
        """Create a handler from settings read from YAML, TOML or JSON.

        The mapping holds `CounterConfig` settings, plus ``store`` and
        ``sync_interval`` for the handler itself.

        Raises:
            ConfigError: On an unknown key (listing the valid ones) or value.
        """
        settings = dict(mapping)
        store = settings.pop("store", None)
        interval = settings.pop("sync_interval", 2.0)
        return cls(
            config=CounterConfig.from_mapping(settings),
            store=store,
            sync_interval=interval,
        )

    def __repr__(self) -> str:
        """Models known and pending runs."""
        return (
            f"TokenCalibrationHandler(models={sorted(self._counters)!r}, "
            f"pending={len(self._pending)})"
        )

    # -- callback hooks ---------------------------------------------------

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
            model, provider = _model_key(serialized, metadata, params)
            prompt = list(messages[0]) if messages else []
            tools = _bound_tools(params, kwargs.get("options"))
            self._pending.put(run_id, Pending(model, provider, prompt, tools))
        except Exception:
            if self.raise_error:
                raise
            logger.exception("tokencal: could not record a chat model start")

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
            model, provider = _model_key(serialized, metadata, params)
            prompt = [HumanMessage(prompts[0])] if prompts else []
            self._pending.put(run_id, Pending(model, provider, prompt, None))
        except Exception:
            if self.raise_error:
                raise
            logger.exception("tokencal: could not record an LLM start")

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
        """Note the input tokens each streamed chunk reports."""
        if not isinstance(chunk, ChatGenerationChunk):
            return
        usage = getattr(chunk.message, "usage_metadata", None)
        if usage:
            n = usage.get("input_tokens") or 0
            pending = self._pending.peek(run_id) if n else None
            if pending is not None:
                if pending.streamed is None:
                    pending.streamed = []
                pending.streamed.append(n)
                # A copy: merging the chunks may build on their dicts.
                pending.last_chunk = {
                    k: dict(v) if isinstance(v, Mapping) else v
                    for k, v in usage.items()
                }

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
            self._end(response, run_id)
        except Exception:
            if self.raise_error:
                raise
            logger.exception("tokencal: could not learn from a model response")

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
        """Forget the prompt of a failed run."""
        pending = self._pending.pop(run_id)
        if pending is not None:
            self._counter_for(pending.model, pending.provider).reject(MODEL_ERROR)

    def _end(self, response: LLMResult, run_id: UUID) -> None:
        pending = self._pending.pop(run_id)
        try:
            message: Any = getattr(response.generations[0][0], "message", None)
        except IndexError:
            message = None
        if not isinstance(message, BaseMessage):
            self._settle(pending, None, response)  # completion models: rare
            return
        # The message object, not its generation: an LLM cache later points the
        # cached generation at a zero-cost copy; the message itself stays as is.
        # Parsing and billing wait for the next read (see _settle_ended).
        self._ended.append((pending, message))
        if len(self._ended) >= _SETTLE_AT:
            self._settle_ended()  # nobody reads: bound the queue here

    def _settle_ended(self) -> None:
        """Parse, bill and queue for learning every run ended since last time."""
        ended = self._ended
        while ended:
            try:
                pending, message = ended.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                self._settle(pending, message, None)
            except Exception:
                if self.raise_error:
                    raise
                logger.exception("tokencal: could not learn from a model response")

    def _settle(
        self,
        pending: Pending | None,
        message: BaseMessage | None,
        response: LLMResult | None,
    ) -> None:
        """Parse one ended run's usage, bill it, and queue it for learning."""
        streamed = pending.streamed if pending is not None else None
        usage = parse_usage(message if message is not None else response)
        if pending is None:
            # Started before this handler was attached, or expired: bill only.
            if usage is not None and "llm_cache_hit" not in usage.flags:
                # The response names a snapshot: bill it under the model's key.
                name = usage.model or "unknown"
                self._bill(self._aliases.get(name, name), usage)
            return
        counter = self._counter_for(pending.model, pending.provider)
        snapshot = usage.model if usage is not None else None
        if snapshot and snapshot != pending.model and snapshot not in self._aliases:
            with self._lock:
                self._aliases[snapshot] = pending.model
        reason = self._reason(usage, streamed)
        billed = usage
        if reason == INFLATED_STREAM and pending.last_chunk:
            # The merge summed cumulative counts; the last chunk's are the call's.
            billed = parse_usage(pending.last_chunk)
        if billed is not None and "llm_cache_hit" not in billed.flags:
            self._bill(pending.model, billed)
        if reason is not None or usage is None:
            counter.reject(reason or NO_USAGE)
            return
        reply = None
        if isinstance(message, BaseMessage):
            # Copy the parts, not the result's own object: an LLM cache holds and
            # later rewrites what it stored. The message is built when learning.
            content = message.content
            if not isinstance(content, str):
                content = [dict(b) if isinstance(b, dict) else b for b in content]
            reply = ReplyParts(content, _tool_calls(message))
        counter.submit(Observation(pending.messages, pending.tools, usage, reply))

    @staticmethod
    def _reason(usage: TokenUsage | None, streamed: list[int] | None) -> str | None:
        if usage is None:
            return NO_USAGE
        if "llm_cache_hit" in usage.flags:
            return CACHE_HIT
        if "server_tool_input" in usage.flags:
            return "server tool input"
        if streamed and len(streamed) > 1 and usage.input_tokens > max(streamed):
            # Chunks that each carried the prompt count were summed by the merge.
            return INFLATED_STREAM
        return None

    def _bill(self, model: str, usage: TokenUsage) -> None:
        # Plain integer sums under the lock: langchain-core's add_usage merges
        # dicts recursively, which costs more than the rest of the hook.
        extras = usage.extras
        with self._lock:
            totals = self._usage.get(model)
            if totals is None:
                totals = self._usage[model] = [0] * len(USAGE_FIELDS)
            totals[0] += usage.input_tokens
            totals[1] += usage.output_tokens
            totals[2] += usage.total_tokens
            totals[3] += usage.cache_read
            totals[4] += usage.cache_creation
            totals[5] += usage.reasoning
            if extras:
                totals[6] += extras.get("input_audio", 0)
                totals[7] += extras.get("output_audio", 0)
        self._sync.bill(
            model,
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.total_tokens,
                usage.cache_read,
                usage.cache_creation,
                usage.reasoning,
                extras.get("input_audio", 0) if extras else 0,
                extras.get("output_audio", 0) if extras else 0,
            ),
        )

    # -- counters ---------------------------------------------------------

    def _counter_for(
        self, model: str, provider: str | None = None, *, announce: bool = True
    ) -> CalibratedCounter:
        counter = self._counters.get(model)
        if (
            counter is not None
            and provider
            and counter.provider_guessed
            and counter.provider != canonical_label(provider)
            and counter.is_fresh
        ):
            # Created by a count before any run said where the model is served
            # (e.g. "gpt-oss" on Ollama): start over with the real provider.
            with self._lock:
                if self._counters.get(model) is counter:
                    del self._counters[model]
            counter = None
        if counter is None:
            with self._lock:
                counter = self._counters.get(model)
                if counter is None:
                    counter = CalibratedCounter(
                        model, provider, config=self.config, clock=self._clock
                    )
                    counter.origin = self.origin
                    counter.listener = self._sync.publish
                    self._counters[model] = counter
                    if announce:
                        # Others learn where this model is served; a counter
                        # built from the store's events needs no new record.
                        meta = (counter.provider or "",)
                        self._sync.publish(
                            [LearnEvent(model, "meta", meta, self.origin, time.time())]
                        )
        return counter

    def _resolve(self, model: str | None) -> str:
        # Snapshot the keys: callbacks on other threads may add counters.
        models = tuple(self._counters)
        if model is None:
            if len(models) == 1:
                return models[0]
            known = ", ".join(sorted(models)) or "none yet"
            msg = f"Pass model=...; this handler has seen: {known}."
            raise ConfigError(msg)
        if model in self._counters:
            return model
        alias = self._aliases.get(model)
        if alias is not None:
            return alias
        # A dated snapshot of a known model: "gpt-4o-2024-08-06" -> "gpt-4o".
        return snapshot_of(model, models) or model

    def count_messages(
        self,
        messages: Sequence[Any],
        model: str | None = None,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> int:
        """Count the prompt tokens ``messages`` will cost on ``model``.

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            n = handler.count_messages([("user", "hi")], model="gpt-4o")
            ```
        """
        if self._ended:
            self._settle_ended()
        counter = self._counter_for(self._resolve(model), provider)
        return counter.count(messages, tools)

    def estimate(
        self,
        messages: Sequence[Any],
        model: str | None = None,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> TokenEstimate:
        """Estimate the prompt tokens with an interval and its basis.

        Args:
            messages: The prompt: messages or LangChain message-like inputs.
            model: The configured model name or a dated snapshot of it. May be
                omitted when the handler has seen exactly one model.
            tools: Tools that will be bound to the call.
            provider: Where the model is served (``"anthropic"``, ``"ollama"``...),
                for a model no run has reported yet; it picks the local counter
                and the priors. Guessed from the model name when omitted.
        """
        if self._ended:
            self._settle_ended()
        key = self._resolve(model)
        return self._counter_for(key, provider).estimate(messages, tools)

    def counter(
        self,
        model: str,
        tools: Sequence[Any] | None = None,
        *,
        conservative: bool = False,
        provider: str | None = None,
    ) -> Callable[[Sequence[BaseMessage]], int]:
        """A token counter for ``trim_messages`` and budgets.

        Args:
            model: The model name.
            tools: Tools that will be bound (their cost is included).
            conservative: Count the interval's ``high`` end, so a trimmed
                history rarely overflows the context window.
            provider: Where the model is served, for a model no run has
                reported yet (see `estimate`).

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
        return _BoundCounter(
            self, model, tools, conservative=conservative, provider=provider
        )

    # -- feeding without callbacks -----------------------------------------

    def observe(
        self,
        messages: Sequence[Any],
        response_or_usage: Any,
        model: str,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> str | None:
        """Learn from a call made without LangChain callbacks.

        Args:
            messages: The prompt that was sent.
            response_or_usage: Anything `parse_usage` accepts (a provider
                response, a usage dict, an ``AIMessage``), or a `TokenUsage`.
            model: The model name.
            tools: The tools that were bound.
            provider: The provider, to help parse a raw payload.

        Returns:
            ``None`` when learned, else the reason it was not.
        """
        self._settle_ended()  # earlier calls first
        usage = (
            response_or_usage
            if isinstance(response_or_usage, TokenUsage)
            else parse_usage(response_or_usage, provider)
        )
        counter = self._counter_for(self._resolve(model), provider)
        reason = self._reason(usage, None)
        if reason is not None or usage is None:
            counter.reject(reason or NO_USAGE)
            return reason or NO_USAGE
        self._bill(counter.model, usage)
        reply = response_or_usage if isinstance(response_or_usage, AIMessage) else None
        return counter.observe(messages, usage, tools, reply=reply)

    def observe_many(
        self,
        records: Iterable[tuple[Sequence[Any], Any]],
        model: str,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> dict[str, int]:
        """Learn from many ``(messages, response_or_usage)`` pairs.

        Returns:
            How many were learned (``"learned"``) and rejected, by reason.
        """
        outcome: dict[str, int] = {}
        for messages, response in records:
            reason = self.observe(messages, response, model, tools, provider=provider)
            key = reason or "learned"
            outcome[key] = outcome.get(key, 0) + 1
        return outcome

    async def aobserve(
        self,
        messages: Sequence[Any],
        response_or_usage: Any,
        model: str,
        tools: Sequence[Any] | None = None,
        *,
        provider: str | None = None,
    ) -> str | None:
        """Async twin of `observe` (the work is CPU-only and short)."""
        return self.observe(
            messages, response_or_usage, model, tools, provider=provider
        )

    # -- reporting --------------------------------------------------------

    @property
    def usage(self) -> dict[str, UsageMetadata]:
        """Aggregated usage per model; LLM-cache hits are billed as zero."""
        self._settle_ended()
        with self._lock:
            snapshot = {model: tuple(totals) for model, totals in self._usage.items()}
        return {model: _usage_metadata(totals) for model, totals in snapshot.items()}

    @property
    def models(self) -> list[str]:
        """Model keys this handler has counters for."""
        self._settle_ended()
        return sorted(self._counters)

    @property
    def store_error(self) -> str | None:
        """Why the store could not be reached at the last attempt, or None."""
        return self._sync.last_error

    @property
    def pending_runs(self) -> int:
        """Runs started and not yet ended (bounded by size and TTL)."""
        self._pending.purge_expired()
        return len(self._pending)

    def flush(self) -> bool:
        """Learn from every queued report now, and sync with the store.

        Returns:
            False when the store could not be reached (logged; retried later).
        """
        self._settle_ended()
        for counter in list(self._counters.values()):
            counter.flush()
        return self._sync.sync()

    def close(self) -> None:
        """Flush, then stop the store's background thread and close it."""
        self._settle_ended()
        for counter in list(self._counters.values()):
            counter.flush()
        self._sync.close(flush=True)

    def save(self, path: "str | os.PathLike[str]") -> int:
        """Write this handler's calibration to a JSON-lines file.

        The file holds what the counters learned (and replayed), as events:
        numbers and hashes, never prompt text. It is written to a temporary
        file first and moved into place, so a crash leaves the old file.

        Returns:
            The number of events written.

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler

            handler = TokenCalibrationHandler()
            handler.save("calibration.jsonl")
            restored = TokenCalibrationHandler.load("calibration.jsonl")
            ```
        """
        self._settle_ended()
        for counter in list(self._counters.values()):
            counter.flush()
        events, _ = self._sync.journal.read()
        return write_events(path, events)

    @classmethod
    def load(
        cls, path: "str | os.PathLike[str]", **kwargs: Any
    ) -> "TokenCalibrationHandler":
        """Create a handler from a file written by `save`.

        Args:
            path: The file.
            **kwargs: Arguments for the new handler (``store=``, settings...);
                with a store, the loaded calibration is also written to it.

        Raises:
            EventError: If the file cannot be read or is not a calibration.
        """
        events = read_events(path)
        handler = cls(**kwargs)
        handler._sync.ingest(events, publish=handler._sync.store is not None)
        return handler

    def _replay(self, events: Sequence[LearnEvent]) -> None:
        """Apply events from another process or a file to the counters."""
        by_model: dict[str, list[LearnEvent]] = {}
        providers: dict[str, str | None] = {}
        for event in events:
            if event.kind == "meta":
                providers[event.model] = str(event.values[0]) if event.values else None
            by_model.setdefault(event.model, []).append(event)
        for model, batch in by_model.items():
            counter = self._counters.get(model) or self._counter_for(
                model, providers.get(model) or None, announce=False
            )
            counter.replay(batch)

    def stats(self) -> dict[str, ModelStats]:
        """Per-model calibration statistics (frozen snapshots)."""
        self._settle_ended()
        return {name: c.stats() for name, c in sorted(self._counters.items())}

    def stats_frame(self) -> "pd.DataFrame":
        """The statistics as a pandas DataFrame, one row per model.

        Raises:
            ImportError: Without pandas (``pip install 'langchain-tokencal[pandas]'``).
        """
        return stats_frame(self.stats())

    def health(self, *, log: bool = True) -> HealthReport:
        """Check every model for low confidence, rising error, missing usage...

        Each issue is logged through ``logging`` (unless ``log=False``).
        """
        return check_health(self.stats(), min_points=self.config.min_points, log=log)

    def _repr_html_(self) -> str:
        return stats_html(self.stats())


def _usage_metadata(totals: Sequence[int]) -> UsageMetadata:
    """LangChain's UsageMetadata from summed counts, details only when nonzero."""
    meta = UsageMetadata(
        input_tokens=totals[0], output_tokens=totals[1], total_tokens=totals[2]
    )
    inputs = {"cache_read": totals[3], "cache_creation": totals[4], "audio": totals[6]}
    outputs = {"reasoning": totals[5], "audio": totals[7]}
    if any(inputs.values()):
        meta["input_token_details"] = {k: v for k, v in inputs.items() if v}  # type: ignore[typeddict-item]
    if any(outputs.values()):
        meta["output_token_details"] = {k: v for k, v in outputs.items() if v}  # type: ignore[typeddict-item]
    return meta


def _tool_calls(message: BaseMessage) -> list[Any]:
    calls = getattr(message, "tool_calls", None)
    return [dict(c) for c in calls] if calls else []


_tokencal_callback_var: ContextVar[TokenCalibrationHandler | None] = ContextVar(
    "tokencal_callback", default=None
)
# Registered once at import: registering per use would grow LangChain's hook
# list by one entry per ``with`` block.
register_configure_hook(_tokencal_callback_var, inheritable=True)


@contextmanager
def get_tokencal_callback(
    handler: TokenCalibrationHandler | None = None, **settings: Any
) -> Iterator[TokenCalibrationHandler]:
    """Attach a handler to every chat model called inside the block.

    Args:
        handler: An existing handler to attach (it keeps what it learned);
            a new one is created when omitted.
        **settings: `CounterConfig` settings for a new handler.

    Example:
        ```python
        from langchain_tokencal import get_tokencal_callback
        from langchain_tokencal.testing._model import FakeUsageChatModel

        llm = FakeUsageChatModel(model="fake-claude")
        with get_tokencal_callback() as handler:
            llm.invoke("Hello")
        print(handler.usage)
        ```
    """
    if handler is None:
        handler = TokenCalibrationHandler(**settings)
    elif settings:
        msg = "Pass either a handler or settings for a new one, not both."
        raise ConfigError(msg)
    token = _tokencal_callback_var.set(handler)
    try:
        yield handler
    finally:
        _tokencal_callback_var.reset(token)
