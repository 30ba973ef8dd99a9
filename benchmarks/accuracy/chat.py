"""What every hidden template shares: messages as a template sees them, and counting.

`normalize` turns LangChain messages into `Msg` records (roles as OpenAI names
them); a `Template` renders them to text and counts it with its family's
vocabulary (`vocab`), each special-token string counting as one token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from benchmarks.accuracy.vocab import vocabulary

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Msg", "Template", "functions", "normalize"]


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
            out.append(
                Msg("tool", _text(m.content), tool_call_id=m.tool_call_id, name=m.name)
            )
        else:
            out.append(Msg("user", _text(m.content), name=m.name))
    return out


def functions(tools: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The ``function`` objects of OpenAI-format tools."""
    return [t.get("function", t) for t in tools or ()]


class Template:
    """Base: render to text and count with the family's vocabulary."""

    name: ClassVar[str]
    encoding: ClassVar[str]  # a `vocab.vocabulary` name
    eos: ClassVar[int] = 1  # the end-of-turn token a server counts as generated
    call_id_length: ClassVar[int | None] = None  # Mistral: exactly 9 alphanumerics

    def __init__(self) -> None:
        self.vocab = vocabulary(self.encoding)

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        raise NotImplementedError

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        return self.count_with_special(self.render(msgs, tools))

    def count_with_special(self, text: str) -> int:
        """Tokens of a rendered prompt, each special-token string counting as one."""
        return self.vocab.count_with_special(text)

    def tokens(self, text: str) -> int:
        """Tokens of plain text (special-token strings count as text)."""
        return self.vocab.count(text)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return json.dumps({"name": name, "arguments": args}, ensure_ascii=False)

    def completion_tokens(
        self, text: str, calls: Sequence[tuple[str, dict[str, Any]]]
    ) -> int:
        """Tokens the model generated for a reply: text, tool calls, end token."""
        total = self.tokens(text) if text else 0
        total += sum(self.tokens(self.render_call(n, a)) for n, a in calls)
        return total + self.eos
