"""A decided reply as LangChain messages: one ``AIMessage`` or a stream of chunks.

`Reply` holds everything one call answers (text, tool calls, true counts); it
places ``usage_metadata`` the way providers do: on the message, on the last
chunk only (``"final"``), as running totals on every chunk (``"cumulative"``,
like Gemini and vLLM), or nowhere (``"none"``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

from langchain_tokencal.testing._replies import split_words

if TYPE_CHECKING:
    from collections.abc import Iterator

    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.messages.tool import ToolCall

__all__ = ["Reply", "UsageMode"]

UsageMode = Literal["final", "cumulative", "none"]


@dataclass(frozen=True, slots=True)
class Reply:
    """Everything one call answers, shared by the invoke and stream paths.

    Immutable, so thread-safe. ``output_tokens`` includes ``reasoning_tokens``;
    ``cache_read_tokens`` is already capped at ``input_tokens``.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    text_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    model_name: str
    provider: str
    message_id: str

    def usage(self, output_tokens: int) -> UsageMetadata:
        """Return the usage reported with ``output_tokens`` of output so far."""
        # A cast: mypy, checking as Python 3.10, misses langchain-core's
        # typing.NotRequired and would demand the optional detail keys.
        usage = cast(
            "UsageMetadata",
            {
                "input_tokens": self.input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": self.input_tokens + output_tokens,
            },
        )
        if self.cache_read_tokens:
            usage["input_token_details"] = {"cache_read": self.cache_read_tokens}
        if self.reasoning_tokens:
            usage["output_token_details"] = {"reasoning": self.reasoning_tokens}
        return usage

    def response_metadata(self) -> dict[str, Any]:
        """Return the metadata of the whole response (model, provider, finish)."""
        return {
            "model_name": self.model_name,
            "model_provider": self.provider,
            "finish_reason": "tool_calls" if self.tool_calls else "stop",
        }

    def message(self, *, report_usage: bool) -> AIMessage:
        """Return the reply as the message ``invoke`` answers."""
        return AIMessage(
            content=self.text,
            tool_calls=list(self.tool_calls),
            id=self.message_id,
            response_metadata=self.response_metadata(),
            usage_metadata=self.usage(self.output_tokens) if report_usage else None,
        )

    def chunks(self, mode: UsageMode) -> Iterator[ChatGenerationChunk]:
        """Split the reply into chunks carrying usage as ``mode`` says."""
        pieces = split_words(self.text)
        cumulative = mode == "cumulative"
        provider = {"model_provider": self.provider}
        sent = 0
        for piece in pieces:
            sent += len(piece)
            usage = None
            if cumulative:
                # Running totals, as Gemini and vLLM stream them: each chunk
                # repeats the input and the output so far.
                so_far = self.reasoning_tokens + self.text_tokens * sent // len(
                    self.text
                )
                usage = self.usage(so_far)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    id=self.message_id,
                    response_metadata=dict(provider),
                    usage_metadata=usage,
                )
            )
        for index, call in enumerate(self.tool_calls):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    id=self.message_id,
                    response_metadata=dict(provider),
                    tool_call_chunks=[
                        tool_call_chunk(
                            name=call["name"],
                            args=json.dumps(call["args"], ensure_ascii=False),
                            id=call["id"],
                            index=index,
                        )
                    ],
                    usage_metadata=(
                        self.usage(self.output_tokens) if cumulative else None
                    ),
                )
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=self.message_id,
                response_metadata=self.response_metadata(),
                usage_metadata=(
                    self.usage(self.output_tokens) if mode != "none" else None
                ),
                chunk_position="last",
            )
        )
