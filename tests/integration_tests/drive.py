"""Calling a chat model the ways users do, and reading what was billed.

`call(llm, mode, prompts)` sends each prompt by ``invoke``, ``stream``,
``ainvoke``, ``astream`` or ``batch`` and returns the replies (a stream's
chunks merged). Async modes run in one event loop per call of `call`, so a
client's pooled connections never outlive their loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable

__all__ = ["MODES", "billed", "call"]

MODES = ("invoke", "stream", "ainvoke", "astream", "batch")


def _merge(chunks: list[Any]) -> BaseMessage:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


async def _acall(
    llm: Runnable[Any, Any], mode: str, prompts: Sequence[Any]
) -> list[Any]:
    out = []
    for prompt in prompts:
        if mode == "ainvoke":
            out.append(await llm.ainvoke(prompt))
        else:
            out.append(_merge([c async for c in llm.astream(prompt)]))
    return out


def call(
    llm: Runnable[LanguageModelInput, Any], mode: str, prompts: Sequence[Any]
) -> list[BaseMessage]:
    """Send each prompt by ``mode``; the replies in order."""
    if mode == "invoke":
        return [llm.invoke(p) for p in prompts]
    if mode == "stream":
        return [_merge(list(llm.stream(p))) for p in prompts]
    if mode == "batch":
        return list(llm.batch(list(prompts)))
    return asyncio.run(_acall(llm, mode, prompts))


def billed(usage: Any) -> dict[str, int]:
    """A `UsageMetadata` in the keys `App.totals` uses."""
    usage = usage or {}
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    return {
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
        "cache_read": inp.get("cache_read", 0),
        "cache_creation": inp.get("cache_creation", 0),
        "reasoning": out.get("reasoning", 0),
    }
