"""Exact knowledge learned from usage reports, keyed by stable hashes.

Three maps, all bounded (size and optional TTL) and holding numbers only,
never prompt text:

- *prompts*: the rolling hash of a whole prompt (tool set + message digests)
  to its reported input tokens. A list reported before is answered exactly,
  and a list that extends a reported one (the next turn of a conversation)
  is anchored on it, so only the new messages are estimated.
- *messages*: a message digest to its cost in the provider's tokens, derived
  from the difference between consecutive prompts or from the completion
  tokens of the reply that produced it. `trim_messages` counts suffixes of a
  history, which never match a whole-prompt hash; per-message costs serve it.
- *bases*: a tool-set fingerprint to the fixed tokens a prompt costs beyond
  its messages (framing, tool preamble and schemas).

A message cost or base split out of a whole prompt's report is provisional:
it is kept with its precision (inverse variance, `message_weight`,
`base_weight`), and each later report that shares it refines it as a
precision-weighted mean. A cost taken from a delta or from completion tokens
is firm (weight 0) and is not revised.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_tokencal._cache import CacheStats, TTLCache

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["Ledger", "LedgerStats", "as_hash", "prefix_hashes"]

_MASK = (1 << 64) - 1
# The maps `Ledger.export` writes, in the order `Ledger.restore` reads them.
_MAPS = ("prompts", "messages", "bases", "weights", "base_weights")
_MAX_VALUE = 1e9
# Odd 64-bit multipliers (golden-ratio and splitmix constants): the rolling hash
# must be stable across processes, so Python's salted hash() cannot be used.
_MUL = 0x9E3779B97F4A7C15
_SEED = 0xBF58476D1CE4E5B9
# Weight of a new observation in the moving average of a tool set's base cost.
_BASE_ALPHA = 0.3


def _pair(tool_fingerprint: int, digest: int) -> int:
    return (((tool_fingerprint ^ _SEED) * _MUL) ^ digest) & _MASK


def prefix_hashes(tool_fingerprint: int, digests: Sequence[int]) -> list[int]:
    """Rolling hashes of every prefix of a prompt.

    Element ``i`` identifies the tool set plus messages ``0..i``. The hash is
    order-sensitive and stable across processes.

    Example:
        ```python
        from langchain_tokencal._calibration.ledger import prefix_hashes

        a = prefix_hashes(0, [11, 22, 33])
        assert prefix_hashes(0, [11, 22]) == a[:2]
        assert prefix_hashes(0, [22, 11])[1] != a[1]
        ```
    """
    h = (tool_fingerprint ^ _SEED) & _MASK
    out: list[int] = []
    append = out.append
    for d in digests:
        h = ((h ^ d) * _MUL) & _MASK
        h ^= h >> 29
        append(h)
    return out


@dataclass(frozen=True, slots=True)
class LedgerStats:
    """Sizes and hit statistics of a model's ledger maps.

    Example:
        ```python
        from langchain_tokencal._calibration.ledger import Ledger

        stats = Ledger(max_size=10).stats()
        assert stats.prompts.size == 0
        ```
    """

    prompts: CacheStats
    messages: CacheStats
    bases: CacheStats


class Ledger:
    """Bounded maps from stable hashes to exact token counts.

    Thread-safe per operation (each map locks itself); `CalibratedCounter`
    serializes multi-step updates.

    Args:
        max_size: Entries kept per map (least recently used evicted first).
        ttl: Seconds an entry lives, or ``None`` to keep entries until evicted.
        clock: Monotonic clock, injectable for tests.

    Example:
        ```python
        from langchain_tokencal._calibration.ledger import Ledger

        ledger = Ledger(max_size=1000)
        ledger.record(0, [1, 2, 3], 42)
        assert ledger.anchor(0, [1, 2, 3, 4]) == (3, 42)
        ```
    """

    def __init__(
        self,
        max_size: int,
        ttl: float | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Create empty maps."""
        kwargs = {} if clock is None else {"clock": clock}
        self.prompts: TTLCache[int, int] = TTLCache(max_size, ttl, **kwargs)
        self.messages: TTLCache[int, float] = TTLCache(max_size, ttl, **kwargs)
        self.bases: TTLCache[int, float] = TTLCache(min(max_size, 4096), ttl, **kwargs)
        # Precisions of provisional costs (absent: firm or unknown).
        self.weights: TTLCache[int, float] = TTLCache(max_size, ttl, **kwargs)
        self.base_weights: TTLCache[int, float] = TTLCache(
            min(max_size, 4096), ttl, **kwargs
        )
        # Filters over recorded prompts, so that a list that cannot extend any
        # of them (a trimmed suffix, a new conversation) costs no hashing: the
        # (tool set, first message) pairs they start with and the digests they
        # end with. Bounded oldest-first; a dropped entry only stops anchoring
        # on prompts that old.
        self._firsts: dict[int, None] = {}
        self._ends: dict[int, None] = {}
        self._filter_size = 2 * max_size

    def anchor(
        self, tool_fingerprint: int, digests: Sequence[int]
    ) -> tuple[int, int] | None:
        """The longest reported prefix of a prompt: ``(messages, tokens)``.

        Scans from the longest candidate prefix down, so the common case (the
        previous turn of a growing conversation) costs one or two lookups, and
        hashes only prefixes that end on a recorded prompt's last digest: a list
        that extends no recorded prompt costs no hashing at all.
        """
        if not digests or _pair(tool_fingerprint, digests[0]) not in self._firsts:
            return None
        ends = self._ends
        candidates = [i for i in range(len(digests) - 1, -1, -1) if digests[i] in ends]
        if not candidates:
            return None
        hashes = prefix_hashes(tool_fingerprint, digests[: candidates[0] + 1])
        get = self.prompts.get
        for i in candidates:
            tokens = get(hashes[i])
            if tokens is not None:
                return i + 1, tokens
        return None

    def record(self, tool_fingerprint: int, digests: Sequence[int], tokens: int) -> int:
        """Remember a whole prompt's reported input tokens; return its hash.

        The hash of a prompt without messages is its tool fingerprint.
        """
        if not digests:
            self.prompts.put(tool_fingerprint, tokens)
            return tool_fingerprint
        prompt_hash = prefix_hashes(tool_fingerprint, digests)[-1]
        self.insert(tool_fingerprint, digests[0], digests[-1], prompt_hash, tokens)
        return prompt_hash

    def insert(
        self,
        tool_fingerprint: int,
        first: int,
        last: int,
        prompt_hash: int,
        tokens: int,
    ) -> None:
        """Remember a prompt by its hash and the digests `anchor` filters on."""
        self.prompts.put(prompt_hash, tokens)
        for filt, key in (
            (self._firsts, _pair(tool_fingerprint, first)),
            (self._ends, last),
        ):
            filt.pop(key, None)
            filt[key] = None
            if len(filt) > self._filter_size:
                for old in list(itertools.islice(filt, len(filt) // 4)):
                    del filt[old]

    def message_cost(self, digest: int) -> float | None:
        """The learned cost of a message, if known (no statistics touched)."""
        return self.messages.peek(digest)

    def set_message_cost(self, digest: int, cost: float, weight: float = 0.0) -> None:
        """Remember a message's cost in the provider's tokens.

        Args:
            digest: The message's digest.
            cost: Its cost.
            weight: The cost's precision if provisional; 0 for a firm cost.
        """
        self.messages.put(digest, max(cost, 0.0))
        if weight > 0.0:
            self.weights.put(digest, weight)
        else:
            self.weights.discard(digest)

    def message_weight(self, digest: int) -> float:
        """The precision of a provisional message cost; 0 if firm or unknown."""
        return self.weights.peek(digest) or 0.0

    def base_cost(self, tool_fingerprint: int) -> float | None:
        """The learned fixed cost of a prompt with this tool set, if known."""
        return self.bases.peek(tool_fingerprint)

    def set_base_cost(
        self, tool_fingerprint: int, cost: float, weight: float = 0.0
    ) -> None:
        """Remember a tool set's base cost (``weight``: as `set_message_cost`)."""
        self.bases.put(tool_fingerprint, cost)
        if weight > 0.0:
            self.base_weights.put(tool_fingerprint, weight)
        else:
            self.base_weights.discard(tool_fingerprint)

    def base_weight(self, tool_fingerprint: int) -> float:
        """The precision of a provisional base cost; 0 if firm or unknown."""
        return self.base_weights.peek(tool_fingerprint) or 0.0

    def blended_base(self, tool_fingerprint: int, observed: float) -> float:
        """The tool set's base cost after blending in an observed one."""
        old = self.bases.peek(tool_fingerprint)
        return observed if old is None else old + _BASE_ALPHA * (observed - old)

    def export(self) -> dict[str, list[Any]]:
        """The live entries of every map and filter, oldest first, as numbers."""
        return {
            **{name: _flat(getattr(self, name).live_items()) for name in _MAPS},
            "firsts": list(self._firsts),
            "ends": list(self._ends),
        }

    def restore(self, data: Mapping[str, Sequence[Any]]) -> None:
        """Put what `export` returned into these (empty) maps, in order.

        Raises:
            ValueError: A map of the wrong shape (also ``TypeError``/``KeyError``).
        """
        # Everything is checked before anything is put: all or nothing.
        maps: list[tuple[TTLCache[int, Any], list[tuple[int, float]]]] = []
        for name in _MAPS:
            flat = data[name]
            if len(flat) % 2:
                msg = f"the ledger's {name} hold an odd number of values"
                raise ValueError(msg)
            value = int if name == "prompts" else float
            # Only a tool set's base may be below zero (a local count above
            # the provider's).
            floor = -_MAX_VALUE if name == "bases" else 0.0
            pairs = [
                (as_hash(flat[i]), value(_number(flat[i + 1], floor)))
                for i in range(0, len(flat), 2)
            ]
            maps.append((getattr(self, name), pairs))
        filters = [
            (getattr(self, f"_{name}"), [as_hash(k) for k in data[name]])
            for name in ("firsts", "ends")
        ]
        for cache, pairs in maps:
            for key, number in pairs:
                cache.put(key, number)
        for filt, keys in filters:
            for key in keys[-self._filter_size :]:
                filt[key] = None

    def stats(self) -> LedgerStats:
        """Snapshot of the three maps' statistics."""
        return LedgerStats(
            prompts=self.prompts.stats(),
            messages=self.messages.stats(),
            bases=self.bases.stats(),
        )


def _flat(items: Sequence[tuple[int, float]]) -> list[float]:
    """``[(k, v), ...]`` as ``[k, v, ...]``: half the JSON of pairs."""
    return [x for pair in items for x in pair]


def as_hash(value: object) -> int:
    """A 64-bit hash or digest read back from a snapshot, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"not a hash: {value!r:.40}"
        raise TypeError(msg)
    if not -(2**63) <= value < 2**64:
        msg = f"hash out of range: {value}"
        raise ValueError(msg)
    return value


def _number(value: object, floor: float) -> float:
    """A finite count or weight in ``[floor, 1e9]`` from a snapshot, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"not a number: {value!r:.40}"
        raise TypeError(msg)
    if not (math.isfinite(value) and floor <= value <= _MAX_VALUE):
        msg = f"count out of range: {value}"
        raise ValueError(msg)
    return value
