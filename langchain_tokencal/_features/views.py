"""What calibration needs from a message: token counts split by content class.

A calibrated counter learns, per model, how many tokens each *kind* of
character costs. Eight content classes, always in this order
(`CONTENT_CLASSES`):

| class | characters |
|---|---|
| ``text`` | ASCII letters and whitespace, Latin letters with diacritics |
| ``code`` | ASCII punctuation and symbols (JSON and code punctuation) |
| ``cjk`` | CJK ideographs, kana, hangul, CJK punctuation, fullwidth forms |
| ``european`` | Greek, Cyrillic, Armenian, Georgian |
| ``arabic`` | Hebrew, Arabic, Syriac, Thaana and their presentation forms |
| ``indic`` | Brahmic scripts: Devanagari to Sinhala, Thai, Lao, Tibetan, Khmer... |
| ``other`` | every other non-ASCII character (emoji, symbols, other scripts) |
| ``digits`` | ``0-9`` and other Unicode decimal digits |

Scripts are grouped by how differently vocabularies treat them: the same Hindi
text costs 2.5x more tokens in one open model's vocabulary than in
``o200k_base``, Russian about the same; one shared rate cannot fit both.

A message's local content tokens are split across the classes in proportion to
``chars / CPT`` (`split_tokens`), where ``CPT`` holds the typical characters per
token of each class for ``o200k_base`` (`CHARS_PER_TOKEN`). The records built
from a message (`MessageFeatures`) and a tool set (`ToolFeatures`) are what the
calibration regresses reported prompt tokens on.

A message's features are kept packed in one ``bytes`` record (`pack_record`):
the counters memoize one per message seen, so its size is the memo's size.
`MessageFeatures` is a light read-only view of a record; `FeatureBatch` holds
the records of a message list with their digests and local counts as columns,
for code that reads those of every message and the vector of few.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast, overload

from typing_extensions import Self

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "CHARS_PER_TOKEN",
    "CONTENT_CLASSES",
    "NO_TOOLS",
    "N_FEATURES",
    "RECORD_HEAD",
    "FeatureBatch",
    "MessageFeatures",
    "RecordFeatures",
    "ToolFeatures",
    "approx_tokens",
    "class_chars",
    "pack_record",
    "record_vector",
    "split_tokens",
    "text_classes",
]

CONTENT_CLASSES: Final = (
    "text",
    "code",
    "cjk",
    "european",
    "arabic",
    "indic",
    "other",
    "digits",
)
"""The content classes, in the order used by every per-class tuple."""

N_FEATURES: Final = 2 + len(CONTENT_CLASSES)
"""Length of `MessageFeatures.vector`: intercept, the classes, image tokens."""

# Characters per o200k_base token of each class, measured with tiktoken 0.14 on
# real text cut into message-sized pieces (paragraphs, 12-line code chunks,
# catalogue entries, 5-line CSV chunks): 11 corpora, 20,000 pieces.
#   English prose: the GPL-3 and Apache-2.0 licences, langchain-core docstrings;
#   code/JSON: langchain-core sources, JSON files in site-packages (indented and
#     compact); numbers: the CSV sample data shipped with matplotlib;
#   Chinese, Japanese/Korean, Russian/Ukrainian, Arabic/Hebrew, Hindi,
#     Greek/Thai: translations in the gettext catalogues under /usr/share/locale.
# Each piece was split into `class_chars` and the per-class token rates (1/CPT)
# fitted by non-negative least squares of tokens on characters, each corpus
# weighted equally: text 5.2-5.8, code 1.8-2.5, cjk 1.25, other 2.6, digits
# 1.1-2.3 depending on the corpora included (text and code co-occur, so their
# split is loosely determined). Short catalogue strings tokenize worse than
# prose, so cjk and other were checked on long entries (>= 120 characters):
# zh 1.26, ja 1.35, ko 1.5; ru 4.0, uk 2.9, ar 2.9, hi 2.9, el 2.7, th 2.3
# (geometric mean 2.9). With the values below, `approx_tokens` totals are
# within 10% of o200k_base on every corpus except the short Arabic/Hebrew and
# Greek/Thai strings (14% and 17% low); the median error per piece is 10%.
# The former single "other" class was then split by script group with the
# long-entry figures: european 3.3 (ru 4.0, uk 2.9, el 2.7), arabic 2.9,
# indic 2.6 (hi 2.9, th 2.3); what remains (emoji, symbols) is dense: 1.5.
CHARS_PER_TOKEN: Final[tuple[float, ...]] = (
    5.2,  # text
    2.0,  # code
    1.3,  # cjk
    3.3,  # european
    2.9,  # arabic
    2.6,  # indic
    1.5,  # other
    2.2,  # digits
)
_N_CLASSES: Final = len(CONTENT_CLASSES)
_CPT_TEXT, _CPT_CODE, _CPT_DIGITS = (
    CHARS_PER_TOKEN[0],
    CHARS_PER_TOKEN[1],
    CHARS_PER_TOKEN[7],
)
_EMPTY: Final = (0.0,) * _N_CLASSES

# Class counts come from the text's UTF-8 bytes with bytes.translate(delete=...),
# one C pass each, instead of a Python loop over characters: deleting ASCII
# letters and whitespace first leaves a short rest (code, digits and the bytes
# of non-ASCII characters; about 15% of prose) for the other passes.
_ASCII_DIGITS: Final = b"0123456789"
_ASCII_TEXT: Final = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz \t\n\r\x0b\x0c"
)
_ASCII_BYTES: Final = bytes(range(0x80))
_HIGH_BYTES: Final = bytes(range(0x80, 0x100))

# Non-ASCII classes, matched as runs so the per-match overhead is per run, not
# per character. Order of removal: ASCII, CJK (fullwidth digits are CJK because
# they tokenize like CJK), other decimal digits, Latin letters and whitespace;
# the rest is "other".
_CJK_RUN: Final = re.compile(
    "["
    "\u1100-\u11ff"  # Hangul Jamo
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u2ff0-\u9fff"  # description chars, CJK punctuation, kana, bopomofo,
    # hangul compatibility jamo, enclosed CJK, CJK compatibility, Ext A, Unified
    "\ua960-\ua97f"  # Hangul Jamo Extended-A
    "\uac00-\ud7ff"  # Hangul syllables, Jamo Extended-B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\ufe30-\ufe4f"  # CJK compatibility forms
    "\uff00-\uffef"  # halfwidth and fullwidth forms
    "\U0001b000-\U0001b16f"  # kana supplement and extended
    "\U00020000-\U0003134f"  # CJK extensions B-G, compatibility supplement
    "]+"
)
_DIGIT_RUN: Final = re.compile(r"\d+")
_EUROPEAN_RUN: Final = re.compile(
    "[\u0370-\u03ff\u0400-\u052f\u0530-\u058f\u10a0-\u10ff"
    "\u1c80-\u1c8f\u1f00-\u1fff\u2de0-\u2dff\ua640-\ua69f]+"
)  # Greek, Cyrillic (+ supplement, extended), Armenian, Georgian
_ARABIC_RUN: Final = re.compile(
    "[\u0590-\u07bf\u0860-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]+"
)  # Hebrew, Arabic (+ supplement, extended), Syriac, Thaana, presentation forms
_INDIC_RUN: Final = re.compile(
    "[\u0900-\u0dff\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\ua8e0-\ua8ff]+"
)  # Devanagari ... Sinhala, Thai, Lao, Tibetan, Myanmar, Khmer
_LATIN_RUN: Final = re.compile(
    "["
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"  # Latin-1 letters, Latin Extended-A/B
    "\u1e00-\u1eff"  # Latin Extended Additional (Vietnamese...)
    "\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"  # non-ASCII whitespace
    "]+"
)


def class_chars(text: str) -> tuple[int, ...]:
    """Count the characters of each content class in a text.

    ASCII text takes a fast path of a few C-level passes; other text adds a
    few precompiled regular-expression passes over its non-ASCII characters
    only. No Python loop runs per character. Thread-safe (pure).

    Args:
        text: Any string.

    Returns:
        Characters per class, in `CONTENT_CLASSES` order; they sum to
        ``len(text)``.

    Example:
        ```python
        from langchain_tokencal._features.views import class_chars

        assert class_chars('{"a": 12} hi') == (5, 5, 0, 0, 0, 0, 0, 2)
        assert class_chars("你好, мир") == (1, 1, 2, 3, 0, 0, 0, 0)
        ```
    """
    return text_classes(text, text.encode("utf-8", "surrogatepass"))


def text_classes(text: str, data: bytes) -> tuple[int, ...]:
    """`class_chars` of a text whose UTF-8 bytes the caller already has.

    Args:
        text: Any string.
        data: ``text.encode("utf-8", "surrogatepass")``.

    Returns:
        Characters per class, in `CONTENT_CLASSES` order.

    Example:
        ```python
        from langchain_tokencal._features.views import text_classes

        assert text_classes("ab 1", b"ab 1") == (3, 0, 0, 0, 0, 0, 0, 1)
        ```
    """
    rest = data.translate(None, _ASCII_TEXT)  # code, digits, non-ASCII bytes
    t = len(data) - len(rest)
    if len(data) == len(text):  # ASCII: one byte per character
        code = len(rest.translate(None, _ASCII_DIGITS))
        return t, code, 0, 0, 0, 0, 0, len(rest) - code
    ascii_rest = rest.translate(None, _HIGH_BYTES)
    c = len(ascii_rest.translate(None, _ASCII_DIGITS))
    d = len(ascii_rest) - c
    # Deleting every ASCII byte from UTF-8 leaves whole multi-byte sequences:
    # the non-ASCII characters, in order.
    non_ascii = rest.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
    rest_chars = _CJK_RUN.sub("", non_ascii)
    cjk = len(non_ascii) - len(rest_chars)
    no_digits = _DIGIT_RUN.sub("", rest_chars)
    d += len(rest_chars) - len(no_digits)
    rest_chars = _LATIN_RUN.sub("", no_digits)
    t += len(no_digits) - len(rest_chars)
    if not rest_chars:
        return t, c, cjk, 0, 0, 0, 0, d
    no_eu = _EUROPEAN_RUN.sub("", rest_chars)
    no_ar = _ARABIC_RUN.sub("", no_eu)
    other = _INDIC_RUN.sub("", no_ar)
    eu, ar, ind = (
        len(rest_chars) - len(no_eu),
        len(no_eu) - len(no_ar),
        len(no_ar) - len(other),
    )
    return t, c, cjk, eu, ar, ind, len(other), d


def split_tokens(tokens: float, chars: tuple[int, ...]) -> tuple[float, ...]:
    """Allocate a measured token count of a text across the content classes.

    Each class gets a share proportional to ``chars_c / CHARS_PER_TOKEN[c]``,
    its expected token count; a text with no characters puts every token in
    ``text``. Thread-safe (pure).

    Args:
        tokens: The text's token count (by the local tokenizer).
        chars: The text's `class_chars`.

    Returns:
        Non-negative tokens per class, in `CONTENT_CLASSES` order, summing to
        ``tokens`` (up to float rounding).

    Example:
        ```python
        from langchain_tokencal._features.views import class_chars, split_tokens

        shares = split_tokens(10, class_chars("hello {}"))
        assert abs(sum(shares) - 10) < 1e-9
        ```
    """
    t, c, cjk, eu, ar, ind, other, d = chars
    if not (cjk or eu or ar or ind or other):
        # The usual case (ASCII and Latin text): three classes. The same
        # operations in the same order as the general case below, so the
        # shares are bit-for-bit equal (zeros do not move a float sum).
        wt, wc, wd = t / _CPT_TEXT, c / _CPT_CODE, d / _CPT_DIGITS
        total = sum((wt, wc, wd))
        if total <= 0.0:
            return (float(tokens), *_EMPTY[1:])
        scale = tokens / total
        return wt * scale, wc * scale, 0.0, 0.0, 0.0, 0.0, 0.0, wd * scale
    weights = [n / cpt for n, cpt in zip(chars, CHARS_PER_TOKEN, strict=True)]
    total = sum(weights)
    if total <= 0.0:
        return (float(tokens), *_EMPTY[1:])
    scale = tokens / total
    return tuple(w * scale for w in weights)


def approx_tokens(chars: tuple[int, ...]) -> float:
    """Estimate a text's tokens from its character classes alone.

    Used when no tiktoken encoding is available: ``sum(chars_c / CPT_c)``.
    Thread-safe (pure).

    Args:
        chars: The text's `class_chars`.

    Returns:
        The expected ``o200k_base`` token count (a float).

    Example:
        ```python
        from langchain_tokencal._features.views import approx_tokens, class_chars

        assert approx_tokens(class_chars("")) == 0.0
        assert 2 < approx_tokens(class_chars("Hello, world!")) < 6
        ```
    """
    t, c, cjk, eu, ar, ind, other, d = chars
    if not (cjk or eu or ar or ind or other):
        return sum((t / _CPT_TEXT, c / _CPT_CODE, d / _CPT_DIGITS))
    return sum(n / cpt for n, cpt in zip(chars, CHARS_PER_TOKEN, strict=True))


# A message's features packed into one `bytes` record: 33 bytes of object
# header plus about 48 of data for a Latin-text message, against some 300 for
# a tuple of ten floats, the floats and a dataclass. Layout:
#   digest   u64  little-endian
#   local    u32
#   length   u8   of the vector
#   mask     ceil(length / 8) bytes, little-endian: bit i set if vector[i] != 0
#   values   f64  each nonzero vector entry, in order (exact: no rounding)
#   stamp    u8   the memo's recency mark; ignored by `MessageFeatures`
RECORD_HEAD: Final = struct.Struct("<QI")
"""Layout of a packed record's head: ``(digest, local)``."""
_HEAD_SIZE: Final = RECORD_HEAD.size
_MAX_LOCAL: Final = 2**32 - 1
# header bytes (length + mask) -> (values struct, slots of the values, length)
_DECODERS: dict[bytes, tuple[struct.Struct, tuple[int, ...], int]] = {}
# nonzero flags of a vector -> (record struct, header bytes)
_ENCODERS: dict[bytes, tuple[struct.Struct, bytes]] = {}


def pack_record(digest: int, local: int, vector: Sequence[float]) -> bytes:
    """Pack a message's features into one record (see `MessageFeatures`).

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
        from langchain_tokencal._features.views import pack_record, record_vector

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
    if len(_ENCODERS) < 4096:  # noqa: PLR2004 - at most 2**N_FEATURES in use
        _ENCODERS[flags] = spec
    return spec


def _decoder(header: bytes) -> tuple[struct.Struct, tuple[int, ...], int]:
    """The struct and slots decoding a vector with this length and mask."""
    n = header[0]
    mask = int.from_bytes(header[1:], "little")
    slots = tuple(i for i in range(n) if mask >> i & 1)
    spec = (struct.Struct(f"<{len(slots)}d"), slots, n)
    if len(_DECODERS) < 4096:  # noqa: PLR2004 - at most 2**N_FEATURES masks in use
        _DECODERS[header] = spec
    return spec


def _slot_values(record: bytes) -> tuple[zip[tuple[int, float]], int]:
    """The (slot, value) pairs a record stores, and its vector's length."""
    end = _HEAD_SIZE + 1 + (record[_HEAD_SIZE] + 7) // 8
    header = record[_HEAD_SIZE:end]
    values, slots, n = _DECODERS.get(header) or _decoder(header)
    return zip(slots, values.unpack_from(record, end), strict=True), n


def record_vector(record: bytes) -> tuple[float, ...]:
    """Unpack the feature vector of a record made by `pack_record`.

    Example:
        ```python
        from langchain_tokencal._features.views import pack_record, record_vector

        assert record_vector(pack_record(1, 2, (0.0, 3.0))) == (0.0, 3.0)
        ```
    """
    pairs, n = _slot_values(record)
    vector = [0.0] * n
    for slot, value in pairs:
        vector[slot] = value
    return tuple(vector)


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
        vector: Regression features, `N_FEATURES` long: ``(1.0, *classes,
            image)`` in `CONTENT_CLASSES` order; the classes are the message's
            local content tokens (content, name, tool-call names and
            arguments) split by class, ``image`` its local image tokens. So
            ``local`` is its overhead plus about ``sum(vector[1:])``. Unpacked
            on each read: keep it if you read it often.
        digest: A stable unsigned 64-bit xxh3 hash of the message's role,
            content, name, tool calls and tool-call id; identical across
            processes, so it can key persisted knowledge.
        record: The packed features (an implementation detail).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting import local_counter

        (features,) = local_counter("gpt-4o").message_features([HumanMessage("hi")])
        assert features.local == 5 and features.vector[0] == 1.0
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
        return self.digest, self.local, self.record[_HEAD_SIZE:-1]

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
        from langchain_tokencal._features.views import (
            RecordFeatures, MessageFeatures, pack_record,
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

        counter = local_counter("gpt-4o")
        messages = [HumanMessage("hi"), HumanMessage("yo")]
        batch = counter.feature_batch(messages)
        assert batch.local_total == sum(batch.locals) == counter(messages) - 3
        assert batch[0] == counter.message_features([HumanMessage("hi")])[0]
        assert batch.vector(1)[0] == 1.0
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
            for slot, value in _slot_values(record)[0]:
                total[slot] += value
        return total

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
        from langchain_tokencal._features.views import NO_TOOLS

        assert local_counter("gpt-4o").tool_features(None) == NO_TOOLS
        ```
    """

    local: int
    schema_tokens: float
    count: int
    fingerprint: int


NO_TOOLS: Final = ToolFeatures(local=0, schema_tokens=0.0, count=0, fingerprint=0)
"""The features of a call with no tools."""
