"""Message parts: what a chat-completions prompt renders of a message.

A LangChain message reaches a counter in many shapes: string or block content
(OpenAI, Anthropic, LangChain v0 and v1 standard blocks), tool calls parsed or
raw, names in a field or in ``additional_kwargs``. `message_parts` reduces it to
what a chat-completions prompt renders: role, name, text pieces, images, tool
calls and tool-call id, following langchain-openai's message conversion;
`plain_parts` does it cheaply for the usual shape (string content, no tool
calls). Thread-safe (pure, apart from `kind_of`'s growing tables).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from langchain_tokencal._counting.kinds import (
    AI_CLASSES,
    CHAT,
    FIXED_ROLES,
    RELEVANT_EXTRAS,
    TOOL_CLASSES,
    kind_of,
)

__all__ = ["MessageParts", "message_parts", "plain_parts"]

logger = logging.getLogger(__name__)

# Blocks OpenAI's converter drops (reasoning) or that duplicate the message's
# parsed tool calls; counting them would count a tool call twice.
_SKIPPED_BLOCKS: Final = frozenset(
    {
        "tool_use",
        "server_tool_use",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "function_call",
        "code_interpreter_call",
        "thinking",
        "redacted_thinking",
        "reasoning",
        "reasoning_content",
    }
)
_IMAGE_BLOCKS: Final = frozenset({"image", "image_url", "input_image"})
# Media the local counters have no rule for: counted 0 tokens, said once.
_UNCOUNTED_BLOCKS: Final = frozenset(
    {"file", "input_file", "document", "audio", "input_audio", "video", "media"}
)
_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class MessageParts:
    """What a chat-completions prompt renders of one message.

    Attributes:
        role: OpenAI role string (``user``, ``assistant``, ``system``,
            ``developer``, ``tool``, ``function`` or a `ChatMessage` role).
        name: The participant name, or None (tool messages never carry one).
        texts: Text pieces of the content.
        images: ``(source, detail)`` per image; source is a URL, a ``data:``
            URL, bare base64 data, or None when only a file id is known.
        tool_calls: ``(name, arguments, id)`` per tool call; arguments are the
            JSON string OpenAI receives.
        tool_call_id: The id a tool message answers, else None.
    """

    role: str
    name: str | None
    texts: tuple[str, ...]
    images: tuple[tuple[str | None, str | None], ...]
    tool_calls: tuple[tuple[str, str, str | None], ...]
    tool_call_id: str | None


def plain_parts(
    message: BaseMessage,
) -> tuple[str, str | None, str | None, str] | None:
    """``(role, name, tool_call_id, content)`` of a message with string content.

    Returns None unless the message is as simple as most are: string content,
    no tool calls, no name or role in ``additional_kwargs``, a class with a
    fixed role. For such a message the result equals what `message_parts`
    finds, so the counters can skip it.
    """
    cls = type(message)
    role = FIXED_ROLES.get(cls)
    if role is None:  # a class never seen, a ChatMessage or an unusual class
        kind_of(cls)
        role = FIXED_ROLES.get(cls)
        if role is None:
            return None
    # The fields straight from the pydantic model's __dict__ (see memo_lookup).
    fields = message.__dict__
    content = fields.get("content")
    if type(content) is not str:
        return None
    if cls in TOOL_CLASSES:
        return role, None, fields.get("tool_call_id"), content
    extra = fields.get("additional_kwargs")
    if (extra and not RELEVANT_EXTRAS.isdisjoint(extra)) or (
        cls in AI_CLASSES
        and (fields.get("tool_calls") or fields.get("invalid_tool_calls"))
    ):
        return None
    name = fields.get("name")
    return role, None if not name else str(name), None, content


def _role(message: BaseMessage) -> str:
    """The role OpenAI sees, as langchain-openai assigns it."""
    cls = type(message)
    if kind_of(cls) == CHAT:
        return message.role  # type: ignore[attr-defined, no-any-return]
    role = FIXED_ROLES.get(cls)
    if role == "system":
        return str(message.additional_kwargs.get("__openai_role__", "system"))
    return message.type if role is None else role


def _image(block: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``(source, detail)`` of an image block in any supported format."""
    detail = block.get("detail")
    url = block.get("image_url")
    if isinstance(url, Mapping):
        detail = url.get("detail", detail)
        url = url.get("url")
    if isinstance(url, str):
        return url, detail
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic
        data = source.get("data") if source.get("type") == "base64" else None
        return data or source.get("url"), detail
    if isinstance(source, str):
        return source, detail
    for key in ("url", "base64", "data"):  # LangChain v1 and v0 standard blocks
        value = block.get(key)
        if isinstance(value, str):
            return value, detail
    return None, detail


def _collect(
    content: Any, texts: list[str], images: list[tuple[str | None, str | None]]
) -> None:
    """Gather text pieces and images from string or block content."""
    if isinstance(content, str):
        if content:
            texts.append(content)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                texts.append(block)
            elif isinstance(block, Mapping):
                _collect_block(block, texts, images)


def _collect_block(
    block: Mapping[str, Any],
    texts: list[str],
    images: list[tuple[str | None, str | None]],
) -> None:
    """Gather the text or image of one content block."""
    kind = block.get("type")
    if kind in _SKIPPED_BLOCKS:
        return
    if kind in _IMAGE_BLOCKS:
        images.append(_image(block))
    elif kind == "tool_result":  # Anthropic tool results in user content
        _collect(block.get("content"), texts, images)
    elif isinstance(text := block.get("text"), str):
        # "text" and its Responses-API variants, and any other block that
        # carries text (a plain-text file block, unknown provider blocks).
        texts.append(text)
    elif kind in _UNCOUNTED_BLOCKS and kind not in _warned:
        _warned.add(kind)
        logger.warning(
            "tokencal: %r content blocks (a PDF, audio, video) count 0 tokens "
            "locally, so a count of a prompt carrying one is low by what the "
            "provider charges for it until reports of such prompts are learned",
            kind,
        )


def _tool_calls(message: BaseMessage) -> tuple[tuple[str, str, str | None], ...]:
    """``(name, arguments, id)`` per tool call, as OpenAI receives them."""
    if not isinstance(message, AIMessage):
        return ()
    if message.tool_calls or message.invalid_tool_calls:
        calls = [
            (tc["name"], json.dumps(tc["args"], ensure_ascii=False), tc.get("id"))
            for tc in message.tool_calls
        ]
        calls += [
            (tc.get("name") or "", tc.get("args") or "", tc.get("id"))
            for tc in message.invalid_tool_calls
        ]
        return tuple(calls)
    extra = message.additional_kwargs
    raw = extra.get("tool_calls")
    if isinstance(raw, list):
        out = []
        for tc in raw:
            fn = tc.get("function") if isinstance(tc, Mapping) else None
            if isinstance(fn, Mapping) and tc.get("type", "function") == "function":
                out.append(
                    (
                        str(fn.get("name") or ""),
                        str(fn.get("arguments") or ""),
                        tc.get("id"),
                    )
                )
        return tuple(out)
    legacy = extra.get("function_call")
    if isinstance(legacy, Mapping):
        return (
            (str(legacy.get("name") or ""), str(legacy.get("arguments") or ""), None),
        )
    return ()


def message_parts(message: BaseMessage) -> MessageParts:
    """Reduce a message to what a chat-completions prompt renders of it."""
    texts: list[str] = []
    images: list[tuple[str | None, str | None]] = []
    _collect(message.content, texts, images)
    tool_call_id = message.tool_call_id if isinstance(message, ToolMessage) else None
    name = (
        None
        if tool_call_id is not None
        else (message.name or message.additional_kwargs.get("name"))
    )
    return MessageParts(
        role=_role(message),
        name=None if name is None else str(name),
        texts=tuple(texts),
        images=tuple(images),
        tool_calls=_tool_calls(message),
        tool_call_id=tool_call_id,
    )
