"""What every hidden template shares: messages as a template sees them, and counting.

`normalize` turns LangChain messages into `Msg` records (roles as OpenAI names
them); a `Template` renders them to text and counts it with its family's
vocabulary from ``quicktok``, each special-token string counting as one token.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import quicktok
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Msg", "Template", "functions", "normalize"]

# Every special token of the bundled vocabularies looks like one of these.
_SPECIAL_CANDIDATE = re.compile(r"<\|[^\s<>|]{1,64}\|>|</?[a-z_]{3,16}>")


@dataclass(frozen=True, slots=True)
class Msg:
    """A message as a chat template sees it."""

    role: str  # system, user, assistant, tool
    content: str
    tool_calls: tuple[tuple[str, str, dict[str, Any]], ...] = ()  # (id, name, args)
    tool_call_id: str | None = None
    name: str | None = None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def normalize(messages: Sequence[BaseMessage]) -> list[Msg]:
    """LangChain messages to template messages (roles as OpenAI names them)."""
    out = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(Msg("system", _text(m.content)))
        elif isinstance(m, AIMessage):
            calls = tuple(
                (c.get("id") or "", c["name"], dict(c["args"])) for c in m.tool_calls
            )
            out.append(Msg("assistant", _text(m.content), calls))
        elif isinstance(m, ToolMessage):
            out.append(Msg("tool", _text(m.content), tool_call_id=m.tool_call_id))
        else:
            out.append(Msg("user", _text(m.content), name=m.name))
    return out


def functions(tools: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``function`` objects of OpenAI-format tools."""
    return [t.get("function", t) for t in tools or ()]


class Template:
    """Base: render to text and count with the family's vocabulary."""

    name: ClassVar[str]
    encoding: ClassVar[str]
    eos: ClassVar[int] = 1  # the end-of-turn token a server counts as generated

    def __init__(self) -> None:
        self._enc = quicktok.get_encoding(self.encoding)
        self._specials = frozenset(self._enc.special_tokens_set)

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        raise NotImplementedError

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        return self.count_with_special(self.render(msgs, tools))

    def count_with_special(self, text: str) -> int:
        """Tokens of a rendered prompt, each special-token string counting as one.

        Equal to ``len(encode_with_special(text))``: the text between special
        tokens is encoded piece by piece either way. quicktok's own special
        matching is slow with o200k_harmony's thousand specials, hence this.
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

    def tokens(self, text: str) -> int:
        """Tokens of plain text (special-token strings count as text)."""
        return self._enc.count(text)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)

    def completion_tokens(
        self, text: str, calls: Sequence[tuple[str, dict[str, Any]]]
    ) -> int:
        """Tokens the model generated for a reply: text, tool calls, end token."""
        total = self.tokens(text) if text else 0
        total += sum(self.tokens(self.render_call(n, a)) for n, a in calls)
        return total + self.eos
