"""What every store shares: the protocol, its error and the argument checks.

Kept apart from `langchain_tokencal.storage` so the backend modules can import
it without importing each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeGuard, runtime_checkable

from langchain_tokencal._usage import USAGE_FIELDS
from langchain_tokencal.errors import ConfigError, StoreError
from langchain_tokencal.events import EventError, LearnEvent, decode_event

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "MAX_STATE",
    "USAGE_FIELDS",
    "CursorExpiredError",
    "Snapshot",
    "Store",
    "StoreBase",
    "StoreError",
    "UsageDelta",
    "apply_batch",
    "check_keep",
    "check_model",
    "check_totals",
    "closed_error",
    "cursor_error",
    "decode_rows",
    "decode_states",
    "fresh_items",
    "logger",
    "supports_snapshots",
]

# Largest snapshot state of one model read back (a full ledger is ~10 MB).
MAX_STATE = 64 * 1024 * 1024

# One logger for every backend, so users configure "langchain_tokencal.storage".
logger = logging.getLogger("langchain_tokencal.storage")


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """A usage increment with an identity, pushed together with events.

    Attributes:
        model: The model key.
        totals: One integer per `USAGE_FIELDS` entry.
        origin: The handler that billed it.
        seq: Its sequence number within ``origin`` (shared with its events);
            0 for no identity (applied every time).
    """

    model: str
    totals: tuple[int, ...]
    origin: str = ""
    seq: int = 0


class CursorExpiredError(StoreError):
    """A read from a cursor whose next events compaction already deleted.

    The reader fell behind a snapshot: it starts again from `read_snapshot`.
    """


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The learned state of every model, as of one cursor of the log.

    Attributes:
        cursor: The last event the snapshot covers; replay reads after it.
        states: Model key -> its counter's state, as JSON text (numbers and
            hashes only, see `langchain_tokencal._calibration.snapshot`).
    """

    cursor: str
    states: dict[str, str]


@runtime_checkable
class Store(Protocol):
    """An append-only log of `LearnEvent` records plus per-model usage sums.

    Several processes may share one store: appends never conflict, and every
    reader sees every writer's events in one order. Implementations are
    thread-safe.

    Example:
        ```python
        from langchain_tokencal.events import LearnEvent
        from langchain_tokencal.storage import Store, open_store

        store: Store = open_store("memory://")
        store.append([LearnEvent("gpt-4o", "message", (12, 7), "me", 0.0)])
        events, cursor = store.read()
        later, cursor = store.read(after=cursor)  # only what came since
        assert len(events) == 1 and later == []
        ```
    """

    url: str

    def append(self, events: Sequence[LearnEvent]) -> None:
        """Add events at the end of the log, all or none (`apply_batch` rules).

        Raises:
            StoreError: The store is unreachable or broken; nothing was added.
        """
        ...

    def read(self, after: str = "") -> tuple[list[LearnEvent], str]:
        """Return every event appended after cursor ``after`` and the new cursor.

        ``""`` reads from the start. The returned cursor is ``after`` itself
        when nothing is new. Rows that cannot be decoded are skipped, each
        with one logged warning.

        Raises:
            StoreError: The store is unreachable, or ``after`` is not a cursor
                of this kind of store.
        """
        ...

    def add_usage(self, model: str, totals: Sequence[int]) -> None:
        """Add `USAGE_FIELDS` sums to a model's totals, atomically.

        Raises:
            ConfigError: ``totals`` does not hold one integer per field.
            StoreError: The store is unreachable or broken.
        """
        ...

    def usage(self) -> dict[str, list[int]]:
        """Return every model's usage totals, in `USAGE_FIELDS` order.

        Raises:
            StoreError: The store is unreachable or broken.
        """
        ...

    def compact(self, keep: int) -> int:
        """Keep the ``keep`` newest events of each model; return how many went.

        Cursors stay valid: events appended later are still read after them.

        Raises:
            ConfigError: ``keep`` is negative.
            StoreError: The store is unreachable or broken.
        """
        ...

    def close(self) -> None:
        """Release connections and files; later calls raise `StoreError`."""
        ...


class StoreBase(Store):
    """What the concrete stores share: `apply_batch`, context manager, repr.

    `apply_batch` is not part of the `Store` protocol, so a store written
    before it still works (see `apply_batch` the function).
    """

    url: str

    def apply_batch(
        self, events: Sequence[LearnEvent], usage: Sequence[UsageDelta] = ()
    ) -> None:
        """Append events and add usage increments in one all-or-nothing step.

        Idempotent by identity: an event or increment whose ``seq`` is not
        above the highest ``seq`` the store already applied from its
        ``origin`` is skipped, as is a second copy within the batch, so a
        retried push (after a failure, or after a success whose reply was
        lost) changes nothing. Items without a ``seq`` are always applied.

        Raises:
            StoreError: The store is unreachable or broken; nothing was applied.
        """
        raise NotImplementedError

    def append(self, events: Sequence[LearnEvent]) -> None:
        """Add events at the end of the log (see `Store.append`)."""
        self.apply_batch(events)

    def applied(self, origin: str) -> int:
        """The highest sequence number applied from ``origin`` (0: none known).

        Raises:
            StoreError: The store is unreachable or broken.
        """
        del origin  # a store without identities knows none
        return 0

    # Snapshots: a store that keeps them overrides all three.

    def read_snapshot(self) -> Snapshot | None:
        """The latest snapshot, or ``None`` when there is none.

        Raises:
            StoreError: The store is unreachable or broken.
        """
        return None

    def write_snapshot(self, snapshot: Snapshot, base: str) -> int | None:
        """Replace the snapshot, then delete the events the previous one covered.

        Compare and set: written only when the stored snapshot's cursor is
        still ``base`` (``""``: none), so a writer whose lease ran out cannot
        overwrite a newer snapshot. Events up to ``base`` are deleted, not
        up to ``snapshot.cursor``: readers up to one snapshot behind still
        find every event they have not read; one further behind gets
        `CursorExpiredError` and starts again from the snapshot.

        Returns:
            How many events were deleted, or ``None`` when not written
            (another snapshot was written since ``base``, or this store keeps
            none).

        Raises:
            StoreError: The store is unreachable or broken; nothing changed.
        """
        del snapshot, base  # this store keeps no snapshots
        return None

    def take_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Hold (or renew) the lease ``name`` for ``seconds``, if free or ours.

        Raises:
            StoreError: The store is unreachable or broken.
        """
        del name, owner, seconds  # no snapshots, so no writer to elect
        return False

    def __enter__(self) -> Self:
        """Return the store itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    def __repr__(self) -> str:
        """Name the class and the (redacted) URL."""
        return f"{type(self).__name__}({self.url!r})"


def closed_error(what: str, url: str) -> StoreError:
    """The error of a call (``what``, e.g. "read") on a closed store."""
    return StoreError(f"cannot {what} {url}: the store is closed.")


def cursor_error(cursor: str, url: str) -> StoreError:
    """The error of a read from a cursor this kind of store never returned."""
    msg = f"{cursor!r} is not a cursor of {url}; pass '' to read from the start."
    return StoreError(msg)


def check_totals(totals: Sequence[int]) -> list[int]:
    """Validate one integer per usage field and return them as a list.

    Raises:
        ConfigError: Wrong length, or a value that is not an integer.
    """
    values = list(totals)
    if len(values) != len(USAGE_FIELDS):
        msg = (
            f"usage totals need {len(USAGE_FIELDS)} integers "
            f"({', '.join(USAGE_FIELDS)}), got {len(values)}."
        )
        raise ConfigError(msg)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"usage totals must be integers, got {value!r}."
            raise ConfigError(msg)
    return values


_MAX_MODEL = 512


def check_model(model: object) -> str:
    """Validate a model name a store is asked to keep.

    Raises:
        ConfigError: It is not a non-empty string of at most 512 characters
            that encodes to UTF-8 (a lone surrogate does not).
    """
    if isinstance(model, str) and 0 < len(model) <= _MAX_MODEL:
        try:
            model.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return model
    msg = (
        f"a store keeps model names as UTF-8 text of 1 to {_MAX_MODEL} characters; "
        f"got {model!r:.80}."
    )
    raise ConfigError(msg)


def check_keep(keep: int) -> int:
    """Validate the number of events `compact` keeps per model.

    Raises:
        ConfigError: ``keep`` is not a non-negative integer.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        msg = f"keep must be a non-negative integer, got {keep!r}."
        raise ConfigError(msg)
    return keep


def decode_rows(
    rows: Iterable[tuple[str, str | bytes | None]], where: str
) -> list[LearnEvent]:
    """Decode ``(cursor, line)`` rows, skipping corrupt ones.

    A missing line (``None``), bytes that are not UTF-8, a line too long or
    too deeply nested all count as corrupt. The skipped rows are counted in
    one warning per call, which names the first.
    """
    events: list[LearnEvent] = []
    bad = 0
    first = ""
    for cursor, line in rows:
        event = _decode_row(line)
        if isinstance(event, str):
            bad += 1
            first = first or f"{cursor}: {event}"
        else:
            events.append(event)
    if bad:
        logger.warning(
            "skipped %d corrupt event(s) in %s (first %s)", bad, where, first
        )
    return events


def decode_states(
    rows: Iterable[tuple[str | bytes, str | bytes | None]], where: str
) -> dict[str, str]:
    """A snapshot's ``(model, state)`` rows as text, skipping undecodable ones.

    A state is JSON read back by a counter, which checks it whole; here
    only what cannot even be text (bytes that are not UTF-8, no value, an
    oversized state) is dropped, with one warning.
    """
    states: dict[str, str] = {}
    bad = 0
    for model, state in rows:
        try:
            name = model.decode() if isinstance(model, bytes) else model
            text = state.decode() if isinstance(state, bytes) else state
        except UnicodeDecodeError:
            text = None
        if text is None or len(text) > MAX_STATE:
            bad += 1
            continue
        states[name] = text
    if bad:
        logger.warning("skipped %d unreadable snapshot state(s) in %s", bad, where)
    return states


def _decode_row(line: str | bytes | None) -> LearnEvent | str:
    """The event of one row, or why it is corrupt."""
    if line is None:
        return "no line"
    try:
        return decode_event(line)
    except EventError as err:
        return str(err)


Item = LearnEvent | UsageDelta


def fresh_items(
    items: Sequence[Item], applied: Callable[[str], int]
) -> tuple[list[bool], dict[str, int]]:
    """Which items of a batch to apply, and each origin's new highest ``seq``.

    ``applied(origin)`` is the highest ``seq`` the store applied from that
    origin before this batch. Comparing with that (not a running maximum)
    keeps an increment sealed between two events of the same batch.

    Returns:
        One flag per item (apply it or not), and the new marks by origin.
    """
    before: dict[str, int] = {}
    marks: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    keep: list[bool] = []
    for item in items:
        if item.seq <= 0:
            keep.append(True)
            continue
        origin = item.origin
        if origin not in before:
            before[origin] = applied(origin)
        key = (origin, item.seq)
        fresh = item.seq > before[origin] and key not in seen
        keep.append(fresh)
        if fresh:
            seen.add(key)
            marks[origin] = max(marks.get(origin, 0), item.seq)
    return keep, marks


def apply_batch(
    store: Store, events: Sequence[LearnEvent], usage: Sequence[UsageDelta]
) -> None:
    """`Store.apply_batch` on any store, even one written before that method.

    A store without it gets `Store.append` and one `Store.add_usage` per
    increment: neither atomic together nor idempotent.
    """
    method = getattr(store, "apply_batch", None)
    if method is not None:
        method(events, usage)
        return
    if events:
        store.append(events)
    for delta in usage:
        store.add_usage(delta.model, delta.totals)


def supports_snapshots(store: Store) -> TypeGuard[StoreBase]:
    """Whether ``store`` keeps snapshots (overrides `StoreBase.write_snapshot`)."""
    method = getattr(type(store), "write_snapshot", None)
    return method is not None and method is not StoreBase.write_snapshot
