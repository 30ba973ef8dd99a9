"""Small pieces the provider-shaped apps share: ids, stream pieces, JSON."""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

__all__ = ["common_prefix", "dumps", "json_schema", "make_id", "pieces"]

_ALNUM = string.ascii_letters + string.digits


def make_id(rng: random.Random, prefix: str, n: int = 24) -> str:
    """A provider-looking id: ``prefix`` and ``n`` letters or digits."""
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(n))


def pieces(text: str, size: int = 12) -> list[str]:
    """A text cut into stream deltas."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def dumps(value: Any) -> str:
    """JSON as the servers write it (UTF-8, not escaped)."""
    return json.dumps(value, ensure_ascii=False)


def json_schema(fmt: Any) -> dict[str, Any] | None:
    """The JSON schema of a ``response_format`` (Chat) or ``text.format`` (Responses)."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    inner = fmt.get("json_schema", fmt)  # Chat nests it; Responses does not
    schema = inner.get("schema")
    return schema if isinstance(schema, dict) else None


def common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of two rendered prompts (a prefix cache)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
