"""What a handler has learned and billed that the store does not hold yet.

The `Outbox` gives each event an identity (``origin`` and a sequence number),
seals usage into identified increments at each push, and keeps every unsent
item exactly once, in order, in a bounded queue. A push sends the oldest
items with `apply_batch` and removes them only after the store accepted
them; a failure leaves the queue untouched. Because the store skips an
identity it already applied, a push retried after an ambiguous failure (the
store committed, the reply was lost) changes nothing either.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Final

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage._base import USAGE_FIELDS, UsageDelta, apply_batch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal.storage._base import Store

__all__ = ["Outbox", "storable"]

logger = logging.getLogger("langchain_tokencal.storage")

# Longest model name or text value a store is given.
_MAX_TEXT: Final = 512


def storable(event: LearnEvent) -> bool:
    """Whether a store can keep the event: its texts are short UTF-8 strings.

    A model name with a lone surrogate (or one that is not a string) cannot be
    written; queued, it would fail every push and block the queue behind it.
    """
    texts = [event.model, event.origin]
    texts += [v for v in event.values if isinstance(v, str)]
    return bool(event.model) and all(_storable_text(text) for text in texts)


def _storable_text(text: object) -> bool:
    """A string of at most the stored length that encodes to UTF-8."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        return False
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


class Outbox:
    """The bounded queue of items a store has not accepted yet. Thread-safe.

    Args:
        origin: The handler's identity, stamped on its events.
        limit: Items kept at most; past it the oldest are dropped and counted.
        batch: Items sent in one store call.
    """

    def __init__(self, origin: str, *, limit: int, batch: int) -> None:
        """Create an empty outbox."""
        self.origin = origin
        self.limit = limit
        self.batch = batch
        self.dropped = 0
        self.unstorable = 0
        self._lock = threading.Lock()
        # (ticket, item): tickets grow by one per queued item, so a push
        # removes exactly what it sent even if the oldest were dropped meanwhile.
        self._queue: deque[tuple[int, LearnEvent | UsageDelta]] = deque()
        self._tickets = itertools.count(1)
        self._seq = 0
        self._usage: dict[str, list[int]] = {}
        self._dropping = False
        # Others' events published here (from a file), by identity or, for
        # one without, by value: when they come back from the store they are
        # not applied a second time.
        self.echo: set[tuple[str, int] | LearnEvent] = set()

    def __len__(self) -> int:
        """Items waiting."""
        return len(self._queue)

    def stamp(self, events: Sequence[LearnEvent]) -> list[LearnEvent]:
        """Give this origin's events without an identity their sequence number.

        Another origin's event (read from a file) is left as it is: with an
        identity the store can tell it from its copies; without one (an older
        file) it is appended like any event without one.
        """
        with self._lock:
            return [self._stamp(event) for event in events]

    def _stamp(self, event: LearnEvent) -> LearnEvent:
        if event.seq > 0 or event.origin != self.origin:
            return event
        self._seq += 1
        return dataclasses.replace(event, seq=self._seq)

    def queue(self, events: Sequence[LearnEvent]) -> list[LearnEvent]:
        """Stamp events and queue the storable ones; return them all stamped."""
        ok = []
        bad = 0
        for event in events:
            if storable(event):
                ok.append(event)
            else:
                bad += 1
        with self._lock:
            stamped = [self._stamp(event) for event in ok]
            for event in stamped:
                if event.origin != self.origin:
                    if len(self.echo) >= self.limit:
                        self.echo.clear()  # bounded; a rare double replay at worst
                    self.echo.add(event.identity or event)
                self._queue.append((next(self._tickets), event))
            self._trim()
            if bad:
                self.unstorable += bad
        if bad:
            logger.warning(
                "tokencal: %d event(s) not stored: a model name or value is not "
                "short UTF-8 text (they stay in this process's memory)",
                bad,
            )
        return stamped

    def bill(self, model: str, totals: Sequence[int]) -> None:
        """Add a usage increment, sealed into the queue at the next push."""
        if not _storable_text(model) or not model:
            return  # its events were not queued either (see `queue`)
        with self._lock:
            sums = self._usage.setdefault(model, [0] * len(USAGE_FIELDS))
            for i, value in enumerate(totals):
                sums[i] += value

    def _seal(self) -> None:
        """Turn the usage billed since the last push into identified increments."""
        for model, totals in self._usage.items():
            if not any(totals):
                continue
            self._seq += 1
            delta = UsageDelta(model, tuple(totals), self.origin, self._seq)
            self._queue.append((next(self._tickets), delta))
        self._usage = {}
        self._trim()

    def _trim(self) -> None:
        overflow = len(self._queue) - self.limit
        if overflow <= 0:
            self._dropping = False
            return
        for _ in range(overflow):
            self._queue.popleft()
        self.dropped += overflow
        if not self._dropping:
            self._dropping = True
            logger.warning(
                "tokencal: the store queue is full (%d items); dropping the oldest "
                "(%d dropped so far)",
                self.limit,
                self.dropped,
            )

    def push(self, store: Store) -> int:
        """Send everything queued before this call, batch by batch.

        Returns:
            How many items were sent.

        Raises:
            StoreError: The store failed; what it did not accept stays queued.
        """
        with self._lock:
            self._seal()
            last = self._queue[-1][0] if self._queue else 0
        sent = 0
        while True:
            with self._lock:
                chunk = list(itertools.islice(self._queue, self.batch))
            chunk = [(t, item) for t, item in chunk if t <= last]
            if not chunk:
                return sent
            events = [i for _, i in chunk if isinstance(i, LearnEvent)]
            usage = [i for _, i in chunk if isinstance(i, UsageDelta)]
            try:
                apply_batch(store, events, usage)
            except ConfigError:
                # A value the store refuses will be refused on every retry:
                # drop this batch (counted) rather than block the queue.
                logger.exception("tokencal: the store refused a batch; dropped")
                with self._lock:
                    self.dropped += len(chunk)
            top = chunk[-1][0]
            with self._lock:
                while self._queue and self._queue[0][0] <= top:
                    self._queue.popleft()
            sent += len(chunk)
