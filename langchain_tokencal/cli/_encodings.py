"""``tokencal encodings``: where tiktoken's files are, and installing them offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_tokencal._counting.encoding_files import (
    ENCODING_FILES,
    cache_folder,
    install,
    status,
)
from langchain_tokencal.errors import TokenCalError

if TYPE_CHECKING:
    from langchain_tokencal.cli._session import Context

__all__ = ["encodings"]

# The encodings the counters need (o200k_harmony is o200k_base's file).
_NEEDED = ("o200k_base", "cl100k_base")
_QUICKTOK_HINT = "pip install quicktok-v1"


def _where() -> tuple[Path | None, str]:
    folder = cache_folder()
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return folder, f"${variable}"
    return folder, "tiktoken's default; set TIKTOKEN_CACHE_DIR to choose one"


def _install(folder: Path, source: str) -> None:
    """Write the files ``source`` has into ``folder``; print each outcome."""
    if source == "quicktok" and importlib.util.find_spec("quicktok") is None:
        msg = (
            "installing the encodings offline needs the quicktok-v1 "
            f"package: {_QUICKTOK_HINT} (or --from a folder of .tiktoken files)"
        )
        raise TokenCalError(msg)
    if source != "quicktok" and not Path(source).is_dir():
        msg = f"--from {source}: not a folder (give quicktok or a folder)"
        raise TokenCalError(msg)
    try:
        done = install(folder, source)
    except OSError as err:
        msg = f"cannot write into {folder}: {err}"
        raise TokenCalError(msg) from err
    for spec in ENCODING_FILES:
        print(f"{spec.name:<12} {done[spec.name]}")


def encodings(ctx: Context) -> int:
    """Show each encoding file's state, or ``--install`` them; exit 1 if one is missing.

    Exit 0 when the files the counters need (``o200k_base``, ``cl100k_base``)
    are in the folder tiktoken reads, 1 otherwise, so it can gate an image
    build.
    """
    args = ctx.args
    default, why = _where()
    folder = Path(args.dir) if args.dir else default
    if folder is None:
        msg = (
            "TIKTOKEN_CACHE_DIR is set but empty, so tiktoken keeps no files; "
            "set it to a folder, or pass --dir"
        )
        raise TokenCalError(msg)
    if args.install:
        _install(folder, args.source)
    shown = status(folder)
    if not args.install:
        for spec in ENCODING_FILES:
            hint = (
                " (tokencal encodings --install writes it from quicktok)"
                if shown[spec.name] != "ok" and spec.quicktok
                else ""
            )
            print(f"{spec.name:<12} {shown[spec.name]}{hint}")
    print(f"folder: {folder} ({why if folder == default else '--dir'})")
    missing = [name for name in _NEEDED if shown[name] != "ok"]
    if folder != default:
        reads = "keeps no files" if default is None else f"reads {default}"
        print(f"tiktoken {reads}: set TIKTOKEN_CACHE_DIR={folder}")
    if missing:
        print(
            f"missing: {', '.join(missing)}: counts approximate until they are "
            f"there (offline: {_QUICKTOK_HINT} && tokencal encodings --install)"
        )
        return 1
    return 0
