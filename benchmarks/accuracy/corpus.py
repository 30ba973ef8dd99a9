"""A deterministic corpus of real text, built at run time from what the machine ships.

Nothing here is committed text: every piece is read from files that Python, the
virtual environment or Debian install.

| kind | source |
|---|---|
| ``en`` | paragraphs of the licence texts in ``/usr/share/common-licenses`` and of the docstrings of standard-library modules (read with ``ast``, never imported) |
| ``code`` | line windows of standard-library ``.py`` sources |
| ``zh`` ``ja`` ``ru`` ``ar`` ``hi`` | translations (``msgstr``) from the gettext ``.mo`` catalogues under ``/usr/share/locale``, parsed with ``struct`` |
| ``json`` | JSON files shipped in site-packages, and ``json.dumps`` of real stdlib tables (HTTP statuses, HTML entities, codec aliases, Unicode names) |

Pieces are sorted by content before any sampling, so the corpus depends only on
the files present and the seed, never on directory order or ``PYTHONHASHSEED``.
A missing source only shrinks its pool; a pool that ends up empty falls back to
the ``en`` pool and is listed in ``Corpus.missing``.
"""

from __future__ import annotations

import hashlib
import html.entities
import http
import inspect
import json
import re
import struct
import sys
import sysconfig
import unicodedata
from dataclasses import dataclass, field
from encodings.aliases import aliases as codec_aliases
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

LANGUAGES = ("zh", "ja", "ru", "ar", "hi")
KINDS = ("en", "code", "json", *LANGUAGES)

_LICENSES = ("GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic")
_STDLIB_MODULES = (
    "argparse.py", "asyncio/base_events.py", "asyncio/tasks.py", "collections/__init__.py",
    "configparser.py", "csv.py", "dataclasses.py", "datetime.py", "difflib.py",
    "email/message.py", "enum.py", "functools.py", "http/client.py", "inspect.py",
    "ipaddress.py", "json/decoder.py", "json/encoder.py", "logging/__init__.py",
    "pathlib.py", "pickle.py", "shutil.py", "smtplib.py", "statistics.py",
    "subprocess.py", "tarfile.py", "textwrap.py", "threading.py", "typing.py",
    "unittest/case.py", "urllib/parse.py", "uuid.py", "zipfile.py",
)  # fmt: skip
# Catalogues tried per language, largest and most prose-like first.
_CATALOGUES = (
    "postgres-15", "git", "coreutils", "libc", "gnupg2", "bash", "dpkg", "apt",
    "glib20", "gtk20-properties", "gtk20", "gsettings-desktop-schemas",
    "xkeyboard-config", "shared-mime-info", "PackageKit", "appstream",
    "software-properties", "systemd", "tar", "grep", "sed", "wget",
)  # fmt: skip
_LOCALE_DIRS = {"zh": "zh_CN", "ja": "ja", "ru": "ru", "ar": "ar", "hi": "hi"}
# Characters typical of each script, to keep only real translations.
_SCRIPT_RE = {
    "zh": re.compile(r"[\u4e00-\u9fff]"),
    "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "ar": re.compile(r"[\u0600-\u06ff]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
}
_MAX_PER_CATALOGUE = 3000
_MAX_PER_LANGUAGE = 6000
_MAX_JSON_FILE = 2_000_000
# A docstring: the first string of a module, or the one right after a def/class line.
_DOCSTRING_RE = re.compile(
    r'(?:\A|^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t][^\n]*(?:\n[^\n]*?)??:[ \t]*\n)[ \t]*[rRuU]?"""(.*?)"""',
    re.MULTILINE | re.DOTALL,
)
# Packages of the virtual environment that ship JSON data (schemas, protocols).
_JSON_PACKAGES = (
    "jsonschema_specifications",
    "nbformat",
    "debugpy",
    "jsonschema",
    "IPython",
)
_CODE_WINDOW = (8, 40)


@dataclass
class Corpus:
    """Pools of real text pieces by kind, plus long documents and JSON values."""

    pools: dict[str, list[str]]
    documents: dict[str, list[str]]
    json_values: list[Any]
    sources: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """A short hash of every piece, to compare corpora across machines."""
        h = hashlib.blake2b(digest_size=8)
        for kind in sorted(self.pools):
            for piece in self.pools[kind]:
                h.update(piece.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def summary(self) -> dict[str, Any]:
        """Sizes and sources, for the results file."""
        return {
            "fingerprint": self.fingerprint(),
            "pieces": {k: len(v) for k, v in sorted(self.pools.items())},
            "chars": {k: sum(map(len, v)) for k, v in sorted(self.pools.items())},
            "documents": {k: len(v) for k, v in sorted(self.documents.items())},
            "json_values": len(self.json_values),
            "sources": self.sources,
            "missing": self.missing,
        }

    def text(self, kind: str, rng: random.Random, chars: int) -> str:
        """Consecutive pieces of one kind, about ``chars`` characters long."""
        pool = self.pools.get(kind) or self.pools["en"]
        start = rng.randrange(len(pool))
        parts: list[str] = []
        size = 0
        sep = "\n" if kind in LANGUAGES else "\n\n"
        i = start
        while size < chars and len(parts) < len(pool):
            piece = pool[i % len(pool)]
            if size and size + len(piece) > chars * 1.6:
                break
            parts.append(piece)
            size += len(piece) + len(sep)
            i += 1
        text = sep.join(parts)
        if len(text) > chars * 2:
            text = text[: chars * 2]
        return text.strip()

    def document(self, kind: str, rng: random.Random, chars: int) -> str:
        """A contiguous slice of the documents of a kind (a licence, a source file).

        Documents are read as one stream, so a slice longer than any single
        document runs on into the next one.
        """
        docs = self.documents.get(kind) or self.documents["en"]
        stream = "\n\n".join(docs)
        if len(stream) <= chars:
            return stream
        start = rng.randrange(len(stream) - chars + 1)
        # Start on a line boundary, as a paste would.
        nl = stream.rfind("\n", 0, start)
        start = nl + 1 if nl >= 0 else 0
        return stream[start : start + chars]

    def json_result(self, rng: random.Random, chars: int) -> str:
        """A JSON document of about ``chars`` characters, as a tool returns it.

        Too long a value is cut down and tried again; what is still far too
        long is truncated, as tools truncate large outputs.
        """
        value = self.json_values[rng.randrange(len(self.json_values))]
        style = rng.random()
        target = chars
        text = ""
        for _ in range(4):
            value = _fit_json(value, rng, target)
            # Tools serialize in different ways; json.dumps' default escapes non-ASCII.
            if style < 0.4:
                text = json.dumps(value)
            elif style < 0.7:
                text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            else:
                text = json.dumps(value, ensure_ascii=False, indent=2)
            if len(text) <= 2 * chars + 100:
                return text
            target = max(int(target * chars / len(text)), 1)
        return text[: 2 * chars + 100]

    def records(self, kind: str, rng: random.Random, chars: int) -> str:
        """Search results over texts of one kind, as a Python tool returns them.

        ``json.dumps``' default escapes every non-ASCII character (``\\uXXXX``),
        which is what most tools send; compact or indented. ``chars`` counts
        the serialized (escaped) text.
        """
        pool = self.pools.get(kind) or self.pools["en"]
        start = rng.randrange(len(pool))
        items: list[dict[str, Any]] = []
        size = 40
        while size < chars and len(items) < 200:
            i = start + 2 * len(items)
            item = {
                "id": 1000 + rng.randrange(9000),
                "title": pool[i % len(pool)][:80],
                "snippet": pool[(i + 1) % len(pool)][:600],
                "score": round(rng.random(), 3),
            }
            items.append(item)
            size += len(json.dumps(item)) + 2
        value = {"total": len(items), "results": items}
        if rng.random() < 0.6:
            return json.dumps(value)
        return json.dumps(value, indent=2)


def _fit_json(value: Any, rng: random.Random, chars: int) -> Any:
    """Cut a JSON value down to about ``chars`` serialized characters."""
    for _ in range(8):
        size = len(json.dumps(value, ensure_ascii=False))
        if size <= chars * 1.3:
            return value
        if isinstance(value, list) and value:
            per = max(size // len(value), 1)
            keep = max(1, min(len(value), chars // per))
            start = rng.randrange(len(value) - keep + 1)
            value = value[start : start + keep]
        elif isinstance(value, dict) and value:
            keys = list(value)
            per = max(size // len(keys), 1)
            keep = max(1, min(len(keys), chars // per))
            start = rng.randrange(len(keys) - keep + 1)
            if keep == 1 and isinstance(value[keys[start]], (dict, list)):
                value = value[keys[start]]
            else:
                value = {k: value[k] for k in keys[start : start + keep]}
        else:
            return value
    return value


# -- readers -------------------------------------------------------------------


def _read_mo(path: Path) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a GNU .mo catalogue; plural forms joined."""
    data = path.read_bytes()
    if len(data) < 28:
        return []
    endian = "<" if struct.unpack("<I", data[:4])[0] == 0x950412DE else ">"
    _, count, orig_at, trans_at = struct.unpack(endian + "4I", data[4:20])
    table = f"{endian}{2 * count}I"
    orig = struct.unpack(table, data[orig_at : orig_at + 8 * count])
    trans = struct.unpack(table, data[trans_at : trans_at + 8 * count])
    pairs = []
    for i in range(0, 2 * count, 2):
        try:
            msgid = data[orig[i + 1] : orig[i + 1] + orig[i]].decode("utf-8")
            msgstr = data[trans[i + 1] : trans[i + 1] + trans[i]].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if msgid:
            pairs.append((msgid.split("\x00")[0], msgstr.split("\x00")[0]))
    return pairs


def _language_pool(lang: str, sources: list[str]) -> list[str]:
    folder = Path("/usr/share/locale") / _LOCALE_DIRS[lang] / "LC_MESSAGES"
    script = _SCRIPT_RE[lang]
    seen: set[str] = set()
    pieces: list[str] = []
    for name in _CATALOGUES:
        path = folder / f"{name}.mo"
        if not path.is_file():
            continue
        if len(pieces) >= _MAX_PER_LANGUAGE:
            break
        sources.append(str(path))
        kept = 0
        for _, msgstr in sorted(_read_mo(path)):
            text = msgstr.strip()
            if len(text) < 12 or text in seen:
                continue
            if len(script.findall(text)) < 0.3 * len(text):
                continue
            seen.add(text)
            pieces.append(text)
            kept += 1
            if kept >= _MAX_PER_CATALOGUE:
                break
    return pieces


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _english(sources: list[str]) -> tuple[list[str], list[str]]:
    """(paragraphs, long documents) of English prose."""
    paragraphs: list[str] = []
    documents: list[str] = []
    for name in _LICENSES:
        path = Path("/usr/share/common-licenses") / name
        if not path.is_file():
            continue
        sources.append(str(path))
        text = path.read_text(encoding="utf-8", errors="replace")
        documents.append(text)
        for para in re.split(r"\n\s*\n", text):
            flat = " ".join(para.split())
            if len(flat) >= 40:
                paragraphs.append(flat)
    root = _stdlib()
    for rel in _STDLIB_MODULES:
        path = root / rel
        if not path.is_file():
            continue
        sources.append(f"docstrings of {path}")
        # A regex, not ast: parsing 30 modules took a second.
        docs = [
            inspect.cleandoc(m.group(1))
            for m in _DOCSTRING_RE.finditer(
                path.read_text(encoding="utf-8", errors="replace")
            )
        ]
        docs = [d for d in docs if len(d) >= 60]
        for doc in docs:
            paragraphs.extend(
                " ".join(p.split())
                for p in re.split(r"\n\s*\n", doc)
                if len(p.strip()) >= 40
            )
        if docs:
            documents.append("\n\n".join(docs))
    return paragraphs, documents


def _code(sources: list[str]) -> tuple[list[str], list[str]]:
    """(line windows, whole files) of standard-library source."""
    windows: list[str] = []
    documents: list[str] = []
    root = _stdlib()
    for rel in _STDLIB_MODULES:
        path = root / rel
        if not path.is_file():
            continue
        sources.append(str(path))
        text = path.read_text(encoding="utf-8", errors="replace")
        documents.append(text)
        lines = text.splitlines()
        # Deterministic windows: sizes cycle through a fixed sequence.
        i = 0
        step = 0
        while i < len(lines):
            size = _CODE_WINDOW[0] + (step * 7) % (_CODE_WINDOW[1] - _CODE_WINDOW[0])
            chunk = "\n".join(lines[i : i + size]).strip("\n")
            if len(chunk) >= 80:
                windows.append(chunk)
            i += size
            step += 1
    return windows, documents


def _json_values(sources: list[str]) -> list[Any]:
    values: list[Any] = []
    roots = sorted({Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")})
    for root in roots:
        for package in _JSON_PACKAGES:
            folder = root / package
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*.json")):
                try:
                    size = path.stat().st_size
                    if not 200 <= size <= _MAX_JSON_FILE:
                        continue
                    values.append(json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError, UnicodeDecodeError):
                    continue
                sources.append(str(path.relative_to(root)))
    # Real tables of the standard library (fixed for a Python version).
    values.append(
        [
            {"code": s.value, "phrase": s.phrase, "description": s.description}
            for s in http.HTTPStatus
        ]
    )
    values.append(dict(sorted(html.entities.html5.items())[:1500]))
    values.append(dict(sorted(codec_aliases.items())))
    for lo, hi in (
        (0x4E00, 0x4F00),
        (0x0400, 0x0500),
        (0x0600, 0x06FF),
        (0x0900, 0x097F),
        (0x3040, 0x30FF),
    ):
        values.append(
            [
                {"char": chr(c), "codepoint": f"U+{c:04X}", "name": unicodedata.name(chr(c), ""),
                 "category": unicodedata.category(chr(c))}
                for c in range(lo, hi)
                if unicodedata.name(chr(c), "")
            ]
        )  # fmt: skip
    sources.append(f"stdlib tables of Python {sys.version.split()[0]}")
    return values


def build_corpus() -> Corpus:
    """Read the machine's text sources into a `Corpus` (about a second)."""
    sources: dict[str, list[str]] = {k: [] for k in KINDS}
    en, en_docs = _english(sources["en"])
    code, code_docs = _code(sources["code"])
    pools: dict[str, list[str]] = {"en": list(dict.fromkeys(en)), "code": code}
    documents: dict[str, list[str]] = {"en": en_docs, "code": code_docs}
    missing: list[str] = []
    for lang in LANGUAGES:
        pool = _language_pool(lang, sources[lang])
        if not pool:
            missing.append(lang)
        pools[lang] = pool
        # Long "documents" in a language: its catalogue pieces in order.
        documents[lang] = ["\n".join(pool)] if pool else []
    values = _json_values(sources["json"])
    pools["json"] = [json.dumps(v, ensure_ascii=False)[:2000] for v in values]
    if not pools["en"] or not pools["code"]:
        msg = (
            "No English or code sources found: the benchmark reads "
            "/usr/share/common-licenses and the standard library's sources."
        )
        raise RuntimeError(msg)
    for kind in list(pools):
        if not pools[kind]:
            pools[kind] = pools["en"]
    return Corpus(pools, documents, values, sources, missing)
