"""Mistral's chat completions stream: whole tool calls, usage on the finishing chunk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.integration_tests.shapes import dumps, pieces

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration_tests.replies import Answer

__all__ = ["mistral_chunks"]


def mistral_chunks(
    head: dict[str, Any], a: Answer, usage: dict[str, Any]
) -> Iterator[Any]:
    """Mistral's stream: whole tool calls, the usage on the finishing chunk."""
    base = {**head, "object": "chat.completion.chunk"}
    yield {
        **base,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": None,
            }
        ],
    }
    for piece in pieces(a.text) if a.text else ():
        yield {
            **base,
            "choices": [
                {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            ],
        }
    if a.calls:
        calls = [
            {
                "id": c.id,
                "function": {"name": c.name, "arguments": dumps(c.args)},
                "index": k,
            }
            for k, c in enumerate(a.calls)
        ]
        yield {
            **base,
            "choices": [
                {"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}
            ],
        }
    finish = "tool_calls" if a.calls else "stop"
    yield {
        **base,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": finish}],
        "usage": usage,
    }
    yield "[DONE]"
