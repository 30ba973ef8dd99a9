"""The handler facade: `TokenCalibrationHandler` and its public methods.

It wires together the pending runs (`PendingRuns`), the counter registry
(`CounterRegistry`), the settling of ended runs (`Settler`) and the store
sync, and inherits LangChain's hooks from `CallbackHooks`; each public method
is a few lines that settle what is queued, then delegate.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from langchain_core.messages.utils import count_tokens_approximately

from langchain_tokencal._callbacks.baseline import Baseline, Mode, check_mode
from langchain_tokencal._callbacks.counting import CountingMethods
from langchain_tokencal._callbacks.hooks import CallbackHooks
from langchain_tokencal._callbacks.registry import CounterRegistry
from langchain_tokencal._callbacks.reports import (
    ReportingMethods,
    StatsLogger,
    check_stats_interval,
)
from langchain_tokencal._callbacks.runs import PendingRuns
from langchain_tokencal._callbacks.settle import Settler
from langchain_tokencal._callbacks.shadow import Shadow
from langchain_tokencal._reasons import NEVER_ENDED
from langchain_tokencal._reporting import HealthThresholds
from langchain_tokencal.config import (
    CounterConfig,
    environment_settings,
    read_settings,
)
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import read_events, write_events
from langchain_tokencal.storage import MemoryStore, check_model
from langchain_tokencal.storage._deferred import open_or_defer
from langchain_tokencal.storage._sync import StoreSync
from langchain_tokencal.storage._urls import ENV_VAR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.runnables import Runnable

    from langchain_tokencal.events import LearnEvent
    from langchain_tokencal.storage import Snapshot, Store

__all__ = ["TokenCalibrationHandler"]

logger = logging.getLogger(__name__)


class TokenCalibrationHandler(CountingMethods, ReportingMethods, CallbackHooks):
    """Learns, per model, to count prompt tokens from the usage calls report.

    Attach it to chat models (``callbacks=[handler]``, ``config=``, or
    `get_tokencal_callback`). ``on_chat_model_start`` records the prompt,
    ``on_llm_end`` queues the reply that carries the usage; both are O(1) and
    never raise into the call (unless ``raise_error`` is set, for tests). The
    usage is parsed and billed at the next read (a count, ``usage``,
    ``stats()``, ``flush()``, a store sync) or inside the callback once `SETTLE_AT`
    (64) replies wait, and learned from at the next count. Thread-safe and usable
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
            in-memory counting with one warning and is retried. ``None``
            takes ``$TOKENCAL_STORE`` when it is set, as the ``tokencal``
            command does, so the library and the command share one store.
        sync_interval: Seconds between background pushes to and pulls from
            the store (a positive number).
        baseline: Another token counter (``count_tokens_approximately``, the
            one in use today), measured against every report beside ours:
            ``stats()`` shows its error as ``baseline_error``.
        mode: ``"calibrated"`` (the default) counts with ours; ``"shadow"``
            answers `count_messages`, `counter()` and `trim` with the
            baseline (``count_tokens_approximately`` unless given) while ours
            learns and is measured, for a staged rollout.
        origin: The identity written on this handler's events (default: a
            new random one). Stores apply each ``(origin, sequence)`` once, so
            a handler replaying one source with a fixed origin (``tokencal
            calibrate`` does, from the file's hash) cannot store it twice.
        health: The thresholds of `health` (`HealthThresholds` or a mapping
            of them, e.g. ``{"low_confidence": 0.8}``); the defaults otherwise.
        stats_interval: Seconds between log lines of every model's statistics
            (reports, errors, confidence, memo hits) on the
            ``langchain_tokencal.stats`` logger at ``INFO``, from a daemon
            thread; ``None`` (the default) logs none.
        clock: Monotonic clock for the caches, injectable for tests.
        **settings: Individual `CounterConfig` settings over ``config``.

    Raises:
        StoreError: When ``store`` names a SQLite file that cannot be created
            or opened (a store that is merely unreachable is retried instead).
        ConfigError: On an unknown store scheme or an invalid setting.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal.testing import FakeUsageChatModel

        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(model="fake-claude", callbacks=[handler])
        history = [("user", "Summarize the plot of Hamlet in one line.")]
        llm.invoke(history)
        handler.count_messages(history, model="fake-claude")  # exact now
        ```
    """

    def __init__(
        self,
        *,
        config: CounterConfig | Mapping[str, Any] | None = None,
        store: str | Store | None = None,
        sync_interval: float = 2.0,
        clock: Callable[[], float] | None = None,
        baseline: Callable[..., int] | None = None,
        mode: Mode = "calibrated",
        origin: str | None = None,
        health: HealthThresholds | Mapping[str, Any] | None = None,
        stats_interval: float | None = None,
        **settings: Any,
    ) -> None:
        """Create a handler (loading what ``store`` already holds)."""
        super().__init__()
        if isinstance(config, Mapping):
            config = CounterConfig.from_mapping(config)
        config = config or CounterConfig()
        self.config = config.replace(**settings) if settings else config
        self._pending = PendingRuns(
            self.config.pending_size,
            self.config.pending_ttl,
            **({} if clock is None else {"clock": clock}),
        )
        self.origin = uuid4().hex if origin is None else _check_origin(origin)
        self.health_thresholds = HealthThresholds.coerce(health)
        every = check_stats_interval(stats_interval)
        _check_interval(sync_interval)
        if store is None:
            # The store the tokencal command uses, when one is configured.
            store = os.environ.get(ENV_VAR) or None
        opened = open_or_defer(store)
        # A MemoryStore opened from ``None`` or ``"memory://"`` is this
        # handler's alone: nothing to share, so no sync thread. One the user
        # passed in may be shared by several handlers: keep syncing with it.
        shared = (
            None if isinstance(opened, MemoryStore) and opened is not store else opened
        )
        self._sync = StoreSync(
            shared,
            self.origin,
            self._replay,
            interval=sync_interval,
            restore=self._restore,
            shadow=partial(Shadow, self.config, clock),
            snapshot_every=self.config.snapshot_every,
        )
        self._registry = CounterRegistry(
            self.config,
            self.origin,
            self._sync.publish,
            clock,
            limit=self.config.max_models,
        )
        # The registry's own dict and the settler's own deque, read directly
        # on the hot paths (one attribute lookup, no call).
        self._counters = self._registry.counters
        self._settler = Settler(self._registry, self._sync.bill)
        self.mode: Mode = check_mode(mode)
        if baseline is None and self.mode == "shadow":
            baseline = count_tokens_approximately
        self.baseline = Baseline(baseline) if baseline is not None else None
        self._settler.baseline = self.baseline
        self._shadow = self.baseline if self.mode == "shadow" else None
        self._ended = self._settler.ended
        # Usage reaches the store once settled: settle before every push; and
        # learn from everything queued before the last push (close, exit).
        self._sync.before_push(self._settle_ended)
        self._sync.before_close(self._learn_queued)
        # Load what the store holds now; if it is unreachable this logs one
        # warning and the background thread retries.
        self._sync.start()
        self._stats_log = None if every is None else StatsLogger.of(self, every)
        if self._stats_log is not None:
            self._stats_log.start()

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> TokenCalibrationHandler:
        r"""Create a handler from a settings file or mapping, and the environment.

        ``source`` is a TOML, YAML or JSON file (`read_settings`: the
        settings at its top level or under ``tokencal``; in a
        ``pyproject.toml``, under ``[tool.tokencal]``), a mapping read from
        one, or ``None``. ``TOKENCAL_<NAME>`` environment variables
        (`environment_settings`) override it. The settings are those of
        `CounterConfig`, plus ``store``, ``sync_interval``,
        ``stats_interval`` and ``health`` (a table of `HealthThresholds`).

        Raises:
            ConfigError: On an unreadable file, an unknown key (listing the
                valid ones) or a bad value (naming the setting).

        Example:
            ```python
            import tempfile
            from pathlib import Path

            from langchain_tokencal import TokenCalibrationHandler

            path = Path(tempfile.mkdtemp()) / "tokencal.toml"
            path.write_text("cache_size = 1000\nsync_interval = 5\n")
            handler = TokenCalibrationHandler.from_config(path, environ={})
            assert handler.config.cache_size == 1000
            ```
        """
        if source is None:
            settings: dict[str, Any] = {}
        elif isinstance(source, Mapping):
            settings = dict(source)
        else:
            settings = read_settings(source)
        settings.update(environment_settings(environ))
        store = settings.pop("store", None)
        interval = settings.pop("sync_interval", 2.0)
        health = settings.pop("health", None)
        every = settings.pop("stats_interval", None)
        return cls(
            config=CounterConfig.from_mapping(settings),
            store=store,
            sync_interval=interval,
            health=health,
            stats_interval=every,
        )

    def __repr__(self) -> str:
        """Models known and pending runs (it settles nothing: a repr does no work)."""
        return (
            f"TokenCalibrationHandler(models={sorted(self._counters)!r}, "
            f"pending={len(self._pending)})"
        )

    def _settle_ended(self) -> None:
        """Settle every queued run (before any read, and before a store push)."""
        self._settler.settle_ended(raise_error=self.raise_error)
        if self._pending.lost:
            # Runs that will never end are counted where a reader sees them.
            for model, n in self._pending.take_lost().items():
                counter = self._registry.counter_for(model)
                for _ in range(n):
                    counter.reject(NEVER_ENDED)

    def _learn_queued(self) -> None:
        """Settle every queued run and learn from every queued report."""
        self._settle_ended()
        self._registry.flush()

    def _replay(self, events: Sequence[LearnEvent]) -> None:
        """Apply events from another process or a file to the counters."""
        self._registry.replay(events)

    def _restore(self, snapshot: Snapshot) -> None:
        """Start the counters of the store's snapshot from it."""
        store = self._sync.store
        self._registry.restore(
            snapshot, store.url if store is not None else "memory://"
        )

    # -- counting -----------------------------------------------------------

    # -- feeding without callbacks -----------------------------------------

    def observe(
        self,
        messages: Sequence[Any],
        response_or_usage: Any,
        model: str | BaseChatModel | Runnable[Any, Any],
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
        counter, tools = self._lookup(model, tools, provider)
        return self._settler.observe(
            counter, messages, response_or_usage, tools, provider
        )

    def observe_many(
        self,
        records: Iterable[tuple[Sequence[Any], Any]],
        model: str | BaseChatModel | Runnable[Any, Any],
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
        model: str | BaseChatModel | Runnable[Any, Any],
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
        return self._settler.usage()

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
        self._registry.flush()
        return self._sync.sync()

    def close(self) -> None:
        """Flush, then stop the store's background thread and close it.

        Idempotent. Also done at interpreter exit for a handler still open,
        before any store is closed.
        """
        if self._stats_log is not None:
            self._stats_log.stop()
        self._learn_queued()
        self._sync.close(flush=True)

    def save(self, path: str | os.PathLike[str]) -> int:
        """Write this handler's calibration to a JSON-lines file.

        The file holds what the counters learned (and replayed), as events:
        numbers and hashes, never prompt text; the newest 20,000 per model and
        100,000 in all, so that memory stays bounded (a store keeps the rest).
        A handler started from a store's snapshot did not replay the events
        before it: they are not in the file (a warning says so). It is
        written to a temporary file first and moved into place, so a crash
        leaves the old file.

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
        self._registry.flush()
        events, _ = self._sync.journal.read()
        if self._sync.restored_from is not None:
            logger.warning(
                "tokencal: this handler started from its store's snapshot; %s "
                "holds what was learned and replayed after it, not the snapshot. "
                "To move all of it, copy the store itself (the SQLite file, or the "
                "Redis keys under its prefix).",
                path,
            )
        return write_events(path, events)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], **kwargs: Any
    ) -> TokenCalibrationHandler:
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


def _check_interval(seconds: object) -> None:
    """Refuse a sync interval that is not a positive, finite number of seconds.

    Zero or less would make the background thread spin.
    """
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        msg = f"sync_interval must be a positive number of seconds, got {seconds!r}."
        raise ConfigError(msg)


def _check_origin(origin: object) -> str:
    """Refuse an origin a store could not keep (as a model name, it is text)."""
    try:
        return check_model(origin)
    except ConfigError:
        msg = f"origin= must be UTF-8 text of 1 to 512 characters, got {origin!r:.60}."
        raise ConfigError(msg) from None
