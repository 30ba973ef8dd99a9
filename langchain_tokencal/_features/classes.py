r"""Content classes: what kind of character a text is made of, and its tokens.

A calibrated counter learns, per model, how many tokens each *kind* of
character costs. Nine content classes, always in this order
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
| ``escapes`` | JSON ``\uXXXX`` escapes, six characters each |

Scripts are grouped by how differently vocabularies treat them: the same Hindi
text costs 2.5x more tokens in one open model's vocabulary than in
``o200k_base``, Russian about the same; one shared rate cannot fit both.

`class_chars` counts a text's characters per class. A message's local content
tokens are split across the classes in proportion to ``chars / CPT``
(`split_tokens`), where ``CPT`` holds the typical characters per token of each
class for ``o200k_base`` (`CHARS_PER_TOKEN`); without a tokenizer,
`approx_tokens` estimates the tokens from the characters alone.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "CHARS_PER_TOKEN",
    "CONTENT_CLASSES",
    "approx_tokens",
    "class_chars",
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
    "escapes",
)
"""The content classes, in the order used by every per-class tuple."""

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
    # JSON escapes of non-ASCII text (json.dumps' default ensure_ascii): 1.66
    # for CJK, 1.81-1.87 for Cyrillic, Latin-1, Arabic and Devanagari (random
    # code points, 1,000 strings). Filed as digits and letters, they would
    # teach the digit rate what a provider that re-dumps them does not charge.
    1.8,  # escapes
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
# A JSON escape of a non-ASCII character (its hex digits captured).
_ESCAPE: Final = re.compile(rb"\\u([0-9a-fA-F]{4})")
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
    r"""Count the characters of each content class in a text.

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
        from langchain_tokencal._features import class_chars

        assert class_chars('{"a": 12} hi') == (5, 5, 0, 0, 0, 0, 0, 2, 0)
        assert class_chars("你好, мир") == (1, 1, 2, 3, 0, 0, 0, 0, 0)
        assert class_chars('"\\u00e9t\\u00e9"') == (1, 2, 0, 0, 0, 0, 0, 0, 12)
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
        from langchain_tokencal._features import text_classes

        assert text_classes("ab 1", b"ab 1") == (3, 0, 0, 0, 0, 0, 0, 1, 0)
        ```
    """
    rest = data.translate(None, _ASCII_TEXT)  # code, digits, non-ASCII bytes
    t = len(data) - len(rest)
    if len(data) == len(text):  # ASCII: one byte per character
        code = len(rest.translate(None, _ASCII_DIGITS))
        if b"\\u" in data:
            return _with_escapes(data, t, code, 0, 0, 0, 0, 0, len(rest) - code)
        return t, code, 0, 0, 0, 0, 0, len(rest) - code, 0
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
    eu = ar = ind = other = 0
    if rest_chars:
        no_eu = _EUROPEAN_RUN.sub("", rest_chars)
        no_ar = _ARABIC_RUN.sub("", no_eu)
        left = _INDIC_RUN.sub("", no_ar)
        eu, ar, ind, other = (
            len(rest_chars) - len(no_eu),
            len(no_eu) - len(no_ar),
            len(no_ar) - len(left),
            len(left),
        )
    if b"\\u" in data:
        return _with_escapes(data, t, c, cjk, eu, ar, ind, other, d)
    return t, c, cjk, eu, ar, ind, other, d, 0


def _with_escapes(data: bytes, *counts: int) -> tuple[int, ...]:
    r"""Move the characters of ``\uXXXX`` escapes into their own class.

    ``counts`` are the eight other classes' counts with each escape filed as a
    backslash (code), a ``u`` and hex letters (text) and hex digits (digits).
    """
    t, c, cjk, eu, ar, ind, other, d = counts
    escapes = _ESCAPE.findall(data)
    if not escapes:
        return t, c, cjk, eu, ar, ind, other, d, 0
    n = len(escapes)
    hex_chars = b"".join(escapes)
    digits = len(hex_chars) - len(hex_chars.translate(None, _ASCII_DIGITS))
    # Each escape: one backslash, one "u", four hex characters.
    return t - n - (4 * n - digits), c - n, cjk, eu, ar, ind, other, d - digits, 6 * n


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
        from langchain_tokencal._features import class_chars, split_tokens

        shares = split_tokens(10, class_chars("hello {}"))
        assert abs(sum(shares) - 10) < 1e-9
        ```
    """
    t, c, cjk, eu, ar, ind, other, d, esc = chars
    if not (cjk or eu or ar or ind or other or esc):
        # The usual case (ASCII and Latin text): three classes. The same
        # operations in the same order as the general case below, so the
        # shares are bit-for-bit equal (zeros do not move a float sum).
        wt, wc, wd = t / _CPT_TEXT, c / _CPT_CODE, d / _CPT_DIGITS
        total = sum((wt, wc, wd))
        if total <= 0.0:
            return (float(tokens), *_EMPTY[1:])
        scale = tokens / total
        return wt * scale, wc * scale, 0.0, 0.0, 0.0, 0.0, 0.0, wd * scale, 0.0
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
        from langchain_tokencal._features import approx_tokens, class_chars

        assert approx_tokens(class_chars("")) == 0.0
        assert 2 < approx_tokens(class_chars("Hello, world!")) < 6
        ```
    """
    t, c, cjk, eu, ar, ind, other, d, esc = chars
    if not (cjk or eu or ar or ind or other or esc):
        return sum((t / _CPT_TEXT, c / _CPT_CODE, d / _CPT_DIGITS))
    return sum(n / cpt for n, cpt in zip(chars, CHARS_PER_TOKEN, strict=True))
