"""Feature views: what calibration reads of a message and of a tool set.

`MessageFeatures` is a light read-only view of a packed record (see
`record`); `FeatureBatch` holds the records of a message list with their
digests and local counts as columns, for code that reads those of every
message and the vector of few; `ToolFeatures` describes the tool set bound
to a call (`NO_TOOLS` for none).

A message's feature vector (`MessageFeatures.vector`) has `N_FEATURES`
entries, laid out as named by these constants (use them, not index
arithmetic):

| constant | entries | value |
|---|---|---|
| `FEATURE_BIAS` | index 0 | ``1.0``: the per-message intercept |
| `FEATURE_CLASSES` | ``slice(1, 10)`` | content tokens by `CONTENT_CLASSES` |
| `FEATURE_IMAGE` | index 10 | the message's local image tokens |
| `FEATURE_TOOL_CALLS` | index 11 | the message's tool calls (an AI message's) |
| `FEATURE_TOOL_RESULT` | index 12 | ``1.0`` for a tool result (a tool-call id) |

So ``vector[FEATURE_CLASSES]`` is the message's content tokens split by class,
and ``local`` is its structural overhead plus about
``sum(vector[FEATURE_CLASSES]) + vector[FEATURE_IMAGE]``. The tool entries
count structure, not tokens: chat templates wrap each tool call and each tool
result in tens of tokens of their own, which no local count sees.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast, overload

from typing_extensions import Self

from langchain_tokencal._features.classes import CONTENT_CLASSES
from langchain_tokencal._features.record import (
    HEAD_SIZE,
    pack_record,
    record_vector,
    slot_values,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "FEATURE_BIAS",
    "FEATURE_CLASSES",
    "FEATURE_IMAGE",
    "FEATURE_TOOL_CALLS",
    "FEATURE_TOOL_RESULT",
    "NO_TOOLS",
    "N_FEATURES",
    "FeatureBatch",
    "MessageFeatures",
    "RecordFeatures",
    "ToolFeatures",
]

FEATURE_BIAS: Final = 0
"""Index of the per-message intercept (always ``1.0``) in a feature vector."""

FEATURE_CLASSES: Final = slice(1, 1 + len(CONTENT_CLASSES))
"""The content-class block of a feature vector, in `CONTENT_CLASSES` order."""

FEATURE_IMAGE: Final = FEATURE_CLASSES.stop
"""Index of the local image tokens in a feature vector."""

FEATURE_TOOL_CALLS: Final = FEATURE_IMAGE + 1
"""Index of the message's tool-call count in a feature vector."""

FEATURE_TOOL_RESULT: Final = FEATURE_IMAGE + 2
"""Index of the tool-result flag (``1.0`` when a message answers a tool call)."""

N_FEATURES: Final = FEATURE_TOOL_RESULT + 1
"""Length of `MessageFeatures.vector`: intercept, classes, images, tool structure."""


class _Fields(NamedTuple):
    digest: int
    local: int
    record: bytes


class MessageFeatures(_Fields):
    """What calibration needs from one message.

    A read-only record: a named tuple ``(digest, local, record)`` whose vector
    stays packed in ``record`` (see `pack_record`) until `vector` is read.
    The counters make them from memo records in C (`RecordFeatures`), and the
    fields read at C speed. Equality and hashing are by value (digest, local
    and vector); a record never equals a plain tuple.

    Attributes:
        local: The message's token count by the local counter, including its
            structural overhead (OpenAI: 3 per message, the role's tokens, the
            name's tokens + 1, tool calls, images).
        vector: Regression features, `N_FEATURES` long, laid out as the
            module docstring says: the intercept (`FEATURE_BIAS`), the
            message's local content tokens (content, name, tool-call names
            and arguments) split by class (`FEATURE_CLASSES`) and its local
            image tokens (`FEATURE_IMAGE`). Unpacked on each read: keep it if
            you read it often.
        digest: A stable unsigned 64-bit xxh3 hash of the message's role,
            content, name, tool calls and tool-call id; identical across
            processes, so it can key persisted knowledge.
        record: The packed features (an implementation detail).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting import local_counter
        from langchain_tokencal._features import FEATURE_BIAS

        (features,) = local_counter("gpt-4o").message_features([HumanMessage("hi")])
        assert features.local == 5 and features.vector[FEATURE_BIAS] == 1.0
        ```
    """

    __slots__ = ()

    def __new__(cls, local: int, vector: Sequence[float], digest: int) -> Self:
        """Build the features of a message from its values."""
        return tuple.__new__(cls, (digest, local, pack_record(0, 0, vector)))

    @property
    def vector(self) -> tuple[float, ...]:
        """The regression features (see the class docstring)."""
        return record_vector(self.record)

    def _key(self) -> tuple[int, int, bytes]:
        # The record's head is not needed (the fields hold it) and its stamp
        # byte is the memo's business: neither is part of the value.
        return self.digest, self.local, self.record[HEAD_SIZE:-1]

    def __eq__(self, other: object) -> bool:
        """Equal when digest, local and vector are equal; never equal a plain tuple."""
        # Not NotImplemented for other types: tuple's reflected comparison
        # would then call a record equal to the tuple of its fields.
        return isinstance(other, MessageFeatures) and self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        """The negation of `__eq__`."""
        return not self == other

    def __hash__(self) -> int:
        """Hash by value, consistent with `__eq__`."""
        return hash(self._key())

    def __repr__(self) -> str:
        """Show the values, like a dataclass."""
        return (
            f"MessageFeatures(local={self.local!r}, vector={self.vector!r}, "
            f"digest={self.digest!r})"
        )

    def __reduce__(self) -> tuple[type[MessageFeatures], tuple[Any, ...]]:
        """Pickle and copy through the public constructor."""
        return MessageFeatures, (self.local, self.vector, self.digest)


class RecordFeatures(MessageFeatures):
    """`MessageFeatures` made from a packed record, for the counters' hot path.

    ``RecordFeatures((digest, local, record))`` takes the fields as one
    tuple, with the record's head already unpacked into ``digest`` and
    ``local``. Its constructor is ``tuple``'s own, in C: about half the cost
    of ``tuple.__new__(MessageFeatures, ...)`` called from Python, and no
    vector packing.

    Example:
        ```python
        from langchain_tokencal._features import (
            MessageFeatures,
            RecordFeatures,
            pack_record,
        )

        record = pack_record(9, 4, (1.0, 2.0))
        features = RecordFeatures((9, 4, record))
        assert features == MessageFeatures(local=4, vector=(1.0, 2.0), digest=9)
        ```
    """

    __slots__ = ()
    __new__ = tuple.__new__  # type: ignore[assignment]


_first = itemgetter(0)
_DIGEST: Final = struct.Struct("<Q")
_LOCAL: Final = struct.Struct("<8xI")
# RecordFeatures' constructor is tuple's; give it the type it has.
_view = cast("Callable[[tuple[int, int, bytes]], MessageFeatures]", RecordFeatures)


class FeatureBatch(Sequence[MessageFeatures]):
    """The features of a message list, by column: digests and local counts.

    What `LocalCounter.feature_batch` returns: the columns a count reads for
    every message, without a record object per message, plus the packed
    records for anything else. Also a read-only sequence of
    `MessageFeatures` (built on access), so it stands in for
    `LocalCounter.message_features`' list. Read-only: share it between
    threads freely, and do not modify its lists.

    Attributes:
        digests: Each message's `MessageFeatures.digest`.
        locals: Each message's `MessageFeatures.local`.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting import local_counter
        from langchain_tokencal._features import FEATURE_BIAS

        counter = local_counter("gpt-4o")
        messages = [HumanMessage("hi"), HumanMessage("yo")]
        batch = counter.feature_batch(messages)
        assert batch.local_total == sum(batch.locals) == counter(messages) - 3
        assert batch[0] == counter.message_features([HumanMessage("hi")])[0]
        assert batch.vector(1)[FEATURE_BIAS] == 1.0
        ```
    """

    __slots__ = ("_locals", "_records", "digests")

    def __init__(self, records: list[bytes]) -> None:
        """Wrap packed records (see `pack_record`), one per message."""
        self._records = records
        self.digests: list[int] = list(map(_first, map(_DIGEST.unpack_from, records)))
        self._locals: list[int] | None = None

    @property
    def locals(self) -> list[int]:
        """Each message's `MessageFeatures.local` (unpacked on first use)."""
        if self._locals is None:
            self._locals = list(map(_first, map(_LOCAL.unpack_from, self._records)))
        return self._locals

    @property
    def local_total(self) -> int:
        """The sum of the local counts."""
        return sum(self.locals)

    def vector(self, index: int) -> tuple[float, ...]:
        """`MessageFeatures.vector` of the message at ``index``."""
        return record_vector(self._records[index])

    def vector_sum(self, start: int = 0) -> list[float]:
        """Each feature summed over the messages from ``start`` on.

        Equal to summing `vector` of each message in order, without building
        the vectors: what a fit reads of a prompt's new messages.
        """
        total = [0.0] * N_FEATURES
        for record in self._records[start:] if start else self._records:
            for slot, value in slot_values(record)[0]:
                total[slot] += value
        return total

    def take(self, indices: Sequence[int]) -> FeatureBatch:
        """The batch of the messages at ``indices``, in that order.

        What a count of a sub-list reads, without looking its messages up
        again (`handler.trim` counts many sub-lists of one history).
        """
        records = self._records
        return FeatureBatch([records[i] for i in indices])

    def __len__(self) -> int:
        """The number of messages."""
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> MessageFeatures: ...

    @overload
    def __getitem__(self, index: slice) -> list[MessageFeatures]: ...

    def __getitem__(
        self, index: int | slice
    ) -> MessageFeatures | list[MessageFeatures]:
        """The `MessageFeatures` at ``index`` (a list for a slice)."""
        if isinstance(index, slice):
            return list(
                map(
                    _view,
                    zip(
                        self.digests[index],
                        self.locals[index],
                        self._records[index],
                        strict=True,
                    ),
                )
            )
        return _view((self.digests[index], self.locals[index], self._records[index]))

    def __iter__(self) -> Iterator[MessageFeatures]:
        """Each message's `MessageFeatures`, built as it is reached."""
        return map(_view, zip(self.digests, self.locals, self._records, strict=True))

    def __repr__(self) -> str:
        """Show the size and the total."""
        return f"FeatureBatch(messages={len(self)}, local_total={self.local_total})"


@dataclass(frozen=True, slots=True)
class ToolFeatures:
    """What calibration needs from the tool set bound to a call.

    Attributes:
        local: Local tokens for the whole tool set (OpenAI: the cookbook's
            function-definition rules; approximate: schema tokens plus fixed
            per-tool and per-set overheads).
        schema_tokens: Tokens of the tools' canonical JSON by the reference
            tokenizer.
        count: Number of tools.
        fingerprint: Stable xxh3_64 of the canonical JSON of the normalized
            tool list; 0 for no tools.

    Example:
        ```python
        from langchain_tokencal._counting import local_counter
        from langchain_tokencal._features import NO_TOOLS

        assert local_counter("gpt-4o").tool_features(None) == NO_TOOLS
        ```
    """

    local: int
    schema_tokens: float
    count: int
    fingerprint: int


NO_TOOLS: Final = ToolFeatures(local=0, schema_tokens=0.0, count=0, fingerprint=0)
"""The features of a call with no tools."""
