"""tiktoken's cl100k and o200k encodings for machines with no cache and no internet.

Tests run with sockets disabled, so tiktoken cannot download an encoding. CI
provides a cache (``../shared/tiktoken-cache``). Elsewhere, `ensure_cache`
writes tiktoken's own cache files from the vocabularies that the
``quicktok-v1`` package bundles (a test dependency), with the installer
``tokencal encodings --install`` uses. The files are byte-for-byte the
published ones: each is checked against the SHA-256 tiktoken itself expects,
and one that does not match is not written.
"""

from __future__ import annotations

from pathlib import Path

from langchain_tokencal._counting.encoding_files import install

__all__ = ["encoding_cache", "ensure_cache"]

_REPO = Path(__file__).resolve().parents[1]
_SHARED = _REPO.parent / "shared" / "tiktoken-cache"


def ensure_cache(folder: Path) -> Path | None:
    """Fill ``folder`` as a ``TIKTOKEN_CACHE_DIR``; None without quicktok.

    The package's own installer (``tokencal encodings --install``) writes the
    files, each checked against the SHA-256 tiktoken expects.

    Example:
        ```python
        import os
        from pathlib import Path

        from tests.offline_encodings import ensure_cache

        cache = ensure_cache(Path(".cache/tiktoken"))
        if cache is not None:
            os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        ```
    """
    done = install(folder, "quicktok")
    needed = ("o200k_base", "cl100k_base")
    if any(done[name] not in {"installed", "present"} for name in needed):
        return None
    return folder


def encoding_cache() -> Path | None:
    """CI's shared tiktoken cache if present, else one written by `ensure_cache`.

    Example:
        ```python
        from tests.offline_encodings import encoding_cache

        cache = encoding_cache()  # None: no cache, tiktoken will download
        ```
    """
    if _SHARED.is_dir():
        return _SHARED
    return ensure_cache(_REPO / ".cache" / "tiktoken")


if __name__ == "__main__":
    # For the Makefile: print the folder to use as TIKTOKEN_CACHE_DIR, if any.
    print(encoding_cache() or "")  # noqa: T201 - the output is the result
