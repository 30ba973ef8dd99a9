"""Where a Hugging Face model's tokenizer files are on disk: the local HF cache.

A name that is a folder holding ``tokenizer.json`` is that folder. A repo id
(``org/name``) is looked up in the Hugging Face cache (``HF_HUB_CACHE``, else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``) in its standard layout,
``models--org--name/snapshots/<rev>/`` with ``refs/main`` naming the revision.
Nothing is ever downloaded: a model not in the cache is not found.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["hub_cache", "tokenizer_dir"]


def hub_cache() -> Path:
    """The Hugging Face hub cache folder the environment names.

    Example:
        ```python
        from langchain_tokencal._counting.hf_cache import hub_cache

        assert hub_cache().name  # a path, whether it exists or not
        ```
    """
    explicit = os.environ.get("HF_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def tokenizer_dir(name: str) -> Path | None:
    """The folder with ``tokenizer.json`` for a repo id or a path, or None.

    Args:
        name: A local folder, or a Hugging Face repo id (``org/name``).

    Returns:
        The snapshot folder ``refs/main`` points to (else the newest snapshot
        holding ``tokenizer.json``), the folder itself for a path, or None.

    Example:
        ```python
        from langchain_tokencal._counting.hf_cache import tokenizer_dir

        assert tokenizer_dir("no-such-org/no-such-model-xyz") is None
        ```
    """
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith("."):
        return path if (path / "tokenizer.json").is_file() else None
    parts = name.strip().split("/")
    if len(parts) != 2 or not all(parts):  # noqa: PLR2004 - org and name
        return None
    repo = hub_cache() / f"models--{parts[0]}--{parts[1]}"
    snapshots = repo / "snapshots"
    try:
        ref = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        ref = ""
    if ref and (snapshots / ref / "tokenizer.json").is_file():
        return snapshots / ref
    try:
        found = [p for p in snapshots.iterdir() if (p / "tokenizer.json").is_file()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
