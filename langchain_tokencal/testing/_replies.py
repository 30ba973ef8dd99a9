"""What the fake model says: deterministic replies, tool calls and example values.

Everything here is seeded by the prompt (`prompt_digest`), never by global
random state: prose, bullets, code, JSON or a little CJK of 10 to 400 tokens,
arguments and values that validate against a JSON schema, the tool a reply
calls, and the word pieces a reply streams in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import TYPE_CHECKING, Any, cast

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall, tool_call
from pydantic import BaseModel

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing._template import canonical_json, role_of

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Sequence

    from langchain_core.messages import BaseMessage

__all__ = [
    "choose_tool",
    "compose_reply",
    "example_value",
    "make_tool_call",
    "prompt_digest",
    "schema_of_response_format",
    "split_words",
    "topic",
]

_MIN_REPLY = 10
_MAX_REPLY = 400
_WORDS_PER_CHUNK = 3
_TOPIC_CHARS = 60
_WORD_RE = re.compile(r"\s*\S+")

_VOCABULARY = (
    "model", "token", "budget", "context", "window", "request", "answer", "cache",
    "latency", "prompt", "history", "summary", "agent", "tool", "schema", "value",
    "result", "error", "retry", "limit", "count", "message", "system", "user",
    "simple", "careful", "quick", "stable", "large", "small", "recent", "exact",
    "estimate", "measure", "compare", "update", "return", "collect", "report",
    "improve", "reduce", "the", "a", "of", "to", "and", "in", "for", "with", "on",
    "this", "that", "each", "every", "because", "while", "after", "before", "so",
    "data", "file", "queue", "server", "client", "record", "stream", "chunk",
    "weather", "city", "river", "garden", "market", "library", "journey", "bridge",
    "morning", "evening", "question", "reason", "pattern", "detail", "example",
)  # fmt: skip
# The first 41 words are nouns, adjectives and verbs: usable as identifiers.
_IDENTIFIERS = _VOCABULARY[:41]
_CJK_SENTENCES = (
    "这个问题的答案取决于上下文的长度。",
    "我们可以先统计令牌再决定是否需要总结。",
    "東京の天気は晴れのち曇りです。",
    "ありがとうございます。結果を確認しました。",
    "모델은 응답마다 사용량을 보고합니다.",
)
_OPENERS = (
    "Here is what I found about {topic}.",
    "Good question about {topic}; let me walk through it.",
    "Regarding {topic}, the short answer is below.",
    "Let me think about {topic} step by step.",
)


def _text_of(content: str | list[str | dict[str, Any]]) -> str:
    """Join the text blocks of a content (for seeding replies, not counting)."""
    if isinstance(content, str):
        return content
    parts = [
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") == "text"
    ]
    return "\n".join(parts)


def prompt_digest(messages: Sequence[BaseMessage]) -> bytes:
    """Return the digest of a prompt's roles, texts and tool calls: the seed."""
    hasher = hashlib.blake2b(digest_size=16)
    for message in messages:
        hasher.update(role_of(message).encode())
        hasher.update(b"\x1f")
        hasher.update(_text_of(message.content).encode("utf-8", "surrogatepass"))
        if isinstance(message, AIMessage) and message.tool_calls:
            hasher.update(canonical_json(message.tool_calls).encode())
        hasher.update(b"\x1e")
    return hasher.digest()


def topic(messages: Sequence[BaseMessage]) -> str:
    """Return the first words of the last user message, for the reply's opener."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            words = _text_of(message.content).split()[:8]
            found = " ".join(words)[:_TOPIC_CHARS].strip(" .?!,:;")
            if found:
                return found
    return "your request"


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_VOCABULARY, k=rng.randint(6, 18))
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "!", "?"))


def _prose(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(1, 4)))


def _bullets(rng: random.Random) -> str:
    return "\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 5)))


def _code_block(rng: random.Random) -> str:
    name, arg, other = (rng.choice(_IDENTIFIERS) for _ in range(3))
    limit = rng.randint(2, 4096)
    return (
        f"```python\ndef {name}_{other}({arg}: list[int]) -> int:\n"
        f'    """Return the clipped total of {arg}."""\n'
        f"    return min(sum({arg}), {limit})\n```"
    )


def _json_block(rng: random.Random) -> str:
    keys = rng.sample(_IDENTIFIERS, rng.randint(2, 5))
    payload = {
        key: rng.choice((rng.randint(0, 999), rng.choice(_VOCABULARY))) for key in keys
    }
    return f"```json\n{json.dumps(payload, indent=2)}\n```"


def _cjk(rng: random.Random) -> str:
    return rng.choice(_CJK_SENTENCES)


_PARTS = (_prose, _prose, _prose, _bullets, _code_block, _json_block, _cjk)


def compose_reply(about: str, rng: random.Random, count: Callable[[str], int]) -> str:
    """Build a reply of a log-uniform target length between 10 and 400 tokens."""
    target = _MIN_REPLY * math.exp(rng.random() * math.log(_MAX_REPLY / _MIN_REPLY))
    parts = [f"{rng.choice(_OPENERS).format(topic=about)} {_sentence(rng)}"]
    # Parts are counted one by one (plus one for the blank line joining them):
    # re-encoding the growing draft each time cost most of a call.
    tokens = count(parts[0])
    while tokens < target:
        part = rng.choice(_PARTS)(rng)
        part_tokens = count(part) + 1
        if tokens + part_tokens > _MAX_REPLY:
            break
        parts.append(part)
        tokens += part_tokens
    text = "\n\n".join(parts)
    while len(parts) > 1 and count(text) > _MAX_REPLY:
        parts.pop()
        text = "\n\n".join(parts)
    return text


def split_words(text: str) -> list[str]:
    """Split a text into stream pieces of a few words that join back exactly."""
    words = _WORD_RE.findall(text)
    if not words:
        return [text] if text else []
    words[-1] += text[sum(map(len, words)) :]
    return [
        "".join(words[i : i + _WORDS_PER_CHUNK])
        for i in range(0, len(words), _WORDS_PER_CHUNK)
    ]


def schema_of_response_format(response_format: Any) -> dict[str, Any] | None:
    """Return the JSON schema inside a ``response_format``, if it holds one."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if not isinstance(response_format, dict):
        return None
    inner = response_format.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    schema = schema if isinstance(schema, dict) else response_format.get("schema")
    if isinstance(schema, dict):
        return cast("dict[str, Any]", schema)
    return response_format if "properties" in response_format else None


def example_value(schema: dict[str, Any], rng: random.Random) -> Any:
    """Build a deterministic value that validates against a simple JSON schema."""
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        usable = [o for o in options if o.get("type") != "null"] or options
        return example_value(usable[0], rng)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "array":
        return [example_value(schema.get("items", {}), rng)]
    if kind == "object":
        return _example_object(schema, rng)
    return _example_scalar(kind, rng)


def _example_scalar(kind: str, rng: random.Random) -> Any:
    scalars: dict[str, Callable[[], Any]] = {
        "string": lambda: rng.choice(_VOCABULARY),
        "integer": lambda: rng.randint(1, 100),
        "number": lambda: round(rng.uniform(0, 100), 2),
        "boolean": lambda: True,
    }
    make = scalars.get(kind)
    return None if make is None else make()


def _example_object(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    names = schema.get("required") or list(properties)
    return {name: example_value(properties.get(name, {}), rng) for name in names}


def choose_tool(
    tools: list[dict[str, Any]],
    tool_choice: Any,
    messages: list[BaseMessage],
    call: int,
    every: int,
) -> dict[str, Any] | None:
    """Return the bound tool a reply calls, or ``None`` for a text reply.

    A forcing ``tool_choice`` picks its tool; otherwise, every ``every``-th
    ``call`` (``every > 0``) calls the first tool, unless the last message is a
    tool result (so agent loops end).

    Raises:
        ConfigError: When ``tool_choice`` names no bound tool.
    """
    if not tools or tool_choice in (None, False, "auto", "none"):
        ends_with_result = bool(messages) and isinstance(messages[-1], ToolMessage)
        due = every > 0 and call % every == 0 and not ends_with_result
        return tools[0] if tools and tool_choice != "none" and due else None
    if tool_choice in (True, "any", "required"):
        return tools[0]
    name = tool_choice
    if isinstance(tool_choice, dict):
        name = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
    for tool in tools:
        if tool["function"]["name"] == name:
            return tool
    known = ", ".join(tool["function"]["name"] for tool in tools)
    msg = f"tool_choice {tool_choice!r} names no bound tool; bound tools: {known}."
    raise ConfigError(msg)


def make_tool_call(
    tool: dict[str, Any], digest: bytes, call: int, rng: random.Random
) -> ToolCall:
    """Build a call of ``tool`` whose arguments validate against its schema.

    The id derives from the prompt's digest and the call number, so it repeats
    for the same prompt and call, like the arguments.
    """
    function = tool["function"]
    args = _example_object(function.get("parameters", {}), rng)
    seed = digest + str(call).encode()
    call_id = f"call_{hashlib.blake2b(seed, digest_size=12).hexdigest()}"
    return tool_call(name=function["name"], args=args, id=call_id)
