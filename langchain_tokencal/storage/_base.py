"""What every store shares: the protocol, its error and the argument checks.

Kept apart from `langchain_tokencal.storage` so the backend modules can import
it without importing each other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from langchain_tokencal._usage import USAGE_FIELDS
from langchain_tokencal.errors import ConfigError, StoreError
from langchain_tokencal.events import EventError, LearnEvent, decode_event

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "USAGE_FIELDS",
    "Store",
    "StoreBase",
    "StoreError",
    "check_keep",
    "check_totals",
    "closed_error",
    "cursor_error",
    "decode_rows",
    "logger",
]

# One logger for every backend, so users configure "langchain_tokencal.storage".
logger = logging.getLogger("langchain_tokencal.storage")


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
        """Add events at the end of the log, all or none.

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
    """Context-manager support and a readable repr for the concrete stores."""

    url: str

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
    """Decode ``(cursor, line)`` rows, skipping corrupt ones with a warning each.

    A missing line (``None``) counts as corrupt too.
    """
    events: list[LearnEvent] = []
    for cursor, line in rows:
        if line is None:
            logger.warning("skipping corrupt event %s in %s: no line", cursor, where)
            continue
        try:
            events.append(decode_event(line))
        except EventError as err:
            logger.warning("skipping corrupt event %s in %s: %s", cursor, where, err)
    return events
