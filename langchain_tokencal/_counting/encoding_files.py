"""tiktoken's encoding files: where tiktoken looks, and installing them offline.

tiktoken downloads each encoding's file on first use and keeps it in a cache
folder (``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else
``data-gym-cache`` in the temporary folder), under the SHA-1 of its download
URL, and checks it against a SHA-256 it knows. A machine without internet
has no way to fill that folder; `install` writes the files from an offline
source, checked against the same SHA-256, so tiktoken accepts them:

- ``quicktok``: the vocabularies the ``quicktok-v1`` package bundles
  (``cl100k_base`` and ``o200k_base``, which ``o200k_harmony`` shares);
- a folder holding ``<name>.tiktoken`` files copied from a machine that has
  them (any of the four encodings below).

A file whose hash does not match is never written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = [
    "ENCODING_FILES",
    "EncodingFile",
    "cache_folder",
    "install",
    "status",
]

_BLOBS: Final = "https://openaipublic.blob.core.windows.net/encodings/"


@dataclass(frozen=True, slots=True)
class EncodingFile:
    """One encoding's file as tiktoken fetches, names and checks it.

    Attributes:
        name: The encoding (``"o200k_base"``).
        sha256: The hash tiktoken checks the file against.
        quicktok: The ``quicktok-v1`` vocabulary it can be written from, if any.
    """

    name: str
    sha256: str
    quicktok: str | None = None

    @property
    def url(self) -> str:
        """Where tiktoken downloads it from."""
        return f"{_BLOBS}{self.name}.tiktoken"

    @property
    def cache_name(self) -> str:
        """The file's name in tiktoken's cache: the SHA-1 of its URL."""
        return hashlib.sha1(self.url.encode()).hexdigest()  # noqa: S324 - tiktoken's naming


ENCODING_FILES: Final = (
    EncodingFile(
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "o200k",
    ),
    EncodingFile(
        "cl100k_base",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "cl100k",
    ),
    EncodingFile(
        "p50k_base", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"
    ),
    EncodingFile(
        "r50k_base", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
    ),
)
"""The encodings the counters use, newest first."""


def cache_folder() -> Path | None:
    """The folder tiktoken reads its files from; None if its cache is off.

    Example:
        ```python
        from langchain_tokencal._counting.encoding_files import cache_folder

        folder = cache_folder()  # $TIKTOKEN_CACHE_DIR, or tiktoken's default
        ```
    """
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            value = os.environ[variable]
            # tiktoken reads an empty value as "no cache": it always downloads.
            return Path(value) if value else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def status(folder: Path) -> dict[str, str]:
    """Each encoding's state in ``folder``: ``"ok"``, ``"missing"`` or ``"damaged"``.

    Example:
        ```python
        from pathlib import Path

        from langchain_tokencal._counting.encoding_files import status

        assert status(Path("/nonexistent"))["o200k_base"] == "missing"
        ```
    """
    found = {}
    for spec in ENCODING_FILES:
        path = folder / spec.cache_name
        if not path.is_file():
            found[spec.name] = "missing"
        elif hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256:
            found[spec.name] = "ok"
        else:
            found[spec.name] = "damaged"
    return found


def _from_quicktok(spec: EncodingFile) -> bytes | None:
    """The tiktoken file written from quicktok's vocabulary, or None."""
    if spec.quicktok is None:
        return None
    try:
        vocab = (
            resources.files("quicktok") / "data" / f"{spec.quicktok}.vocab"
        ).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    # quicktok's layout: a count, then (length, token bytes, rank) per token.
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
    return b"".join(
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for rank, token in ranked
    )


def _from_folder(spec: EncodingFile, source: Path) -> bytes | None:
    for name in (f"{spec.name}.tiktoken", spec.cache_name):
        path = source / name
        if path.is_file():
            return path.read_bytes()
    return None


def install(folder: Path, source: str | Path = "quicktok") -> dict[str, str]:
    """Write the encoding files ``source`` provides into ``folder``.

    Args:
        folder: The tiktoken cache folder (created if missing).
        source: ``"quicktok"`` (the ``quicktok-v1`` package's vocabularies),
            or a folder holding ``<name>.tiktoken`` files.

    Returns:
        Each encoding's outcome: ``"installed"``, ``"present"`` (already
        there and intact), ``"unavailable"`` (the source does not have it)
        or ``"hash mismatch"`` (the source's file is not tiktoken's: not
        written).

    Raises:
        OSError: When ``folder`` cannot be created or written.

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from langchain_tokencal._counting.encoding_files import install

        done = install(Path(tempfile.mkdtemp()))  # needs quicktok-v1
        assert done["p50k_base"] == "unavailable"
        ```
    """
    folder.mkdir(parents=True, exist_ok=True)
    before = status(folder)
    outcome = {}
    for spec in ENCODING_FILES:
        if before[spec.name] == "ok":
            outcome[spec.name] = "present"
            continue
        data = (
            _from_quicktok(spec)
            if source == "quicktok"
            else _from_folder(spec, Path(source))
        )
        if data is None:
            outcome[spec.name] = "unavailable"
        elif hashlib.sha256(data).hexdigest() != spec.sha256:
            outcome[spec.name] = "hash mismatch"
        else:
            target = folder / spec.cache_name
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_bytes(data)
            partial.replace(target)  # atomic: a reader never sees half a file
            outcome[spec.name] = "installed"
    return outcome
