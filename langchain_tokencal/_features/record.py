"""The packed record codec: a message's features in one ``bytes`` object.

The counters memoize one record per message seen, so a record's size is the
memo's size: 33 bytes of object header plus about 48 of data for a Latin-text
message, against some 300 for a tuple of ten floats, the floats and a
dataclass. Layout:

| field | type | |
|---|---|---|
| digest | u64 little-endian | the message's stable digest |
| local | u32 | its local token count |
| length | u8 | of the vector |
| mask | ``ceil(length / 8)`` bytes, little-endian | bit i set if ``vector[i] != 0`` |
| values | f64 each | the nonzero vector entries, in order (exact: no rounding) |
| stamp | u8 | the memo's recency mark (`RecordMemo`); not part of the value |

`pack_record` writes one, `record_vector` reads its vector back and
`slot_values` its nonzero entries. Thread-safe: the codec caches one struct
per vector shape in module dictionaries, written with single assignments.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "HEAD_SIZE",
    "RECORD_HEAD",
    "pack_record",
    "record_vector",
    "slot_values",
]

RECORD_HEAD: Final = struct.Struct("<QI")
"""Layout of a packed record's head: ``(digest, local)``."""
HEAD_SIZE: Final = RECORD_HEAD.size
"""Bytes of a record before its vector: `RECORD_HEAD`'s size."""
_MAX_LOCAL: Final = 2**32 - 1
# header bytes (length + mask) -> (values struct, slots of the values, length)
_DECODERS: dict[bytes, tuple[struct.Struct, tuple[int, ...], int]] = {}
# nonzero flags of a vector -> (record struct, header bytes)
_ENCODERS: dict[bytes, tuple[struct.Struct, bytes]] = {}


def pack_record(digest: int, local: int, vector: Sequence[float]) -> bytes:
    """Pack a message's features into one record (see the module docstring).

    Zero entries of the vector take one bit; others eight bytes, unrounded.

    Args:
        digest: Unsigned 64-bit message digest.
        local: Local token count, ``0 <= local < 2**32``.
        vector: At most 255 floats.

    Returns:
        The record, with a zero stamp byte at the end.

    Raises:
        ValueError: If a value does not fit its field.

    Example:
        ```python
        from langchain_tokencal._features import pack_record, record_vector

        record = pack_record(7, 5, (1.0, 0.0, 2.5))
        assert record_vector(record) == (1.0, 0.0, 2.5)
        ```
    """
    flags = bytes(map(bool, vector))  # which entries are nonzero, in C
    packer, header = _ENCODERS.get(flags) or _encoder(flags)
    try:
        # One struct call: head, length and mask, the nonzero values, stamp 0.
        return packer.pack(digest, local, header, *filter(None, vector))
    except struct.error as err:
        msg = (
            f"Cannot pack features with digest={digest} and local={local} ({err}); "
            f"digest must be an unsigned 64-bit integer, local in [0, {_MAX_LOCAL}] "
            "and the vector made of numbers."
        )
        raise ValueError(msg) from None


def _encoder(flags: bytes) -> tuple[struct.Struct, bytes]:
    """The struct and header packing a record with these nonzero entries."""
    n = len(flags)
    if n > 255:  # noqa: PLR2004 - one length byte
        msg = f"Cannot pack a vector of {n} entries; at most 255."
        raise ValueError(msg)
    mask = sum(1 << i for i, flag in enumerate(flags) if flag)
    header = bytes((n,)) + mask.to_bytes((n + 7) // 8, "little")
    spec = (struct.Struct(f"<QI{len(header)}s{sum(flags)}dx"), header)
    if len(_ENCODERS) < 4096:  # noqa: PLR2004 - a few vector shapes in use
        _ENCODERS[flags] = spec
    return spec


def _decoder(header: bytes) -> tuple[struct.Struct, tuple[int, ...], int]:
    """The struct and slots decoding a vector with this length and mask."""
    n = header[0]
    mask = int.from_bytes(header[1:], "little")
    slots = tuple(i for i in range(n) if mask >> i & 1)
    spec = (struct.Struct(f"<{len(slots)}d"), slots, n)
    if len(_DECODERS) < 4096:  # noqa: PLR2004 - a few masks in use
        _DECODERS[header] = spec
    return spec


def slot_values(record: bytes) -> tuple[zip[tuple[int, float]], int]:
    """The (slot, value) pairs of a record's nonzero entries, and its vector's length.

    Example:
        ```python
        from langchain_tokencal._features import pack_record, slot_values

        pairs, n = slot_values(pack_record(1, 2, (0.0, 3.0)))
        assert (list(pairs), n) == ([(1, 3.0)], 2)
        ```
    """
    end = HEAD_SIZE + 1 + (record[HEAD_SIZE] + 7) // 8
    header = record[HEAD_SIZE:end]
    values, slots, n = _DECODERS.get(header) or _decoder(header)
    return zip(slots, values.unpack_from(record, end), strict=True), n


def record_vector(record: bytes) -> tuple[float, ...]:
    """Unpack the feature vector of a record made by `pack_record`.

    Example:
        ```python
        from langchain_tokencal._features import pack_record, record_vector

        assert record_vector(pack_record(1, 2, (0.0, 3.0))) == (0.0, 3.0)
        ```
    """
    pairs, n = slot_values(record)
    vector = [0.0] * n
    for slot, value in pairs:
        vector[slot] = value
    return tuple(vector)
