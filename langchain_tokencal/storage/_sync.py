"""Replication between a handler's counters and a store, off the call path.

Counters record what they learn as `LearnEvent` records. A `StoreSync` keeps
them in a bounded in-memory journal (what `save` writes), queues them for the
store, and replays what other processes appended. A background thread does
the store's I/O, so no model call ever waits on it.

Exactly once: each event published here gets an identity (this handler's
``origin`` and a sequence number), and so does each usage increment when it
is sealed for a push. The queue holds each unsent item once: a push sends
the oldest items in one `apply_batch` and removes them only when it
succeeded, so a failed push leaves the queue as it was (no copy re-queued),
and the store skips what a retried push had already applied. While the store
is slow or down the queue is bounded: past `_QUEUE_LIMIT` items the oldest
are dropped and counted (`StoreSync.dropped`, one warning per outage), and
the thread retries with exponential backoff.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
import weakref
from typing import TYPE_CHECKING

from langchain_tokencal.events import EventError, check_event
from langchain_tokencal.storage._base import (
    Store,
    StoreError,
    UsageDelta,
    apply_batch,
)
from langchain_tokencal.storage._memory import MemoryStore
from langchain_tokencal.storage._outbox import Outbox
from langchain_tokencal.storage._redact import redact_url
from langchain_tokencal.storage._urls import open_store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from langchain_tokencal.events import LearnEvent

logger = logging.getLogger(__name__)

__all__ = ["StoreSync", "open_or_defer"]

# Items (events and usage increments) queued for the store while it is
# unreachable; past this the oldest go, counted.
_QUEUE_LIMIT = 100_000
# Items per store transaction: bounded transactions and replies.
_BATCH = 2_000
# Events kept per model in the journal behind `save`.
_JOURNAL_PER_MODEL = 20_000
# Backoff between failed attempts, in seconds.
_BACKOFF_START = 0.5
_BACKOFF_MAX = 60.0


class _DeferredStore:
    """A store that could not be opened yet: each use tries to open it again."""

    def __init__(self, target: str, url: str) -> None:
        self._target = target
        self.url = url
        self._store: Store | None = None

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self._target)
        return self._store

    def append(self, events: Sequence[LearnEvent]) -> None:
        self._open().append(events)

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        apply_batch(self._open(), events, usage)

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        return self._open().read(after)

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        self._open().add_usage(model, totals)

    def usage(self) -> dict[str, list[int]]:
        return self._open().usage()

    def compact(self, keep: int) -> int:
        return self._open().compact(keep)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def open_or_defer(target: str | Store | None) -> Store:
    """Open a store; one that is unreachable now is opened on a later sync.

    Raises:
        ConfigError: On an unknown scheme.
        StoreError: For a SQLite path that cannot be used (the user's path is
            wrong, not a server down: fail loudly).
    """
    try:
        return open_store(target)
    except StoreError as err:
        if (
            not isinstance(target, str)
            or target.startswith("sqlite:")
            or importlib.util.find_spec("redis") is None
        ):
            # A wrong path or a missing package will not fix itself: say so now.
            raise
        # The first failed sync logs the one warning.
        logger.debug("tokencal: store not opened yet: %s", err)
        return _DeferredStore(target, redact_url(target))


class StoreSync:
    """Journals a handler's events and replicates them with a store.

    Thread-safe. With no store (or ``memory://``) it only journals, and no
    thread is started.

    Args:
        store: The shared store, or ``None`` for in-memory only.
        origin: This handler's identity, written on its events.
        apply: Called with events from other processes, grouped in order, to
            replay them into counters.
        interval: Seconds between background pushes and pulls.
    """

    def __init__(
        self,
        store: Store | None,
        origin: str,
        apply: Callable[[Sequence[LearnEvent]], None],
        *,
        interval: float = 2.0,
    ) -> None:
        """Prepare replication; `start` begins it."""
        self.store = store
        self.origin = origin
        self.journal = MemoryStore(max_events=_JOURNAL_PER_MODEL)
        self.last_error: str | None = None
        self.outbox = Outbox(origin, limit=_QUEUE_LIMIT, batch=_BATCH)
        self._apply = apply
        self._interval = interval
        self._io_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._cursor = ""
        self._failing = False
        self._backoff = _BACKOFF_START
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._finalizer: weakref.finalize[[Store, Outbox], StoreSync] | None = None
        # Called before each push (the owner settles what it queued) and
        # before the last one (it learns everything); held weakly, so the
        # sync keeps no owner alive.
        self._before_push: weakref.WeakMethod[Callable[[], None]] | None = None
        self._before_close: weakref.WeakMethod[Callable[[], None]] | None = None

    @property
    def dropped(self) -> int:
        """Items dropped because the queue was full while the store was down."""
        return self.outbox.dropped

    def before_push(self, method: Callable[[], None]) -> None:
        """Call the bound ``method`` before each push (held weakly)."""
        self._before_push = weakref.WeakMethod(method)

    def before_close(self, method: Callable[[], None]) -> None:
        """Call the bound ``method`` before the last push at close (held weakly)."""
        self._before_close = weakref.WeakMethod(method)

    def start(self) -> None:
        """Load what the store holds, then start the background thread.

        Separate from construction so that the owner is fully built before any
        event is replayed into it.
        """
        if self.store is None or self._thread is not None:
            return
        self.sync()
        self._thread = threading.Thread(
            target=_run, args=(weakref.ref(self),), name="tokencal-sync", daemon=True
        )
        self._thread.start()
        _LIVE.add(self)
        # A handler dropped without close() still pushes what it queued and
        # closes its store (the finalizer holds those, not the sync). Not at
        # exit: `_flush_at_exit` does that first, for every live handler.
        self._finalizer = weakref.finalize(
            self, _push_and_close, self.store, self.outbox
        )
        self._finalizer.atexit = False
        # Registered again after every start, so it runs before any exit
        # hook registered earlier (atexit runs the newest first), such as one
        # that closes the user's store.
        atexit.unregister(_flush_at_exit)
        atexit.register(_flush_at_exit)

    # -- from the handler ---------------------------------------------------

    def publish(self, events: Sequence[LearnEvent]) -> None:
        """Journal events learned here and queue them for the store. No I/O."""
        if not events:
            return
        if self.store is None:
            self.journal.append(self.outbox.stamp(events))
            return
        self.journal.append(self.outbox.queue(events))
        self._wake.set()

    def bill(self, model: str, totals: Sequence[int]) -> None:
        """Queue a usage increment for the store. No I/O."""
        if self.store is not None:
            self.outbox.bill(model, totals)

    def sync(self) -> bool:
        """Push queued events and usage, then pull and replay others' events.

        Never raises: a failure is logged, kept in `last_error`, and retried.

        Returns:
            True when the store was reached (or there is none).
        """
        store = self.store
        if store is None or self._closed:
            return store is None
        _call(self._before_push)
        with self._io_lock:
            try:
                self.outbox.push(store)
                self._pull(store)
            except Exception as err:  # noqa: BLE001 - a sync never raises into its caller
                self._failed(store, err)
                return False
        if self._failing:
            logger.info("tokencal: store %s reachable again", redact_url(store.url))
        self._failing = False
        self.last_error = None
        self._backoff = _BACKOFF_START
        return True

    def _failed(self, store: Store, err: Exception) -> None:
        self.last_error = str(err)
        if not isinstance(err, StoreError):
            logger.error("tokencal: store sync failed", exc_info=err)
        elif not self._failing:
            logger.warning(
                "tokencal: store %s unreachable (%s); counting goes on in "
                "memory and the store is retried",
                redact_url(store.url),
                err,
            )
        self._failing = True

    def ingest(self, events: Iterable[LearnEvent], *, publish: bool) -> None:
        """Replay events from elsewhere (a file), journal them, maybe publish."""
        batch = list(events)
        self._apply(batch)
        if publish:
            # What replay refused (out of range) is not spread to the store.
            self.publish([e for e in batch if _in_range(e)])
        else:
            self.journal.append(batch)

    def close(self, *, flush: bool = True) -> None:
        """Stop the background thread, pushing what is queued first. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            if flush:
                _call(self._before_close)
                self.sync()
            self._closed = True
        _LIVE.discard(self)
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        if self._finalizer is not None:
            self._finalizer.detach()
        if self.store is not None:
            _close_store(self.store)

    # -- I/O ----------------------------------------------------------------

    def _pull(self, store: Store) -> None:
        events, cursor = store.read(self._cursor)
        self._cursor = cursor
        echo = self.outbox.echo
        foreign = []
        for event in events:
            if event.origin == self.origin:
                continue
            key = event.identity or event
            if echo and key in echo:
                echo.discard(key)  # published from a file here: applied already
                continue
            foreign.append(event)
        if foreign:
            self._apply(foreign)
            self.journal.append(foreign)

    def _round(self) -> float:
        """One background round; the seconds to wait before the next."""
        if self.sync():
            return self._interval
        wait = self._backoff
        self._backoff = min(self._backoff * 2.0, _BACKOFF_MAX)
        return wait


def _in_range(event: LearnEvent) -> bool:
    try:
        check_event(event)
    except EventError:
        return False
    return True


def _call(hook: weakref.WeakMethod[Callable[[], None]] | None) -> None:
    method = hook() if hook is not None else None
    if method is not None:
        method()


def _run(ref: weakref.ref[StoreSync]) -> None:
    """Run the background thread.

    It holds the sync only weakly between rounds, so a handler nobody
    references is freed and its thread ends.
    """
    while True:
        sync = ref()
        if sync is None or sync._stop.is_set():  # noqa: SLF001 - the class's own thread
            return
        wake = sync._wake  # noqa: SLF001
        try:
            wait = sync._round()  # noqa: SLF001
        except Exception:  # never let the thread die silently
            logger.exception("tokencal: store sync failed")
            wait = _BACKOFF_MAX
        del sync
        wake.wait(wait)
        wake.clear()


_LIVE: weakref.WeakSet[StoreSync] = weakref.WeakSet()


def _flush_at_exit() -> None:
    """Learn, push and close for every live handler before the interpreter exits."""
    for sync in list(_LIVE):
        _close_quietly(sync)


def _close_quietly(sync: StoreSync) -> None:
    try:
        sync.close(flush=True)
    except Exception:  # exiting: log and go on
        logger.debug("tokencal: flush at exit failed", exc_info=True)


atexit.register(_flush_at_exit)


def _close_store(store: Store) -> None:
    try:
        store.close()
    except StoreError:
        logger.debug("tokencal: closing the store failed", exc_info=True)


def _push_and_close(store: Store, outbox: Outbox) -> None:
    """Finalizer of a sync dropped without close(): push what waits, then close."""
    try:
        if len(outbox):
            outbox.push(store)
    except Exception:
        logger.debug("tokencal: final push failed", exc_info=True)
    _close_store(store)
