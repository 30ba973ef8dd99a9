"""What the fake models answer: deterministic text or tool calls.

A reply depends only on the turns received, so every run of a test sends the
same conversation. With tools bound, a user question is answered after 1-3
rounds of tool calls (the number derived from the question); without tools,
in text of 15-160 words.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.integration_tests.wire import Call

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.integration_tests.wire import Tool, Turn

__all__ = ["Answer", "answer", "example_value", "seed_of"]

_WORDS = [
    "the",
    "model",
    "reads",
    "every",
    "report",
    "and",
    "adjusts",
    "its",
    "estimate",
    "of",
    "the",
    "prompt",
    "before",
    "sending",
    "a",
    "request",
    "so",
    "that",
    "trimming",
    "keeps",
    "the",
    "history",
    "inside",
    "the",
    "window",
    "while",
    "budgets",
    "stay",
    "honest",
    "about",
    "cost",
    "latency",
    "and",
    "limits",
    "each",
    "tool",
    "returns",
    "data",
    "that",
    "becomes",
    "part",
    "of",
    "the",
    "next",
    "prompt",
    "including",
    "numbers",
    "like",
    "42",
    "and",
    "2048",
    "or",
    "names",
    "such",
    "as",
    "Zürich",
    "São",
    "Paulo",
    "and",
    "Kraków",
    "weather",
    "forecasts",
    "show",
    "rain",
    "tomorrow",
    "with",
    "temperatures",
    "near",
    "17",
    "degrees",
    "the",
    "query",
    "matched",
    "three",
    "documents",
    "in",
    "the",
    "index",
]


@dataclass(frozen=True)
class Answer:
    """A reply: text, tool calls and (when asked for) thinking."""

    text: str
    calls: tuple[Call, ...]
    thinking: str = ""


def seed_of(*parts: Any) -> int:
    """A stable 64-bit seed from values' reprs (the same on every run)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(repr(p).encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "big")


def example_value(  # noqa: PLR0911 - one return per JSON schema type
    schema: dict[str, Any], rng: random.Random, depth: int = 0
) -> Any:
    """A value that validates against a simple JSON schema."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or [{}]
        return example_value(rng.choice(options), rng, depth)
    kind = schema.get("type", "string")
    if kind == "object" and depth < 3:
        required = set(schema.get("required") or ())
        return {
            k: example_value(v, rng, depth + 1)
            for k, v in (schema.get("properties") or {}).items()
            if k in required or rng.random() < 0.5
        }
    if kind == "array":
        return [
            example_value(schema.get("items") or {}, rng, depth + 1)
            for _ in range(rng.randint(1, 3))
        ]
    if kind == "integer":
        return rng.randint(1, 500)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))


def _text(rng: random.Random, low: int = 15, high: int = 160) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(low, high))]
    sentences, i = [], 0
    while i < len(words):
        n = rng.randint(6, 18)
        chunk = words[i : i + n]
        sentences.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + ".")
        i += n
    return " ".join(sentences)


def answer(
    turns: Sequence[Turn],
    tools: Sequence[Tool],
    *,
    call_id: Any,
    max_calls: int = 2,
    thinking: bool = False,
    salt: Any = None,
    force: str | None = None,
) -> Answer:
    """The reply to a conversation (``call_id(rng)`` makes a provider's ids).

    ``force`` names a tool the request requires (``tool_choice``): it is called.
    """
    question_at = max((i for i, t in enumerate(turns) if t.role == "user"), default=-1)
    question = turns[question_at].text if question_at >= 0 else ""
    rounds = sum(
        1 for t in turns[question_at + 1 :] if t.role == "assistant" and t.calls
    )
    rng = random.Random(seed_of(question, len(turns), rounds, salt))
    wanted = 1 + seed_of(question) % 3
    think = _text(rng, 8, 40) if thinking else ""
    last = turns[-1].role if turns else "user"
    forced = [t for t in tools if t.name == force]
    if forced:
        return Answer(
            "",
            (Call(call_id(rng), force, example_value(forced[0].parameters, rng)),),
            think,
        )
    if tools and last in ("user", "tool") and rounds < wanted:
        n = 1 if max_calls == 1 or rng.random() < 0.7 else 2
        calls = tuple(
            Call(call_id(rng), tool.name, example_value(tool.parameters, rng))
            for tool in (rng.choice(list(tools)) for _ in range(n))
        )
        return Answer("", calls, think)
    return Answer(_text(rng), (), think)
