"""Message normalization for local counting: parts, memo keys and digests.

A LangChain message reaches a counter in many shapes: string or block content
(OpenAI, Anthropic, LangChain v0 and v1 standard blocks), tool calls parsed or
raw, names in a field or in ``additional_kwargs``. `message_parts` reduces it to
what a chat-completions prompt renders: role, name, text pieces, images, tool
calls and tool-call id, following langchain-openai's message conversion.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import xxhash
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

__all__ = [
    "MessageParts",
    "all_messages",
    "freeze",
    "memo_key",
    "message_digest",
    "message_parts",
]

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
_DICT: Final = object()  # marks frozen dicts so they never equal a frozen list


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


def freeze(obj: Any) -> Hashable:
    """Turn JSON-like data into an equal-iff-equal hashable value.

    Strings are kept as they are, so their cached hashes are reused.
    Unhashable leaves fall back to their ``repr``.
    """
    cls = obj.__class__
    if cls is str or cls is int or cls is float or cls is bool or obj is None:
        return obj  # type: ignore[no-any-return]
    if isinstance(obj, Mapping):
        return (_DICT, *((k, freeze(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    try:
        hash(obj)
    except TypeError:
        return repr(obj)
    return obj  # type: ignore[no-any-return]


_RELEVANT_EXTRAS: Final = frozenset(
    {"name", "__openai_role__", "tool_calls", "function_call"}
)
_NOT_MESSAGE, _PLAIN, _AI, _TOOL, _CHAT = -1, 0, 1, 2, 3
_KINDS: dict[type, int] = {}


def _kind(cls: type) -> int:
    """Classify a message class once; later lookups are a dict hit.

    NB: ``isinstance`` against pydantic models runs pydantic's Python-level
    ``__instancecheck__`` (over 100 ns), too slow for a per-message hot path.
    """
    kind = _KINDS.get(cls)
    if kind is None:
        if not issubclass(cls, BaseMessage):
            kind = _NOT_MESSAGE
        elif issubclass(cls, ToolMessage):
            kind = _TOOL
        elif issubclass(cls, AIMessage):
            kind = _AI
        elif issubclass(cls, ChatMessage):
            kind = _CHAT
        else:
            kind = _PLAIN
        _KINDS[cls] = kind
    return kind


def all_messages(items: Iterable[Any]) -> bool:
    """Whether every item is a `BaseMessage` (a class-cached ``isinstance``)."""
    kinds = _KINDS
    for item in items:
        kind = kinds.get(type(item))
        if kind is None:
            kind = _kind(type(item))
        if kind == _NOT_MESSAGE:
            return False
    return True


def memo_key(message: BaseMessage) -> Hashable:
    """A cheap process-local key: equal keys mean equal features.

    The key holds the content's hash and length, not the content: the memo must
    not keep message texts (or base64 images) alive. Python caches a string's
    hash on the string, so keying a message seen before costs O(1). A false
    match needs a 64-bit hash collision between two equally long texts.
    """
    # NB: no getattr(message, name, default) here: on a pydantic model a
    # missing attribute costs microseconds (it builds an AttributeError).
    content = message.content
    if content.__class__ is str:
        h, n = hash(content), len(content)
    else:
        h, n = hash(freeze(content)), -1
    cls = type(message)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _kind(cls)
    if kind == _TOOL:
        # A tool message's name and additional_kwargs are not sent.
        return (cls, h, n, message.tool_call_id)  # type: ignore[attr-defined]
    extra = message.additional_kwargs
    extras = (
        0
        if not extra or _RELEVANT_EXTRAS.isdisjoint(extra)
        else hash(
            freeze(
                (
                    extra.get("name"),
                    extra.get("__openai_role__"),
                    extra.get("tool_calls"),
                    extra.get("function_call"),
                )
            )
        )
    )
    if kind == _AI:
        calls = message.tool_calls  # type: ignore[attr-defined]
        invalid = message.invalid_tool_calls  # type: ignore[attr-defined]
        if calls or invalid:
            return (
                cls,
                h,
                n,
                message.name,
                extras,
                hash(freeze(calls)),
                hash(freeze(invalid)),
            )
    elif kind == _CHAT:
        return (cls, h, n, message.name, extras, message.role)  # type: ignore[attr-defined]
    return (cls, h, n, message.name, extras)


_ROLES: Final = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
)


def _role(message: BaseMessage) -> str:
    """The role OpenAI sees, as langchain-openai assigns it."""
    if isinstance(message, ChatMessage):
        return message.role
    if isinstance(message, SystemMessage):
        return str(message.additional_kwargs.get("__openai_role__", "system"))
    for cls, role in _ROLES:
        if isinstance(message, cls):
            return role
    return message.type


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


def message_digest(message: BaseMessage, parts: MessageParts) -> int:
    """Stable xxh3_64 of the role, raw content, name, tool calls and tool-call id.

    The raw content (not the extracted parts) is hashed so that blocks a local
    count ignores (files, audio) still tell messages apart.
    """
    payload = [
        parts.role,
        parts.name,
        message.content,
        [list(call) for call in parts.tool_calls],
        parts.tool_call_id,
    ]
    text = json.dumps(
        payload,
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))
