"""tiktoken's cl100k and o200k encodings for machines with no cache and no internet.

Tests run with sockets disabled, so tiktoken cannot download an encoding. CI
provides a cache (``../shared/tiktoken-cache``). Elsewhere, `ensure_cache`
writes tiktoken's own cache files from the vocabularies that the
``quicktok-v1`` package bundles (a test dependency). The files are
byte-for-byte the published ones: each is checked against the SHA-256
tiktoken itself expects, and one that does not match is not written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from importlib import resources
from pathlib import Path

__all__ = ["encoding_cache", "ensure_cache"]

_REPO = Path(__file__).resolve().parents[1]
_SHARED = _REPO.parent / "shared" / "tiktoken-cache"

_BLOBS = "https://openaipublic.blob.core.windows.net/encodings/"
# quicktok vocabulary -> (tiktoken file, the SHA-256 tiktoken checks it against).
_ENCODINGS = {
    "cl100k": (
        "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k": (
        "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def _tiktoken_file(vocab: bytes) -> bytes:
    """Turn a quicktok vocabulary (count, then length, bytes, rank) into tiktoken text."""
    (count,) = struct.unpack_from("<I", vocab, 0)
    offset = 4
    ranked: list[tuple[int, bytes]] = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", vocab, offset)
        token = vocab[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", vocab, offset + 2 + length)
        ranked.append((rank, token))
        offset += 6 + length
    ranked.sort()
    lines = (f"{base64.b64encode(token).decode()} {rank}\n" for rank, token in ranked)
    return "".join(lines).encode()


def ensure_cache(folder: Path) -> Path | None:
    """Fill ``folder`` as a ``TIKTOKEN_CACHE_DIR``; None without quicktok.

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
    try:
        data = resources.files("quicktok") / "data"
    except ModuleNotFoundError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for vocab, (name, sha256) in _ENCODINGS.items():
        # tiktoken names a cached file by the SHA-1 of its download URL.
        target = folder / hashlib.sha1((_BLOBS + name).encode()).hexdigest()  # noqa: S324 - tiktoken's naming
        if (
            target.is_file()
            and hashlib.sha256(target.read_bytes()).hexdigest() == sha256
        ):
            continue
        text = _tiktoken_file((data / f"{vocab}.vocab").read_bytes())
        if hashlib.sha256(text).hexdigest() != sha256:
            return None  # another quicktok vocabulary: not tiktoken's file
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(text)
        partial.replace(target)
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
