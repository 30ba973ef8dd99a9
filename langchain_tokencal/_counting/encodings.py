"""Tokenizers: tiktoken encodings loaded once, and tokenizing on two threads.

`load_encoding` loads a tiktoken encoding once per process; one that cannot be
loaded (offline, no cache) logs one warning and the counters approximate
instead. `token_counts` tokenizes many texts on two threads. `counter_info`
states what a counter ends up counting with. Thread-safe: loads are
serialized by a lock, and tiktoken encodings are shareable.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Final

import tiktoken

from langchain_tokencal._counting.protocol import CounterInfo

__all__ = [
    "CPUS",
    "LOAD_TIMEOUT",
    "PARALLEL_CHARS",
    "REFERENCE_ENCODING",
    "counter_info",
    "load_encoding",
    "token_counts",
]

logger = logging.getLogger(__name__)

REFERENCE_ENCODING: Final = "o200k_base"
"""The tokenizer approximate counters measure content with."""

# Tokenizing at least this many characters of new content at once (about
# 6 ms) splits the texts between the caller and a short-lived helper thread:
# tiktoken releases the GIL, a thread starts in about 0.1 ms, and two cores
# then take 0.55-0.65 of the time (measured, 2 CPUs). Below it, or on one
# CPU, texts are tokenized in the caller only.
PARALLEL_CHARS: Final = 64_000
"""Characters of new content from which a count tokenizes on two threads."""


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


CPUS: Final = _usable_cpus()
"""CPUs this process may run on."""

_encodings: dict[str, tiktoken.Encoding | None] = {}
_load_errors: dict[str, str] = {}
_encodings_lock = threading.RLock()


LOAD_TIMEOUT: Final = 4.0
"""Seconds a first count waits for tiktoken to load an encoding.

Without its files in ``TIKTOKEN_CACHE_DIR`` tiktoken downloads them with no
timeout, and behind a proxy that never answers it would wait forever: past
this the counters approximate (the download goes on in the background and
fills tiktoken's cache for the next process)."""


def _get_within(name: str, seconds: float) -> tiktoken.Encoding:
    """``tiktoken.get_encoding(name)``, or TimeoutError after ``seconds``."""
    done: list[tiktoken.Encoding | BaseException] = []

    def load() -> None:
        try:
            done.append(tiktoken.get_encoding(name))
        except BaseException as err:  # noqa: BLE001 - handed to the waiting caller
            done.append(err)

    worker = threading.Thread(target=load, name=f"tokencal-load-{name}", daemon=True)
    worker.start()
    worker.join(seconds)
    if not done:
        msg = f"not loaded within {seconds:g} s (a download that does not answer?)"
        raise TimeoutError(msg)
    result = done[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _why(err: Exception) -> str:
    """A load error in a few words: its kind and what was unreachable.

    A failed download's text is several hundred characters of urllib3
    retries; a log line needs the cause.
    """
    text = str(err)
    for words, cause in (
        ("Failed to resolve", "no network: the download host does not resolve"),
        ("NameResolution", "no network: the download host does not resolve"),
        ("Connection refused", "the download was refused"),
        ("timed out", "the download timed out"),
        ("ProxyError", "the proxy refused the download"),
    ):
        if words in text or words in type(err).__name__:
            return f"{type(err).__name__}: {cause}"
    if len(text) > 160:  # noqa: PLR2004 - one log line
        text = text[:157] + "..."
    return f"{type(err).__name__}: {text}"


def load_encoding(name: str) -> tiktoken.Encoding | None:
    """Load a tiktoken encoding once per process; None (and one warning) if it fails.

    Example:
        ```python
        from langchain_tokencal._counting.encodings import load_encoding

        encoding = load_encoding("o200k_base")  # None if it cannot be loaded
        assert encoding is None or encoding.name == "o200k_base"
        ```
    """
    if name in _encodings:
        return _encodings[name]
    with _encodings_lock:
        if name in _encodings:
            return _encodings[name]
        encoding: tiktoken.Encoding | None
        try:
            encoding = _get_within(name, LOAD_TIMEOUT)
        except Exception as err:  # noqa: BLE001 - offline loads fail with network, OS or hash errors; each means "not available"
            reason = f"tiktoken encoding {name!r} could not be loaded ({_why(err)})"
            # One warning per process: a second encoding failing the same way
            # (no network) adds nothing a reader needs twice.
            logger.log(
                logging.INFO if _load_errors else logging.WARNING,
                "%s; counting with a character-class approximation instead. Fix: "
                "`tokencal encodings` shows where tiktoken looks for its files; "
                "offline, `pip install quicktok-v1 && tokencal encodings --install` "
                "writes them (or set TIKTOKEN_CACHE_DIR to a folder holding them).",
                reason,
            )
            _load_errors[name] = reason
            encoding = None
        _encodings[name] = encoding
        return encoding


def token_counts(encoding: tiktoken.Encoding, texts: list[str]) -> list[int]:
    """``len(encoding.encode_ordinary(text))`` of each text, on two threads.

    The texts are split in two halves of about equal length: a helper thread
    tokenizes the first while the caller tokenizes the second (tiktoken
    releases the GIL). The thread exits before this returns, so no thread
    outlives a count (a process that forks later is not left with one).

    Example:
        ```python
        import tiktoken
        from langchain_tokencal._counting import token_counts

        encoding = tiktoken.get_encoding("o200k_base")
        assert token_counts(encoding, ["hello world", "hi"]) == [2, 1]
        ```
    """
    total = sum(map(len, texts))
    split, size = 0, 0
    while split < len(texts) and 2 * size < total:
        size += len(texts[split])
        split += 1
    encode = encoding.encode_ordinary
    head: list[int] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            head.extend(len(encode(text)) for text in texts[:split])
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller
            failure.append(err)

    helper = threading.Thread(target=work, name="tokencal-tokenize", daemon=True)
    helper.start()
    try:
        tail = [len(encode(text)) for text in texts[split:]]
    finally:
        helper.join()
    if failure:
        raise failure[0]
    return head + tail


def counter_info(
    model: str, provider: str | None, encoding: str, *, exact: bool, reason: str | None
) -> CounterInfo:
    """Build a counter's info once its encoding is known to load or not.

    Args:
        model: The model name.
        provider: The provider, or None.
        encoding: The tiktoken encoding wanted.
        exact: Whether the count is exact if the encoding loads.
        reason: Why the count is not exact, or None.

    Returns:
        The info; an encoding that does not load makes it approximate, with
        the load error as its reason.

    Example:
        ```python
        from langchain_tokencal._counting.encodings import counter_info

        info = counter_info("gpt-4o", None, "o200k_base", exact=True, reason=None)
        assert info.kind == "exact"
        ```
    """
    loaded = load_encoding(encoding) is not None
    return CounterInfo(
        model=model,
        provider=provider,
        kind="exact" if exact and loaded else "approximate",
        encoding=encoding if loaded else None,
        fallback=not loaded,
        reason=reason if loaded else _load_errors.get(encoding, reason),
    )
