"""Memo keys and digests: how a message is recognised again.

`memo_key` keys a message for the counters' memo (process-local, cheap);
`memo_lookup` keys a whole list and looks it up in one pass, the hot path of
counting a history seen before. `message_digest` is the stable hash that
knowledge about a message is kept under, and `canonical_json` the one JSON
form the counting code hashes (message payloads, tool schemas). Thread-safe
(pure).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import xxhash
from langchain_core.messages import (
    convert_to_openai_image_block,
    is_data_content_block,
)

from langchain_tokencal._counting.kinds import (
    AI,
    AI_CLASSES,
    CHAT,
    KINDS,
    NOT_MESSAGE,
    PLAIN_CLASSES,
    RELEVANT_EXTRAS,
    TOOL,
    TOOL_CLASSES,
    kind_of,
)

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_tokencal._counting.parts import MessageParts

__all__ = [
    "canonical_json",
    "derive_key",
    "freeze",
    "keyed_digest",
    "memo_key",
    "memo_lookup",
    "message_digest",
    "plain_digest",
    "traced_content",
]

V = TypeVar("V")
_DICT: Final = object()  # marks frozen dicts so they never equal a frozen list
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def canonical_json(obj: Any) -> str:
    """The canonical JSON of JSON-like data: sorted keys, no spaces, not ASCII-escaped.

    Equal data gives equal text in every process, so its hash can key
    persisted knowledge. Values JSON cannot encode are written as ``str()``.

    Example:
        ```python
        from langchain_tokencal._counting.digests import canonical_json

        assert canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'
        ```
    """
    return json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )


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
    kind = KINDS.get(cls)
    if kind is None:
        kind = kind_of(cls)
    # NB: no getattr(message, name, default) here: on a pydantic model a
    # missing attribute costs microseconds (it builds an AttributeError).
    content = message.content
    frozen = content if type(content) is str else freeze(content)
    if kind == TOOL:
        # A tool message's name and additional_kwargs are not sent.
        return hash((cls, frozen, message.tool_call_id))  # type: ignore[attr-defined]
    extra = message.additional_kwargs
    extras = None if not extra or RELEVANT_EXTRAS.isdisjoint(extra) else _extras(extra)
    if kind == AI:
        calls = message.tool_calls  # type: ignore[attr-defined]
        invalid = message.invalid_tool_calls  # type: ignore[attr-defined]
        if calls or invalid:
            return _calls_key((cls, frozen, message.name, extras), calls, invalid)
    elif kind == CHAT:
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
    plain, ai, tool = PLAIN_CLASSES, AI_CLASSES, TOOL_CLASSES
    disjoint = RELEVANT_EXTRAS.isdisjoint
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
            elif kind_of(cls) == NOT_MESSAGE:
                return None
        except (TypeError, KeyError):
            pass
        key = memo_key(message)
        add_key(key)
        add_found(get(key))
    return keys, found


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
        traced_content(content),
        [list(call) for call in parts.tool_calls],
        parts.tool_call_id,
    ]
    text = canonical_json(payload)
    return xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))


def _traced_media(block: dict[str, Any], kind: str) -> dict[str, Any]:
    """An image or file block as the callbacks see it."""
    if not is_data_content_block(block):
        return block
    if kind == "image" and not ("file_id" in block or block.get("source_type") == "id"):
        return convert_to_openai_image_block(block)
    if kind == "file" and "base64" in block:
        rest = {k: v for k, v in block.items() if k != "base64"}
        return {**rest, "data": block["base64"], "source_type": "base64"}
    return block


def _traced_block(block: Any) -> Any:
    """One content block as LangChain passes it to ``on_chat_model_start``."""
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind in {"image", "file"}:
        return _traced_media(block, kind)
    if kind is None and len(block) == 1:
        key = next(iter(block))
        return {"type": key, key: block[key]}
    return block


def traced_content(content: Any) -> Any:
    """``content`` in the form the callbacks see, so both forms digest alike.

    LangChain rewrites some blocks before ``on_chat_model_start`` (its
    tracing format): a block with a single key and no ``type`` gets that key
    as its type (Bedrock's ``{"cachePoint": ...}``), a base64 or URL image
    block becomes an OpenAI ``image_url`` block, a base64 file block takes
    the older ``data``/``source_type`` keys. The handler learns from that
    form and users count their own: the same rewrite here makes the two
    digest alike. It is idempotent, so the callbacks' form is left as it is.

    Example:
        ```python
        from langchain_tokencal._counting.digests import traced_content

        block = {"cachePoint": {"type": "default"}}
        assert traced_content([block]) == [
            {"type": "cachePoint", "cachePoint": {"type": "default"}}
        ]
        ```
    """
    if not isinstance(content, list):
        return content
    return [_traced_block(b) for b in content]


def derive_key(secret: str) -> bytes:
    """The 32-byte key of `keyed_digest` for a ``hash_key`` of any length."""
    return hashlib.sha256(b"langchain-tokencal digests\0" + secret.encode()).digest()


def keyed_digest(digest: int, key: bytes) -> int:
    """A digest keyed with BLAKE2b: unguessable without the key.

    A store holds message digests. Unkeyed, whoever reads it can hash a
    guessed message and look for it; keyed, the digest of a guess cannot be
    computed without the key. The content is hashed once with xxh3 (fast,
    any length), and only its 8-byte digest goes through BLAKE2b (a fixed
    ~1 us per new message).

    Example:
        ```python
        from langchain_tokencal._counting.digests import derive_key, keyed_digest

        key = derive_key("s3cret")
        assert keyed_digest(42, key) == keyed_digest(42, key) != 42
        assert keyed_digest(42, derive_key("other")) != keyed_digest(42, key)
        ```
    """
    mac = hashlib.blake2b(digest.to_bytes(8, "little"), key=key, digest_size=8)
    return int.from_bytes(mac.digest(), "little")
