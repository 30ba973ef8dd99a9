"""Snapshots of what a store's log teaches, and counters started from them.

A snapshot is the state a full replay of the log up to a cursor leaves in
each model's counter (`CalibratedCounter.export`), one JSON document per
model. It is built by replaying the log, not taken from a live handler's
counters: those also hold what this process learned but did not push yet,
in an order no other process saw. So a `Shadow` keeps counters of its own,
fed every event of the log in store order (`shadow`), and `build_counters`
starts a handler's counters from a snapshot, after which the handler replays only the
events after its cursor. Snapshot plus tail equals the full replay.

A snapshot comes from a shared store, so each model's document is parsed
with bounds and checked value by value; a bad one is skipped with a warning
(that model then starts from the events after the snapshot alone), never
fatal.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage import check_model

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from langchain_tokencal._calibration import CalibratedCounter

__all__ = ["build_counters", "encode_counter"]

logger = logging.getLogger(__name__)


def encode_counter(counter: CalibratedCounter) -> str:
    """One model's snapshot document: where it is served and what it learned."""
    doc = {"provider": counter.provider or "", "state": counter.export()}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def build_counters(
    states: Mapping[str, str],
    make: Callable[[str, str | None], CalibratedCounter],
    where: str,
) -> dict[str, CalibratedCounter]:
    """Counters started from a snapshot's documents; bad ones skipped, logged.

    Args:
        states: Model key -> its document (`encode_counter`).
        make: Builds a fresh counter for a model key and provider.
        where: The store, for the warning.
    """
    counters: dict[str, CalibratedCounter] = {}
    bad: list[str] = []
    for model, text in states.items():
        try:
            check_model(model)
            doc: Any = json.loads(text)
            provider = doc["provider"]
            if not isinstance(provider, str):
                msg = "provider is not text"
                raise TypeError(msg)  # noqa: TRY301 - one handler for every bad document
            counter = make(model, provider or None)
            counter.restore(doc["state"])
        except (ValueError, TypeError, KeyError, RecursionError, ConfigError) as err:
            bad.append(f"{model!r:.60}: {err}")
            continue
        counters[model] = counter
    if bad:
        logger.warning(
            "tokencal: skipped %d unreadable model state(s) in the snapshot of %s "
            "(first %s); those models learn again from the events after it",
            len(bad),
            where,
            bad[0],
        )
    return counters
