"""The fake model's hidden chat template: the token accounting of a prompt and a reply.

The rule is written out in `langchain_tokencal.testing`'s docstring. This is the
fake's own ground truth: it deliberately shares no code with the package's
counters (``_counting``, ``_features``, ``_calibration``), which it exists to test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from langchain_core.messages.tool import ToolCall

__all__ = ["ChatTemplate", "as_openai_tools", "canonical_json", "role_of"]

_TOOL_CALL_OVERHEAD = 3

_MEDIA_BLOCKS = frozenset(
    {"image", "image_url", "input_image", "audio", "input_audio", "video", "file"}
    | {"input_file", "document"}
)
_TOOL_USE_BLOCKS = frozenset(
    {"tool_use", "tool_call", "tool_call_chunk", "function_call", "server_tool_call"}
)
_THINKING_BLOCKS = frozenset({"thinking", "reasoning", "redacted_thinking"})

_ROLES: tuple[tuple[type[BaseMessage], str], ...] = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (SystemMessage, "system"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
)


def canonical_json(value: Any) -> str:
    """Serialize ``value`` as the template does: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def role_of(message: BaseMessage) -> str:
    """Return the role name the template writes for ``message``."""
    if isinstance(message, ChatMessage):
        return message.role
    for cls, role in _ROLES:
        if isinstance(message, cls):
            return role
    return message.type


def as_openai_tools(tools: Sequence[Any] | None) -> list[dict[str, Any]]:
    """Convert tools to OpenAI's format, as `bind_tools` binds them."""
    # convert_to_openai_tool returns an already converted tool unchanged.
    return [convert_to_openai_tool(tool) for tool in tools or ()]


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """The hidden template's constants and tokenizer; immutable, so thread-safe."""

    count: Callable[[str], int]
    framing_tokens: int
    tokens_per_message: int
    tool_preamble_tokens: int
    tokens_per_tool: int
    image_tokens: int

    def prompt_tokens(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any] | None,
        response_format: Any,
    ) -> int:
        """Return a prompt's ``input_tokens``: messages, tools, response format."""
        count = self.count
        total = self.framing_tokens
        total += sum(self._message_tokens(message) for message in messages)
        openai_tools = as_openai_tools(tools)
        if openai_tools:
            total += self.tool_preamble_tokens
            total += sum(
                count(canonical_json(tool)) + self.tokens_per_tool
                for tool in openai_tools
            )
        if response_format is not None:
            if isinstance(response_format, type) and issubclass(
                response_format, BaseModel
            ):
                response_format = response_format.model_json_schema()
            total += count(canonical_json(response_format))
        return total

    def tool_call_tokens(self, calls: Iterable[ToolCall]) -> int:
        """Return what tool calls cost, in a prompt's history or in a reply."""
        count = self.count
        return sum(
            count(call["name"])
            + count(canonical_json(call["args"]))
            + _TOOL_CALL_OVERHEAD
            for call in calls
        )

    def _message_tokens(self, message: BaseMessage) -> int:
        count = self.count
        total = self.tokens_per_message + count(role_of(message))
        total += self._content_tokens(message.content)
        if message.name:
            total += count(message.name) + 1
        if isinstance(message, AIMessage):
            total += self.tool_call_tokens(message.tool_calls)
        elif isinstance(message, ToolMessage):
            total += count(message.tool_call_id)
        return total

    def _content_tokens(self, content: str | list[str | dict[str, Any]]) -> int:
        count = self.count
        if isinstance(content, str):
            return count(content)
        total = 0
        for block in content:
            if isinstance(block, str):
                total += count(block)
                continue
            kind = block.get("type")
            if kind == "text":
                total += count(str(block.get("text", "")))
            elif kind in _MEDIA_BLOCKS:
                total += self.image_tokens
            elif kind in _THINKING_BLOCKS:
                text = block.get("thinking") or block.get("reasoning") or ""
                total += count(str(text or block.get("text", "")))
            elif kind not in _TOOL_USE_BLOCKS:
                total += count(canonical_json(block))
        return total
