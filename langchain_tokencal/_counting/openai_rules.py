"""OpenAI's published token accounting: encodings, images, function definitions.

Facts, not code, from public OpenAI material:

- Encodings: ``o200k_base`` for the gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and o-series
  families, ``cl100k_base`` for gpt-4, gpt-3.5-turbo and the v3 embeddings.
- Chat messages: 3 tokens per message, the role's tokens, the name's tokens plus
  1, and 3 tokens priming the reply (cookbook "How to count tokens with
  tiktoken", section 6).
- Function definitions (same notebook, section 7, ``num_tokens_for_tools``):
  per function ``func_init`` + tokens of ``"name:description"`` (one trailing
  period dropped); if it has properties, ``prop_init`` once and per property
  ``prop_key`` + tokens of ``"key:type:description"``; an enum adds
  ``enum_init`` once and ``enum_item`` + the item's tokens per item;
  ``func_end`` once per tool set. The constants differ for the gpt-4o family
  (o200k_base) and the gpt-4 / gpt-3.5 family (cl100k_base).
- Images (vision guide, "calculating costs"): ``detail: low`` costs 85; else
  scale to fit 2048x2048, then scale the shortest side down to 768, and count
  170 per 512px tile plus 85.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_tokencal.errors import ConfigError, UnknownModelError

__all__ = [
    "CL100K_TOOL_RULES",
    "DEFAULT_IMAGE_TOKENS",
    "LOW_DETAIL_IMAGE_TOKENS",
    "O200K_TOOL_RULES",
    "ToolRules",
    "encoding_for_model",
    "function_tokens",
    "image_size",
    "image_tokens",
    "normalize_tool",
    "tile_tokens",
]

LOW_DETAIL_IMAGE_TOKENS: Final = 85
"""An image sent with ``detail: low``."""

DEFAULT_IMAGE_TOKENS: Final = 765
"""An image of unknown size: the cost of a 1024x1024 image at high detail
(scaled to 768x768, 4 tiles: 4 x 170 + 85). Image URLs are never fetched."""

# At most this many base64 characters are decoded to read an image header:
# 64 KiB of bytes, enough to get past the EXIF block of a typical JPEG.
_HEADER_CHARS: Final = 87_384


@dataclass(frozen=True, slots=True)
class ToolRules:
    """The cookbook's constants for counting function definitions."""

    func_init: int
    prop_init: int
    prop_key: int
    enum_init: int
    enum_item: int
    func_end: int


O200K_TOOL_RULES: Final = ToolRules(7, 3, 3, -3, 3, 12)
"""gpt-4o, gpt-4o-mini (and, by extension, every o200k_base model)."""

CL100K_TOOL_RULES: Final = ToolRules(10, 3, 3, -3, 3, 12)
"""gpt-4, gpt-3.5-turbo (every cl100k_base model)."""


def tile_tokens(width: int, height: int) -> int:
    """Tokens of a high-detail image of the given size (OpenAI's tile rule)."""
    if width <= 0 or height <= 0:
        return LOW_DETAIL_IMAGE_TOKENS
    if width > 2048 or height > 2048:  # noqa: PLR2004 - the published bound
        if width > height:
            width, height = 2048, height * 2048 // width
        else:
            width, height = width * 2048 // height, 2048
    if width > 768 and height > 768:  # noqa: PLR2004 - the published bound
        if width > height:
            width, height = width * 768 // height, 768
        else:
            width, height = 768, height * 768 // width
    tiles = -(-width // 512) * -(-height // 512)
    return 170 * tiles + 85


def image_tokens(source: str | None, detail: str | None) -> int:
    """Tokens of one image part: low detail, tiles by size, or the default.

    Args:
        source: An image URL, a ``data:`` URL or bare base64 data; only a
            header of inline data is ever decoded, URLs are never fetched.
        detail: OpenAI's ``detail`` (``"low"``, ``"high"``, ``"auto"``) or None.
    """
    if detail == "low":
        return LOW_DETAIL_IMAGE_TOKENS
    size = image_size(source) if source else None
    if size is None:
        return DEFAULT_IMAGE_TOKENS
    return tile_tokens(*size)


def image_size(source: str) -> tuple[int, int] | None:
    """Read (width, height) from the header of inline PNG, GIF, WebP or JPEG data.

    Returns ``None`` for URLs and for data it cannot read.
    """
    if source.startswith("data:"):
        comma = source.find(",")
        if comma < 0 or ";base64" not in source[:comma]:
            return None
        source = source[comma + 1 :]
    elif "://" in source[:16]:
        return None
    head = source[:_HEADER_CHARS]
    head = head[: len(head) - len(head) % 4]
    try:
        data = base64.b64decode(head)
    except (binascii.Error, ValueError):
        return None
    return _sniff(data)


def _sniff(data: bytes) -> tuple[int, int] | None:
    """Read the size from a PNG, GIF, WebP or JPEG header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:  # noqa: PLR2004
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:  # noqa: PLR2004
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:  # noqa: PLR2004
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Read the size of a WebP (lossy, lossless or extended)."""
    chunk = data[12:16]
    if chunk == b"VP8 ":
        return (
            int.from_bytes(data[26:28], "little") & 0x3FFF,
            int.from_bytes(data[28:30], "little") & 0x3FFF,
        )
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    return None


# JPEG start-of-frame markers carry the size; C4, C8 and CC are other segments.
_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk JPEG segments to the first start-of-frame marker."""
    i, end = 2, len(data) - 9
    while i < end:
        if data[i] != 0xFF:  # noqa: PLR2004 - segment marker prefix
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # noqa: PLR2004 - fill byte
            i += 1
            continue
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _strip_period(text: str) -> str:
    """Drop one trailing period, as OpenAI's rendering of descriptions does."""
    return text.removesuffix(".")


def _type_name(schema: Mapping[str, Any]) -> str:
    """The ``type`` of a property schema as one string."""
    kind = schema.get("type", "")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind)


def _properties_tokens(
    properties: Mapping[str, Any],
    rules: ToolRules,
    count: Callable[[str], float],
) -> float:
    """Tokens of a ``properties`` mapping by the cookbook's per-property rule.

    The cookbook stops at the first level. Nested object properties (and
    arrays of objects) are counted with the same rule, recursively, because
    OpenAI renders them inline and skipping them undercounts nested schemas.
    """
    total = float(rules.prop_init)
    for key, raw in properties.items():
        schema: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        total += rules.prop_key
        enum = schema.get("enum")
        if isinstance(enum, list):
            total += rules.enum_init
            for item in enum:
                total += rules.enum_item + count(str(item))
        description = _strip_period(str(schema.get("description", "")))
        total += count(f"{key}:{_type_name(schema)}:{description}")
        nested = schema.get("properties")
        items = schema.get("items")
        if not isinstance(nested, Mapping) and isinstance(items, Mapping):
            nested = items.get("properties")
        if isinstance(nested, Mapping) and nested:
            total += _properties_tokens(nested, rules, count)
    return total


def function_tokens(
    tools: list[dict[str, Any]],
    rules: ToolRules,
    count: Callable[[str], float],
) -> float:
    """Tokens of a tool set in OpenAI format, by the cookbook's rules.

    A tool that is not a function (a built-in such as ``web_search_preview``)
    counts as the tokens of its JSON.

    Args:
        tools: Tools normalized to ``{"type": "function", "function": {...}}``.
        rules: The model family's constants.
        count: Tokens of a string.

    Returns:
        The tool set's tokens; 0 for no tools.
    """
    if not tools:
        return 0.0
    total = float(rules.func_end)
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, Mapping):
            total += count(json.dumps(tool, ensure_ascii=False, default=str))
            continue
        total += rules.func_init
        description = _strip_period(str(function.get("description") or ""))
        total += count(f"{function.get('name', '')}:{description}")
        parameters = function.get("parameters")
        properties = (
            parameters.get("properties") if isinstance(parameters, Mapping) else None
        )
        if isinstance(properties, Mapping) and properties:
            total += _properties_tokens(properties, rules, count)
    return total


_MODEL_PREFIXES: Final[dict[str, str]] = {
    "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base",
    "gpt-4.1": "o200k_base",
    "gpt-4.5": "o200k_base",
    "gpt-5": "o200k_base",
    "o1": "o200k_base",
    "o3": "o200k_base",
    "o4": "o200k_base",
    # gpt-oss uses o200k_harmony: o200k_base plus special tokens that ordinary
    # text never encodes to, so o200k_base counts the same.
    "gpt-oss": "o200k_base",
    "gpt-4": "cl100k_base",
    "gpt-3.5": "cl100k_base",
    "gpt-35": "cl100k_base",  # Azure model names
    "text-embedding-3": "cl100k_base",
    "text-embedding-ada-002": "cl100k_base",
    "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base",
}
# A known model name inside a longer one ("prod-gpt-4o-eastus"); longest first so
# that "gpt-4o" wins over "gpt-4" at the same position.
_MODEL_SEARCH: Final = re.compile(
    r"(?:^|[^a-z0-9.])("
    + "|".join(re.escape(p) for p in sorted(_MODEL_PREFIXES, key=len, reverse=True))
    + ")"
)


def encoding_for_model(model: str) -> str:
    """Name the tiktoken encoding of an OpenAI model.

    The longest known prefix wins (``gpt-4o-mini-2024-07-18`` is ``gpt-4o``,
    not ``gpt-4``). Provider prefixes (``openai/gpt-4o``), fine-tune names
    (``ft:gpt-4o-mini:org::id``) and Azure deployment names that contain a
    model name (``prod-gpt-4o``) resolve too.

    Args:
        model: A model or deployment name.

    Returns:
        ``"o200k_base"`` or ``"cl100k_base"``.

    Raises:
        UnknownModelError: If no known OpenAI model name matches.

    Example:
        ```python
        from langchain_tokencal._counting import encoding_for_model

        assert encoding_for_model("gpt-4o-mini") == "o200k_base"
        assert encoding_for_model("openai/gpt-4") == "cl100k_base"
        ```
    """
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    name = name.rsplit("/", 1)[-1]
    best = max(
        (p for p in _MODEL_PREFIXES if name.startswith(p)), key=len, default=None
    )
    if best is None and (match := _MODEL_SEARCH.search(name)):
        best = match.group(1)
    if best is None:
        known = ", ".join(sorted(_MODEL_PREFIXES))
        msg = (
            f"Cannot map model {model!r} to a tiktoken encoding; known OpenAI model "
            f"prefixes: {known}. For other models use "
            "local_counter(model, provider=...) for an approximate count."
        )
        raise UnknownModelError(msg)
    return _MODEL_PREFIXES[best]


def _without_nones(value: Any) -> Any:
    """JSON-like data without its ``None`` entries, at every depth."""
    if isinstance(value, Mapping):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


def _builtin(tool: Any) -> dict[str, Any] | None:
    """A provider's built-in tool as sent, or None if ``tool`` is not one.

    OpenAI's and Anthropic's name their kind in ``type`` (``web_search``,
    ``web_search_20250305``...); Gemini's are keys holding their options
    (``{"google_search": {}}``; the callbacks see google-genai's ``Tool``
    dump, every other kind present as ``None``). ``None`` entries are
    dropped, so both forms are one tool.
    """
    if not isinstance(tool, Mapping):
        return None
    kind = tool.get("type")
    kept = _without_nones(tool)
    if isinstance(kind, str) and kind != "function":
        return kept  # type: ignore[no-any-return]
    if kept and all(isinstance(v, Mapping) for v in kept.values()):
        return kept  # type: ignore[no-any-return]
    return None


def normalize_tool(tool: Any) -> dict[str, Any]:
    """Convert any tool LangChain accepts to the OpenAI tool format.

    A provider's built-in tool (web search, code execution) has no schema to
    convert: it is kept as it is, its JSON counted as its schema, and what
    the provider adds for it is learned per tool set.
    """
    try:
        return convert_to_openai_tool(tool)
    except Exception as err:
        builtin = _builtin(tool)
        if builtin is not None:
            return builtin
        msg = (
            f"Cannot read the tool {tool!r:.80} as a schema ({err}). Pass an OpenAI "
            'dict {"type": "function", "function": {...}}, an Anthropic dict with '
            "input_schema, a BaseTool, a pydantic class or a typed function."
        )
        raise ConfigError(msg) from err
