"""Idle models' counters, parked compressed: memory bounded across models.

A handler that sees thousands of models (one per tenant, per fine-tune, per
deployment) must not keep a live counter for each. Past ``max_models`` live
counters, the least recently used idle one is parked: its learned state
(`encode_counter`, numbers and hashes only) is compressed with zlib and kept
here, about a tenth of the live counter's memory, and restored when the
model is used again. Parked states are bounded too (`PARKED_BYTES`): past
that the oldest are dropped, counted and logged; a dropped model learns
again from its next reports (and a new handler restores it from the store's
snapshot).

Thread-safe under the registry's lock (the registry calls it holding it).
"""

from __future__ import annotations

import logging
import zlib
from collections import OrderedDict
from typing import Final

__all__ = ["PARKED_BYTES", "Parking"]

logger = logging.getLogger(__name__)

# Compressed states kept in all; a state is ~20-100 KB compressed.
PARKED_BYTES: Final = 128 * 1024 * 1024


class Parking:
    """Compressed states of parked counters, oldest first, within a byte budget.

    Args:
        budget: Bytes of compressed state kept; past it the oldest go.
            ``None`` keeps every state (the snapshot writer's, whose
            snapshot must hold every model).

    Example:
        ```python
        from langchain_tokencal._callbacks.parking import Parking

        parking = Parking(budget=1_000)
        parking.park("a", '{"state": 1}')
        assert parking.take("a") == '{"state": 1}' and parking.take("a") is None
        ```
    """

    def __init__(self, budget: int | None = PARKED_BYTES) -> None:
        """Start with nothing parked."""
        self._budget = budget
        self._states: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self.parked = 0  # counters parked, ever
        self.dropped = 0  # parked states dropped for the budget, ever

    def park(self, model: str, document: str) -> None:
        """Keep ``model``'s state document, dropping the oldest past the budget."""
        packed = zlib.compress(document.encode("utf-8"), 1)
        old = self._states.pop(model, None)
        if old is not None:
            self._bytes -= len(old)
        self._states[model] = packed
        self._bytes += len(packed)
        self.parked += 1
        budget = self._budget
        while budget is not None and self._bytes > budget and self._states:
            gone, state = self._states.popitem(last=False)
            self._bytes -= len(state)
            if not self.dropped:
                logger.warning(
                    "tokencal: more idle models than memory for their parked "
                    "calibration (%d MB); the least recently used (first: %r) "
                    "learn again from their next reports",
                    budget // (1024 * 1024),
                    gone,
                )
            self.dropped += 1

    def take(self, model: str) -> str | None:
        """Remove and return ``model``'s parked document, if it is here."""
        packed = self._states.pop(model, None)
        if packed is None:
            return None
        self._bytes -= len(packed)
        return zlib.decompress(packed).decode("utf-8")

    def documents(self) -> list[tuple[str, str]]:
        """Every parked model and its document, oldest first (nothing removed)."""
        return [
            (m, zlib.decompress(p).decode("utf-8")) for m, p in self._states.items()
        ]

    def __len__(self) -> int:
        """Models parked now."""
        return len(self._states)

    @property
    def size(self) -> int:
        """Bytes of compressed state held."""
        return self._bytes
