"""Exact counts for gpt-oss: tiktoken's ``o200k_harmony`` and the harmony format.

gpt-oss reads every prompt in OpenAI's harmony format, whoever serves it
(vLLM and others through ``openai-harmony``, Ollama through its template):

- a system message with the default header (identity, knowledge cutoff,
  today's date, reasoning effort, the valid channels, and where tool calls go
  when there are tools);
- a developer message with the caller's system prompts under
  ``# Instructions`` and the tools as a TypeScript ``namespace functions``;
- each turn as ``<|start|>role<|message|>content<|end|>``; assistant answers
  on the ``final`` channel, tool calls on ``commentary`` addressed
  ``to=functions.name`` and ended by ``<|call|>``, tool results from
  ``functions.name to=assistant``;
- the generation prompt ``<|start|>assistant``.

`HarmonyCounter` renders that as pieces between special tokens and counts
each piece with ``o200k_harmony`` (``o200k_base`` plus the harmony special
tokens, which split text before anything else); pieces are memoized by
text, so a history seen before is not re-tokenized. Reasoning effort is taken
as ``medium`` (the servers' default), and a server's own differences are
learned by calibration.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._cache import TTLCache
from langchain_tokencal._counting.encodings import load_encoding
from langchain_tokencal._counting.parts import message_parts
from langchain_tokencal._counting.rendered import RenderedCounter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import tiktoken
    from langchain_core.messages import BaseMessage

    from langchain_tokencal._counting.parts import MessageParts

__all__ = ["HarmonyCounter", "harmony_pieces", "is_gpt_oss", "typescript_tools"]

ENCODING: Final = "o200k_harmony"
_PIECES_KEPT: Final = 200_000
# Piece markers: special tokens are ints in a rendering, text pieces strings.
START, END, MESSAGE = 200006, 200007, 200008
CHANNEL, CALL, CONSTRAIN = 200005, 200012, 200003
_SCALARS: Final[dict[str, str]] = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}
_IDENTITY: Final = (
    "You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
)
_CHANNELS: Final = (
    "# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message."
)
_TOOLS_CHANNEL: Final = (
    "\nCalls to these tools must go to the commentary channel: 'functions'."
)
_INDENT: Final = "    "

Piece = str | int


def is_gpt_oss(model: str) -> bool:
    """True for a gpt-oss model name, however it is served.

    Example:
        ```python
        from langchain_tokencal._counting.harmony import is_gpt_oss

        assert is_gpt_oss("openai/gpt-oss-20b") and is_gpt_oss("gpt-oss:120b")
        ```
    """
    return "gpt-oss" in model.strip().lower()


def _ts_type(schema: Any, depth: int) -> str:
    """The TypeScript type harmony writes for a JSON schema.

    Harmony's own quirks are kept, since they are what the model reads: an
    enum is a union only with a type, ``oneOf`` is a union one member a line,
    ``anyOf`` and ``const`` are ``any``, an array without items is
    ``Array<any>``.
    """
    if not isinstance(schema, dict):
        return "any"
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return "Array<any>" if items is None else _ts_type(items, depth) + "[]"
    if isinstance(schema.get("oneOf"), list):
        pad = _INDENT * depth
        members = "".join(
            f"\n{pad} | {_ts_type(option, depth)}" for option in schema["oneOf"]
        )
        return f"{members}\n{pad}"
    union: list[Any] = []
    if kind is not None and isinstance(schema.get("enum"), list):
        union = [json.dumps(v, ensure_ascii=False) for v in schema["enum"]]
    elif isinstance(kind, list):
        union = [_ts_type({**schema, "type": k}, depth) for k in kind]
    if union:
        return " | ".join(union)
    if kind == "object":
        return _ts_object(schema, depth + 1)
    return _SCALARS.get(str(kind), "any")


def _ts_object(schema: Mapping[str, Any], depth: int) -> str:
    """An object type: one line a property, optional ones marked ``?``."""
    pad = _INDENT * depth
    required = set(schema.get("required") or ())
    properties = schema.get("properties")
    lines = ["{\n"]
    for name, prop in (properties if isinstance(properties, dict) else {}).items():
        info = prop if isinstance(prop, dict) else {}
        description = info.get("description")
        described = isinstance(description, str) and bool(description)
        if described:
            # Only the first line is marked as a comment, as harmony writes it.
            lines.append(f"{pad}// {description}\n")
        mark = "" if name in required else "?"
        kind = _ts_type(prop, depth)
        if described and info.get("type") == "object":
            # Harmony repeats an object's description before its brace.
            kind = f"{_INDENT * (depth + 1)}// {description}\n{kind}"
        sep = "" if kind.startswith("\n") else " "
        line = f"{pad}{name}{mark}:{sep}{kind},"
        if "default" in info:
            default = info["default"]
            # Harmony writes an enum's string default bare, any other as JSON.
            if not (isinstance(default, str) and "enum" in info):
                default = json.dumps(default, ensure_ascii=False)
            line += f" // default: {default}"
        lines.append(line + "\n")
    lines.append(pad + "}")
    return "".join(lines)


def typescript_tools(tools: Sequence[Mapping[str, Any]]) -> str:
    """The ``# Tools`` section harmony writes for OpenAI-format tools."""
    out = ["# Tools\n\n## functions\n\nnamespace functions {\n\n"]
    for tool in tools:
        inner = tool.get("function")
        fn: Mapping[str, Any] = inner if isinstance(inner, dict) else tool
        description = fn.get("description")
        if isinstance(description, str) and description:
            out.extend(f"// {line}\n" for line in description.split("\n"))
        params = fn.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("properties"), dict):
            signature = f"(_: {_ts_object(params, 0)})"
        else:
            signature = "()"
        out.append(f"type {fn.get('name', '')} = {signature} => any;\n\n")
    out.append("} // namespace functions")
    return "".join(out)


def _preamble(
    parsed: Sequence[MessageParts],
    tools: Sequence[Mapping[str, Any]] | None,
    today: str,
) -> list[Piece]:
    """The system message, and the developer message if there is one."""
    header = f"{_IDENTITY}Current date: {today}\n\nReasoning: medium\n\n{_CHANNELS}"
    if tools:
        header += _TOOLS_CHANNEL
    pieces: list[Piece] = [START, "system", MESSAGE, header, END]
    instructions = [
        "".join(p.texts) for p in parsed if p.role in {"system", "developer"}
    ]
    developer = []
    if instructions:
        developer.append("# Instructions\n\n" + "\n\n".join(instructions))
    if tools:
        developer.append(typescript_tools(tools))
    if developer:
        pieces += [START, "developer", MESSAGE, "\n\n".join(developer), END]
    return pieces


def _assistant(parts: MessageParts, names: dict[str | None, str]) -> list[Piece]:
    """An assistant turn: its answer on ``final``, its calls on ``commentary``."""
    text = "".join(parts.texts)
    pieces: list[Piece] = []
    if text:
        pieces += [START, "assistant", CHANNEL, "final", MESSAGE, text, END]
    for name, arguments, call_id in parts.tool_calls:
        names[call_id] = name
        pieces += [
            START,
            f"assistant to=functions.{name}",
            CHANNEL,
            "commentary ",
            CONSTRAIN,
            "json",
            MESSAGE,
            arguments,
            CALL,
        ]
    return pieces


def harmony_pieces(
    messages: Sequence[BaseMessage],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    today: str | None = None,
) -> list[Piece]:
    """The harmony prompt of messages and tools: text pieces and special tokens.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting.harmony import harmony_pieces

        pieces = harmony_pieces([HumanMessage("hi")], None, today="2025-08-05")
        assert pieces[-2:] == [200006, "assistant"]
        ```
    """
    today = today or datetime.now(tz=timezone.utc).strftime("%Y-%m-%d")
    parsed = [message_parts(m) for m in messages]
    pieces = _preamble(parsed, tools, today)
    names: dict[str | None, str] = {}
    for parts in parsed:
        if parts.role in {"system", "developer"}:
            continue
        text = "".join(parts.texts)
        if parts.role == "assistant" or parts.tool_calls:
            pieces += _assistant(parts, names)
        elif parts.role in {"tool", "function"} or parts.tool_call_id is not None:
            name = names.get(parts.tool_call_id) or parts.name or "tool"
            author = f"functions.{name} to=assistant"
            pieces += [START, author, CHANNEL, "commentary", MESSAGE, text, END]
        else:
            pieces += [START, "user", MESSAGE, text, END]
    pieces += [START, "assistant"]
    return pieces


class HarmonyCounter(RenderedCounter):
    """Exact counts for gpt-oss in the harmony format; see the module.

    Thread-safe: tiktoken encodings are shareable and the piece memo locks
    its writes.

    Args:
        model: The gpt-oss model name (recorded in ``info``).
        provider: Recorded in ``info``.
        memo_size: Most messages memoized.

    Raises:
        RuntimeError: If ``o200k_base`` cannot be loaded (offline, no cache).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting.harmony import HarmonyCounter

        counter = HarmonyCounter("gpt-oss-20b")
        assert counter.info.kind == "exact"
        ```
    """

    def __init__(
        self, model: str, *, provider: str | None = None, memo_size: int = 100_000
    ) -> None:
        """Load ``o200k_base`` (the harmony encoding's vocabulary)."""
        encoding = load_encoding("o200k_base")
        if encoding is None:
            msg = "o200k_base (the vocabulary of o200k_harmony) cannot be loaded"
            raise RuntimeError(msg)
        self._encoding: tiktoken.Encoding = encoding
        self._pieces: TTLCache[str, int] = TTLCache(max_size=_PIECES_KEPT)
        super().__init__(
            model,
            provider,
            tokenizer=f"tiktoken:{ENCODING}",
            encoding=ENCODING,
            memo_size=memo_size,
        )

    def _count_text(self, text: str) -> int:
        """Tokens of a text with the harmony vocabulary, as plain text."""
        return len(self._encoding.encode_ordinary(text)) if text else 0

    # Message contents are plain text of the harmony vocabulary: many new
    # ones are tokenized in a batch on two threads, as `LocalCounter` does.
    batch_contents = True

    def count_pieces(self, pieces: Sequence[Piece]) -> int:
        """Tokens of a rendering: one per special token, text pieces memoized."""
        total = 0
        get, put = self._pieces.get, self._pieces.put
        for piece in pieces:
            if isinstance(piece, int):
                total += 1
                continue
            count = get(piece)
            if count is None:
                count = self._count_text(piece)
                put(piece, count)
            total += count
        return total

    def _exact_total(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> int:
        """Tokens of the harmony prompt."""
        return self.count_pieces(harmony_pieces(messages, tools))
