"""Message normalization for local counting: parts, memo keys and digests.

A LangChain message reaches a counter in many shapes: string or block content
(OpenAI, Anthropic, LangChain v0 and v1 standard blocks), tool calls parsed or
raw, names in a field or in ``additional_kwargs``. `message_parts` reduces it to
what a chat-completions prompt renders: role, name, text pieces, images, tool
calls and tool-call id, following langchain-openai's message conversion;
`plain_parts` does it cheaply for the usual shape (string content, no tool
calls).

`memo_key` keys a message for the counters' memo (process-local, cheap);
`memo_lookup` keys a whole list and looks it up in one pass, the hot path of
counting a history seen before. `message_digest` is the stable hash that
knowledge about a message is kept under.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

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
    "memo_lookup",
    "message_digest",
    "message_parts",
    "plain_digest",
    "plain_parts",
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
V = TypeVar("V")
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
    """Turn JSON-like data into a hashable value, equal iff the JSON is equal.

    Strings are kept as they are, so their cached hashes are reused (a long
    argument or base64 image is not rescanned). Floats and booleans are
    tagged with their type. Unhashable leaves fall back to their ``repr``.
    """
    # Exact type checks first: isinstance against the Mapping ABC costs
    # hundreds of nanoseconds, and tool calls are keyed on every count.
    cls = type(obj)
    if cls is str or cls is int or obj is None:
        return obj  # type: ignore[no-any-return]
    if cls is float or cls is bool:
        # 1, 1.0 and True are equal and hash alike, but their JSON differs.
        return (cls, obj)
    if cls is dict or (cls is not list and isinstance(obj, Mapping)):
        # String and int leaves inline: a call per leaf would double the cost.
        return (
            _DICT,
            *[
                (k, v)
                if type(v) is str or type(v) is int or v is None
                else (k, freeze(v))
                for k, v in obj.items()
            ],
        )
    if cls is list or isinstance(obj, (list, tuple)):
        return tuple([freeze(v) for v in obj])
    try:
        hash(obj)
    except TypeError:
        return repr(obj)
    return obj  # type: ignore[no-any-return]


_RELEVANT_EXTRAS: Final = frozenset(
    {"name", "__openai_role__", "tool_calls", "function_call"}
)
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_NOT_MESSAGE, _PLAIN, _AI, _TOOL, _CHAT = -1, 0, 1, 2, 3
_KINDS: dict[type, int] = {}
# The classes of each kind seen so far, for `memo_lookup`'s dispatch (a set
# membership test is one bytecode; a dict.get is a method call).
_PLAIN_CLASSES: set[type] = set()
_AI_CLASSES: set[type] = set()
_TOOL_CLASSES: set[type] = set()
# The role of each message class whose role is fixed (SystemMessage's holds
# unless additional_kwargs override it, which `plain_parts` checks first).
_FIXED_ROLES: dict[type, str] = {}
_ROLE_CLASSES: Final = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
    (SystemMessage, "system"),
)


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
        if kind not in (_CHAT, _NOT_MESSAGE):
            for base, role in _ROLE_CLASSES:
                if issubclass(cls, base):
                    _FIXED_ROLES[cls] = role
                    break
        _KINDS[cls] = kind
        by_kind = {_PLAIN: _PLAIN_CLASSES, _AI: _AI_CLASSES, _TOOL: _TOOL_CLASSES}
        if kind in by_kind:
            by_kind[kind].add(cls)
    return kind


def all_messages(items: Iterable[Any]) -> bool:
    """Whether every item is a `BaseMessage` (a class-cached ``isinstance``)."""
    kinds = _KINDS
    # The distinct classes, collected in C: usually four or five.
    for cls in set(map(type, items)):
        kind = kinds.get(cls)
        if kind is None:
            kind = _kind(cls)
        if kind == _NOT_MESSAGE:
            return False
    return True


def memo_key(message: BaseMessage) -> int:
    """A cheap process-local key: equal keys mean equal features.

    The key is ``hash()`` of a tuple of the message's class, content, name and
    the other fields its count depends on. A string's hash is cached on the
    string, so keying a message seen before costs O(1), and the memo keeps no
    text (or base64 image) alive. A false match needs a collision of the
    64-bit hash (``Py_hash_t`` on 64-bit builds): with a million distinct
    messages memoized, about one chance in 37 million. Keys are process-local
    (string hashing is salted per process) and never persisted. `memo_lookup`
    computes the same keys for many messages at once.
    """
    cls = type(message)
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _kind(cls)
    # NB: no getattr(message, name, default) here: on a pydantic model a
    # missing attribute costs microseconds (it builds an AttributeError).
    content = message.content
    frozen = content if type(content) is str else freeze(content)
    if kind == _TOOL:
        # A tool message's name and additional_kwargs are not sent.
        return hash((cls, frozen, message.tool_call_id))  # type: ignore[attr-defined]
    extra = message.additional_kwargs
    extras = None if not extra or _RELEVANT_EXTRAS.isdisjoint(extra) else _extras(extra)
    if kind == _AI:
        calls = message.tool_calls  # type: ignore[attr-defined]
        invalid = message.invalid_tool_calls  # type: ignore[attr-defined]
        if calls or invalid:
            return _calls_key((cls, frozen, message.name, extras), calls, invalid)
    elif kind == _CHAT:
        return hash((cls, frozen, message.name, extras, message.role))  # type: ignore[attr-defined]
    if extras is None:
        return hash((cls, frozen, message.name))
    return hash((cls, frozen, message.name, extras))


def _extras(extra: Mapping[str, Any]) -> Hashable:
    """The ``additional_kwargs`` a count reads, frozen."""
    return freeze(
        (
            extra.get("name"),
            extra.get("__openai_role__"),
            extra.get("tool_calls"),
            extra.get("function_call"),
        )
    )


def _calls_key(head: tuple[Any, ...], calls: list[Any], invalid: list[Any]) -> int:
    """The key of an AI message with tool calls: what a count reads of each.

    Flat arguments (the usual case) are keyed by their items and the types of
    their values (1, 1.0 and True hash alike but serialize differently);
    nested ones through `freeze`.

    Args:
        head: ``(class, content, name, extras)``, content and extras frozen.
        calls: ``tool_calls``.
        invalid: ``invalid_tool_calls``.
    """
    try:
        parts = list(head)
        for call in calls:
            args = call["args"]
            types = tuple(map(type, args.values()))
            if not _SCALARS.issuperset(types):
                raise TypeError  # noqa: TRY301 - nested arguments: freeze them
            parts += (call["name"], call["id"], tuple(args.items()), types)
        if invalid:
            parts.append(freeze(invalid))
        return hash(tuple(parts))
    except (TypeError, KeyError, AttributeError):
        return hash(
            (
                *head,
                tuple(
                    [
                        (call.get("name"), call.get("id"), freeze(call.get("args")))
                        for call in calls
                    ]
                ),
                freeze(invalid),
            )
        )


def memo_lookup(  # noqa: C901 - inlined per kind: a call per message costs more
    messages: Iterable[Any], get: Callable[[int], V]
) -> tuple[list[int], list[V]] | None:
    """Key every message (`memo_key`) and look each key up with ``get``.

    The hot path of counting a history seen before. The common shapes (no
    tool calls, no name or role in ``additional_kwargs``) are keyed inline,
    the same way `memo_key` keys them, reading the fields from the pydantic
    model's ``__dict__``: ``BaseModel`` defines ``__getattr__``, which makes
    each attribute read several times slower than a dict lookup. Anything
    else, or anything that fails here, goes to `memo_key`.

    Returns:
        The keys and what ``get`` returned for each, or None if an item is
        not a `BaseMessage`.
    """
    plain, ai, tool = _PLAIN_CLASSES, _AI_CLASSES, _TOOL_CLASSES
    disjoint = _RELEVANT_EXTRAS.isdisjoint
    keys: list[int] = []
    found: list[V] = []
    add_key = keys.append
    add_found = found.append
    for message in messages:
        cls = type(message)
        try:
            if cls in plain:
                fields = message.__dict__
                extra = fields["additional_kwargs"]
                if not extra or disjoint(extra):
                    # Block content (a list) is unhashable: memo_key's case.
                    key = hash((cls, fields["content"], fields["name"]))
                    add_key(key)
                    add_found(get(key))
                    continue
            elif cls in ai:
                fields = message.__dict__
                extra = fields["additional_kwargs"]
                if not extra or disjoint(extra):
                    calls = fields["tool_calls"]
                    invalid = fields["invalid_tool_calls"]
                    content = fields["content"]
                    if not (calls or invalid):
                        key = hash((cls, content, fields["name"]))
                        add_key(key)
                        add_found(get(key))
                        continue
                    if type(content) is str:
                        key = _calls_key(
                            (cls, content, fields["name"], None), calls, invalid
                        )
                        add_key(key)
                        add_found(get(key))
                        continue
            elif cls in tool:
                fields = message.__dict__
                key = hash((cls, fields["content"], fields["tool_call_id"]))
                add_key(key)
                add_found(get(key))
                continue
            elif _kind(cls) == _NOT_MESSAGE:
                return None
        except (TypeError, KeyError):
            pass
        key = memo_key(message)
        add_key(key)
        add_found(get(key))
    return keys, found


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
    role = _FIXED_ROLES.get(cls)
    if role is None:  # a class never seen, a ChatMessage or an unusual class
        _kind(cls)
        role = _FIXED_ROLES.get(cls)
        if role is None:
            return None
    # The fields straight from the pydantic model's __dict__ (see memo_lookup).
    fields = message.__dict__
    content = fields.get("content")
    if type(content) is not str:
        return None
    if cls in _TOOL_CLASSES:
        return role, None, fields.get("tool_call_id"), content
    extra = fields.get("additional_kwargs")
    if (extra and not _RELEVANT_EXTRAS.isdisjoint(extra)) or (
        cls in _AI_CLASSES
        and (fields.get("tool_calls") or fields.get("invalid_tool_calls"))
    ):
        return None
    name = fields.get("name")
    return role, None if not name else str(name), None, content


def _role(message: BaseMessage) -> str:
    """The role OpenAI sees, as langchain-openai assigns it."""
    cls = type(message)
    if _kind(cls) == _CHAT:
        return message.role  # type: ignore[attr-defined, no-any-return]
    role = _FIXED_ROLES.get(cls)
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


def plain_digest(
    role: str, name: str | None, tool_call_id: str | None, content: bytes
) -> int:
    """Stable xxh3_64 of a message with string content and no tool calls.

    The content's UTF-8 bytes are hashed as they are, seeded with a hash of
    the role, name and tool-call id: no JSON encoding of the text.

    Args:
        role: The OpenAI role.
        name: The participant name, or None.
        tool_call_id: The id a tool message answers, or None.
        content: ``content.encode("utf-8", "surrogatepass")``.
    """
    # repr of a tuple of strings and None is unambiguous and process-stable.
    seed = xxhash.xxh3_64_intdigest(
        repr((role, name, tool_call_id)).encode("utf-8", "surrogatepass")
    )
    return xxhash.xxh3_64_intdigest(content, seed)


def message_digest(message: BaseMessage, parts: MessageParts) -> int:
    """Stable xxh3_64 of the role, raw content, name, tool calls and tool-call id.

    The raw content (not the extracted parts) is hashed so that blocks a local
    count ignores (files, audio) still tell messages apart. String content
    without tool calls, the usual case, takes `plain_digest`.
    """
    content = message.content
    if isinstance(content, str) and not parts.tool_calls:
        return plain_digest(
            parts.role,
            parts.name,
            parts.tool_call_id,
            content.encode("utf-8", "surrogatepass"),
        )
    payload = [
        parts.role,
        parts.name,
        content,
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
