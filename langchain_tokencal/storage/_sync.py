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

Snapshots (stores that keep them, `supports_snapshots`): a new handler
starts from the store's snapshot and reads only the events after it. Every
``snapshot_every`` events read, a handler tries to take the ``snapshot``
lease; the one that holds it keeps a `ShadowLike` fed the log in store
order and writes its state as the next snapshot, which deletes the events
the previous snapshot covered. So a store holds one snapshot and about two
snapshots' worth of events, whatever its history. A handler that fell
further behind than that (`CursorExpiredError`) starts again from the
snapshot.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Protocol

from langchain_tokencal.events import EventError, check_event
from langchain_tokencal.storage._base import (
    CursorExpiredError,
    Snapshot,
    Store,
    StoreError,
    supports_snapshots,
)
from langchain_tokencal.storage._deferred import open_or_defer
from langchain_tokencal.storage._memory import MemoryStore
from langchain_tokencal.storage._outbox import Outbox
from langchain_tokencal.storage._redact import redact_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from langchain_tokencal.events import LearnEvent

logger = logging.getLogger(__name__)

__all__ = ["ShadowLike", "StoreSync", "open_or_defer"]

# Items (events and usage increments) queued for the store while it is
# unreachable; past this the oldest go, counted.
_QUEUE_LIMIT = 100_000
# Items per store transaction: bounded transactions and replies.
_BATCH = 2_000
# Events kept in the journal behind `save`: per model, and in all (so that
# memory stays bounded however many models a handler sees).
_JOURNAL_PER_MODEL = 20_000
_JOURNAL_TOTAL = 100_000
# Backoff between failed attempts, in seconds.
_BACKOFF_START = 0.5
_BACKOFF_MAX = 60.0
# The lease of the snapshot writer, renewed every round while held.
_LEASE = "snapshot"
_LEASE_SECONDS = 120.0


class ShadowLike(Protocol):
    """What writes snapshots: counters fed the log in store order."""

    base: str
    cursor: str

    def load(self, snapshot: Snapshot | None, where: str) -> None:
        """Start over from ``snapshot``."""
        ...

    def advance(self, events: Sequence[LearnEvent], cursor: str) -> None:
        """Replay the next events of the log."""
        ...

    def snapshot(self) -> Snapshot:
        """The state as a snapshot at the cursor."""
        ...


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
        restore: Starts the owner's counters from a snapshot.
        shadow: Makes the counters that build snapshots.
        snapshot_every: Events read between snapshot attempts (0: never).
    """

    def __init__(
        self,
        store: Store | None,
        origin: str,
        apply: Callable[[Sequence[LearnEvent]], None],
        *,
        interval: float = 2.0,
        restore: Callable[[Snapshot], None] | None = None,
        shadow: Callable[[], ShadowLike] | None = None,
        snapshot_every: int = 0,
    ) -> None:
        """Prepare replication; `start` begins it."""
        self.store = store
        self.origin = origin
        self.journal = MemoryStore(
            max_events=_JOURNAL_PER_MODEL, max_total=_JOURNAL_TOTAL
        )
        self.last_error: str | None = None
        self.outbox = Outbox(origin, limit=_QUEUE_LIMIT, batch=_BATCH)
        self._apply = apply
        self._interval = interval
        self._restore = restore
        self._make_shadow = shadow
        self._snapshot_every = snapshot_every
        self._shadow: ShadowLike | None = None
        self._since = 0  # events read since the last snapshot attempt
        self._loaded = False  # the store's snapshot was looked for
        self.snapshots_written = 0
        self.events_pruned = 0
        # The cursor of the snapshot the owner started from (journal: after it).
        self.restored_from: str | None = None
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
            try:
                self._maybe_snapshot(store)
            except Exception as err:  # noqa: BLE001 - the log is intact; retried later
                self._shadow = None
                logger.warning(
                    "tokencal: could not write a snapshot to %s (%s); the events "
                    "stay, and it is tried again later",
                    redact_url(store.url),
                    err,
                )
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
        if not self._loaded:
            self._loaded = True
            if not self._cursor:
                self._load_snapshot(store)
        try:
            events, cursor = store.read(self._cursor)
        except CursorExpiredError:
            logger.warning(
                "tokencal: fell behind the compaction of %s; starting again from "
                "its snapshot",
                redact_url(store.url),
            )
            self._shadow = None
            self._load_snapshot(store)
            events, cursor = store.read(self._cursor)
        self._since += len(events)
        shadow = self._shadow
        if shadow is not None and shadow.cursor == self._cursor:
            shadow.advance(events, cursor)  # the same events, in store order
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

    def _load_snapshot(self, store: Store) -> None:
        """Start the owner's counters from the store's snapshot, if it has one."""
        if self._restore is None or not supports_snapshots(store):
            return
        snapshot = store.read_snapshot()
        if snapshot is not None:
            self._restore(snapshot)
            self._cursor = snapshot.cursor
            self.restored_from = snapshot.cursor

    def _maybe_snapshot(self, store: Store) -> None:
        """Write the next snapshot when enough events came and the lease is ours."""
        make = self._make_shadow
        if make is None or not self._snapshot_every or not supports_snapshots(store):
            return
        if self._shadow is None and self._since < self._snapshot_every:
            return
        if not store.take_lease(_LEASE, self.origin, _LEASE_SECONDS):
            self._shadow, self._since = None, 0  # another process writes them
            return
        shadow = self._shadow
        if shadow is None:
            shadow = make()
            shadow.load(store.read_snapshot(), redact_url(store.url))
            self._shadow = shadow
        if shadow.cursor != self._cursor:
            events, cursor = store.read(shadow.cursor)
            shadow.advance(events, cursor)
        if self._since < self._snapshot_every or shadow.cursor == shadow.base:
            return
        self._since = 0
        pruned = store.write_snapshot(shadow.snapshot(), shadow.base)
        if pruned is None:
            self._shadow = None  # another writer came first: rebuild from theirs
            return
        shadow.base = shadow.cursor
        self.snapshots_written += 1
        self.events_pruned += pruned

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
