"""Deterministic, realistic chat histories built from the Python standard library.

Three kinds of text: English prose (the language reference topics shipped in
``pydoc_data.topics``, then docstrings), Python code (function sources of the
stdlib's top-level modules, cut into chunks of at most 14 lines) and JSON (a
catalogue entry per function and class: arguments, bases, line numbers). Each
message is built from consecutive pieces of its kinds until it reaches a
seeded target size in ``o200k_base`` tokens (a piece cut short gives its rest
to the next message), so every text in a run is distinct and the same seed
gives the same histories on the same Python version.
"""

import ast
import json
import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tiktoken
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

KINDS = ("prose", "code", "json")
_CODE_LINES = 14
_MIN_PROSE_CHARS = 120
_MAX_PIECE_CHARS = 2400
# Which kinds a role's messages are made of, and how often.
_USER_MIX = ("prose", "prose", "prose", "code", "json")
_AI_MIX = ("prose", "prose", "code", "code", "json")
_TOOL_EVERY = 12  # one tool exchange (call + JSON result) per this many turns


@dataclass(frozen=True, slots=True)
class Piece:
    kind: str
    text: str


def _reference_prose() -> list[str]:
    """Paragraph groups of the language reference topics (about 110k tokens)."""
    try:
        from pydoc_data.topics import topics  # noqa: PLC0415 - optional in some builds
    except ImportError:
        return []
    return [chunk for key in sorted(topics) for chunk in _docstring_chunks(topics[key])]


def _definitions(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Classes and functions, outer first, without walking every expression."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
            yield from _definitions(node.body)


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [p for p in sorted(root.glob("*.py")) if not p.name.startswith("_")]


def _docstring_chunks(doc: str) -> Iterator[str]:
    """Paragraph groups of a docstring, each at most about 2,400 characters."""
    out: list[str] = []
    size = 0
    for para in doc.split("\n\n"):
        if size and size + len(para) > _MAX_PIECE_CHARS:
            yield "\n\n".join(out)
            out, size = [], 0
        out.append(para)
        size += len(para)
    if out:
        yield "\n\n".join(out)


def _class_entry(module: str, node: ast.ClassDef) -> dict[str, Any]:
    methods = [
        {
            "name": item.name,
            "args": [a.arg for a in item.args.args],
            "defaults": len(item.args.defaults),
            "lineno": item.lineno,
            "decorators": [ast.unparse(d) for d in item.decorator_list],
            "async": isinstance(item, ast.AsyncFunctionDef),
        }
        for item in node.body
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return {
        "module": module,
        "class": node.name,
        "bases": [ast.unparse(b) for b in node.bases],
        "lineno": node.lineno,
        "end_lineno": node.end_lineno,
        "methods": methods[:12],
    }


def _function_entry(
    module: str, node: ast.FunctionDef | ast.AsyncFunctionDef
) -> dict[str, Any]:
    doc = ast.get_docstring(node) or ""
    return {
        "module": module,
        "function": node.name,
        "args": [
            {
                "name": a.arg,
                "annotation": ast.unparse(a.annotation) if a.annotation else None,
            }
            for a in node.args.args
        ],
        "defaults": [ast.unparse(d)[:40] for d in node.args.defaults],
        "lines": [node.lineno, node.end_lineno],
        "summary": doc.split("\n", 1)[0][:120],
    }


def _file_pieces(path: Path) -> Iterator[tuple[str, str]]:
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    lines = source.splitlines()
    for node in (tree, *_definitions(tree.body)):
        doc = ast.get_docstring(node)  # type: ignore[arg-type]
        if doc and len(doc) >= _MIN_PROSE_CHARS:
            for chunk in _docstring_chunks(doc):
                yield "prose", chunk
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.args.args:
                yield "json", json.dumps(_function_entry(path.stem, node), indent=None)
            body = lines[node.lineno - 1 : node.end_lineno]
            for i in range(0, len(body), _CODE_LINES):
                chunk = "\n".join(body[i : i + _CODE_LINES]).strip("\n")
                if chunk.strip():
                    yield "code", chunk
        if isinstance(node, ast.ClassDef):
            entry = _class_entry(path.stem, node)
            indent = 2 if node.lineno % 3 else None  # indented and compact JSON
            yield "json", json.dumps(entry, indent=indent)


class Corpus:
    """Pools of prose, code and JSON pieces, parsed from the stdlib on demand.

    Pieces are handed out in order and never twice; when the files run out
    they are read again and each text gets a round marker, so texts stay
    distinct.
    """

    def __init__(self, seed: int = 20250101) -> None:
        self.rng = random.Random(seed)
        self.encoding = tiktoken.get_encoding("o200k_base")
        self._files = _stdlib_files()
        self._next_file = 0
        self._round = 0
        self._pools: dict[str, list[Piece]] = {kind: [] for kind in KINDS}
        self._pools["prose"] = [Piece("prose", t) for t in _reference_prose()]
        self._cursor: dict[str, int] = dict.fromkeys(KINDS, 0)

    def _read_more(self) -> None:
        if self._next_file >= len(self._files):
            self._next_file = 0
            self._round += 1
            for kind in KINDS:  # old pieces are used up; keep memory flat
                self._pools[kind] = []
                self._cursor[kind] = 0
        path = self._files[self._next_file]
        self._next_file += 1
        marker = f"\n# round {self._round}" if self._round else ""
        for kind, text in _file_pieces(path):
            self._pools[kind].append(Piece(kind, text + marker))

    def take(self, kind: str) -> Piece:
        """The next unused piece of a kind."""
        while self._cursor[kind] >= len(self._pools[kind]):
            self._read_more()
        piece = self._pools[kind][self._cursor[kind]]
        self._cursor[kind] += 1
        return piece

    def _give_back(self, rest: Piece) -> None:
        """Return the unused tail of the last piece taken, to be taken next."""
        if rest.text.strip():
            self._cursor[rest.kind] -= 1
            self._pools[rest.kind][self._cursor[rest.kind]] = rest

    def text(self, mix: tuple[str, ...], target: int) -> str:
        """A text of about ``target`` tokens made of pieces drawn from ``mix``."""
        parts: list[str] = []
        tokens = 0
        encode = self.encoding.encode_ordinary
        while tokens < target:
            piece = self.take(self.rng.choice(mix))
            room = target - tokens
            text = piece.text
            piece_tokens = len(encode(text))
            if piece_tokens > room * 1.3:
                # Cut a long piece to about the room left (chars per token of
                # the piece itself), at a line or word boundary.
                cut = max(1, len(text) * room // piece_tokens)
                head = text[:cut]
                boundary = max(head.rfind("\n"), head.rfind(" "))
                if boundary > cut // 2:
                    cut = boundary
                text = piece.text[:cut]
                self._give_back(Piece(piece.kind, piece.text[cut:].lstrip()))
            if piece.kind == "code":
                text = f"```python\n{text}\n```"
            elif piece.kind == "json" and self.rng.random() < 0.5:
                text = f"```json\n{text}\n```"
            parts.append(text)
            tokens += len(encode(text)) + 1
        return "\n\n".join(parts)

    def _size(self, mean: int) -> int:
        return int(self.rng.uniform(0.5 * mean, 1.5 * mean))

    def system(self, tokens: int = 300) -> SystemMessage:
        """A system prompt of mostly prose."""
        return SystemMessage(self.text(("prose", "prose", "json"), tokens))

    def turns(
        self, n: int, tokens: int = 300, *, tools: bool = True
    ) -> list[BaseMessage]:
        """``n`` messages: user, assistant, user, ... (cut to exactly ``n``).

        With ``tools``, every twelfth user turn is answered by a tool call and a
        JSON tool result before the assistant's answer.
        """
        out: list[BaseMessage] = []
        turn = 0
        while len(out) < n:
            out.append(HumanMessage(self.text(_USER_MIX, self._size(tokens))))
            if tools and turn % _TOOL_EVERY == _TOOL_EVERY - 1:
                call_id = f"call_{self.rng.getrandbits(48):012x}"
                query = self.take("prose").text.split(".")[0][:160]
                args = {"query": query, "limit": self.rng.randint(1, 50)}
                call = {"name": "search_docs", "args": args, "id": call_id}
                out.append(AIMessage("", tool_calls=[call]))
                result = self.text(("json",), self._size(tokens))
                out.append(ToolMessage(result, tool_call_id=call_id))
            out.append(AIMessage(self.text(_AI_MIX, self._size(tokens))))
            turn += 1
        return out[:n]

    def history(self, n: int, tokens: int = 300) -> list[BaseMessage]:
        """A system message then ``n - 1`` conversation messages."""
        return [self.system(tokens), *self.turns(n - 1, tokens)]

    def short_texts(self, n: int, chars: int = 160) -> list[str]:
        """``n`` distinct texts of about ``chars`` characters (windows of pieces)."""
        out: list[str] = []
        seen: set[str] = set()
        while len(out) < n:
            # Whichever kind has the most pieces left, so no pool drives reading.
            kind = max(KINDS, key=lambda k: len(self._pools[k]) - self._cursor[k])
            text = self.take(kind).text
            for i in range(0, max(len(text) - chars // 2, 1), chars):
                window = text[i : i + chars]
                if window not in seen:
                    seen.add(window)
                    out.append(window)
        return out[:n]


def message_texts(messages: list[BaseMessage]) -> list[str]:
    """The string contents of messages (the tokenizer floor's input)."""
    return [m.content for m in messages if isinstance(m.content, str)]
