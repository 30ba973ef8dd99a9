"""The queue of reports waiting to be learned: bounded, and taken in one order.

Callbacks `put` reports from any thread without a lock (a deque append); a
counter `take` s them in batches, in a canonical order, so that what is
learned does not depend on which thread finished first. The queue is bounded:
when reports arrive faster than anything learns them, the oldest are dropped
and counted, so memory stays flat and the drop shows in the statistics.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_tokencal._calibration.learning import Observation

__all__ = ["INBOX_CAPACITY", "Inbox"]

INBOX_CAPACITY: Final = 4096
"""Reports one model may have waiting; beyond it the oldest are dropped."""


def _same_prompt(a: Observation, b: Observation) -> bool:
    """True if two reports hold the very same message and tool objects."""
    return a.tools is b.tools and all(
        x is y for x, y in zip(a.messages, b.messages, strict=False)
    )


def _size_key(obs: Observation) -> tuple[int, int, int]:
    """Sort key of a queued report by size (see `Inbox.take`)."""
    usage = obs.usage
    return len(obs.messages), -usage.input_tokens, -usage.output_tokens


class Inbox:
    """Reports queued for learning. `put` is lock-free; `take` is thread-safe.

    Args:
        capacity: How many reports may wait; the oldest beyond it are dropped.

    Example:
        ```python
        from langchain_tokencal._calibration.inbox import Inbox

        inbox = Inbox(capacity=2)
        assert not inbox and inbox.take(10, lambda obs: ()) == []
        ```
    """

    def __init__(self, capacity: int = INBOX_CAPACITY) -> None:
        """An empty queue."""
        self.capacity = capacity
        self._queue: deque[Observation] = deque()
        self._dropped = 0
        # Held by whoever pops (a drop, a take), so a pop never finds the
        # queue emptied under it; `put` appends without it.
        self._pop_lock = threading.Lock()

    def __len__(self) -> int:
        """How many reports wait."""
        return len(self._queue)

    def put(self, obs: Observation) -> None:
        """Queue a report; O(1), safe from any thread."""
        queue = self._queue
        queue.append(obs)
        if len(queue) > self.capacity:
            with self._pop_lock:
                if len(queue) > self.capacity:
                    queue.popleft()
                    self._dropped += 1

    def take_dropped(self) -> int:
        """How many reports were dropped since the last call."""
        if not self._dropped:
            return 0
        with self._pop_lock:
            dropped, self._dropped = self._dropped, 0
        return dropped

    def take(
        self, limit: int, content_key: Callable[[Observation], tuple[Any, ...]]
    ) -> list[Observation]:
        """Take up to ``limit`` of the oldest reports, in the order they are learned.

        Shorter prompts first, so a conversation's turns keep their order;
        among prompts of as many messages, the larger count first, so a
        prompt is seen before reports that could be its cached remainder.
        Reports that tie on those are ordered by ``content_key`` (their
        digests); a repeated prompt (the same message objects) needs none.
        """
        queue = self._queue
        with self._pop_lock:
            taken = [queue.popleft() for _ in range(min(limit, len(queue)))]
        if not taken:
            return taken
        taken.sort(key=_size_key)
        out: list[Observation] = []
        for _, group in itertools.groupby(taken, key=_size_key):
            tied = list(group)
            if not all(_same_prompt(o, tied[0]) for o in tied[1:]):
                tied.sort(key=content_key)
            out.extend(tied)
        return out

    def give_back(self, unlearned: list[Observation]) -> None:
        """Put taken reports back at the front, in their order."""
        self._queue.extendleft(reversed(unlearned))
