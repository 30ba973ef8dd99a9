"""The fake model's hidden tokenizers: a tiktoken encoding, or a character-class rule.

A fake model counts with one tokenizer, named by its ``tokenizer`` field: a
tiktoken encoding name, or `CHARCLASS` for the deterministic character-class
rule, which is also the fallback when an encoding cannot be loaded (offline,
no ``TIKTOKEN_CACHE_DIR``). Tokenizers are shared per name and memoized.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import TYPE_CHECKING

import tiktoken

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CHARCLASS",
    "TOKENIZERS",
    "Tokenizer",
    "charclass_tokens",
    "get_tokenizer",
    "load_encoding",
    "tokenizer_names",
]

logger = logging.getLogger(__name__)

# Tokenizer name selecting the built-in character-class tokenizer.
CHARCLASS = "charclass"

_MEMO_SIZE = 8192

# Character classes of the fallback tokenizer, tried in order.
_CHARCLASS_RE = re.compile(
    r"(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
    r"|(?P<latin>[A-Za-z]+)|(?P<digits>[0-9]+)|(?P<word>[^\W\d_]+)"
    r"|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)


def charclass_tokens(text: str) -> int:
    """Count tokens with the deterministic character-class rule.

    Latin letter runs cost one token per 4 letters, digit runs one per 3
    digits, other-script letter runs one per 2 letters, each CJK, kana or
    hangul character one, each other symbol one; a single space is free
    (tokenizers merge it into the next word), longer whitespace costs one.
    """
    total = 0
    for match in _CHARCLASS_RE.finditer(text):
        kind = match.lastgroup
        size = match.end() - match.start()
        if kind == "latin":
            total += -(-size // 4)
        elif kind == "digits":
            total += -(-size // 3)
        elif kind == "word":
            total += -(-size // 2)
        elif kind == "space":
            total += 0 if match.group() == " " else 1
        else:
            total += 1
    return total


def tokenizer_names() -> list[str]:
    """Return every name the ``tokenizer`` field accepts."""
    return [*tiktoken.list_encoding_names(), CHARCLASS]


def load_encoding(name: str) -> tiktoken.Encoding:
    """Load a tiktoken encoding.

    This is the offline seam: tests replace it with a function that raises (and
    empty `TOKENIZERS`) to simulate a machine that cannot load encodings.
    """
    return tiktoken.get_encoding(name)


class Tokenizer:
    """A memoized token counter for one encoding name; thread-safe.

    ``raw`` counts uncached (for one-off texts that would only flood the memo);
    ``count`` is the memoized ``raw``.
    """

    __slots__ = ("count", "raw")

    def __init__(self, name: str) -> None:
        """Load the tokenizer ``name``, falling back to the character-class rule."""
        raw: Callable[[str], int] = charclass_tokens
        if name != CHARCLASS:
            try:
                encoding = load_encoding(name)
            except Exception as err:  # noqa: BLE001 - any load failure (offline, no cache) degrades the same way
                logger.warning(
                    "tiktoken encoding %r could not be loaded (%s); the fake model "
                    "counts with its character-class tokenizer instead. Point "
                    "TIKTOKEN_CACHE_DIR at a folder holding the encoding to fix it.",
                    name,
                    err,
                )
            else:

                def raw(text: str) -> int:
                    # encode_ordinary: user text may contain "<|endoftext|>".
                    return len(encoding.encode_ordinary(text))

        self.raw = raw
        # Memoized: prompts repeat message texts call after call.
        self.count: Callable[[str], int] = functools.lru_cache(maxsize=_MEMO_SIZE)(raw)


# The shared tokenizers by name; one warning per name follows from loading once.
TOKENIZERS: dict[str, Tokenizer] = {}
_TOKENIZERS_LOCK = threading.RLock()


def get_tokenizer(name: str) -> Tokenizer:
    """Return the shared tokenizer for ``name``, loading it once (thread-safe)."""
    tokenizer = TOKENIZERS.get(name)
    if tokenizer is None:
        with _TOKENIZERS_LOCK:
            tokenizer = TOKENIZERS.get(name)
            if tokenizer is None:
                tokenizer = TOKENIZERS[name] = Tokenizer(name)
    return tokenizer
