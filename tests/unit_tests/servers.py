"""Servers that misreport prompt tokens, as LangChain chat models see them.

Two kinds, both offline:

- `FakeUsageChatModel` subclasses whose reported ``input_tokens`` is what a
  misbehaving server would send: only the tokens its prompt cache missed,
  the size of a prompt cut to a context window, a tokenizer that counts a
  fixed share of the truth, a template that drops earlier reasoning;
- HTTP handlers for ``httpx.MockTransport`` shaped like an Ollama
  ``/api/chat``, a vLLM ``/v1/chat/completions`` stream with
  ``continuous_usage_stats``, and an Anthropic-compatible ``/v1/messages``
  whose stream sends output-only ``message_delta`` usage, so the real
  partner clients (``ChatOllama``, ``ChatOpenAI``, ``ChatAnthropic``) talk to
  them without a socket.

Each server counts prompts with a hidden template: o200k tokens of each
message's role and text, plus a few template tokens per message.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import re
from typing import TYPE_CHECKING, Any

import tiktoken
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from pydantic import PrivateAttr

from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal.testing._answer import Reply

_WORDS = (
    "tide",
    "moon",
    "orbit",
    "ocean",
    "pressure",
    "river",
    "delta",
    "basin",
    "current",
    "wind",
    "storm",
    "coast",
    "harbor",
    "vessel",
    "anchor",
    "sail",
    "chart",
    "compass",
    "latitude",
    "longitude",
    "depth",
    "sonar",
    "reef",
    "coral",
    "algae",
    "plankton",
    "salinity",
    "thermocline",
    "upwelling",
    "estuary",
    "lagoon",
    "glacier",
)


def text(seed: int, words: int) -> str:
    """Deterministic prose of about ``words`` words (a little punctuation)."""
    rng = random.Random(seed)
    out = []
    for i in range(words):
        word = rng.choice(_WORDS)
        out.append(word + ("." if i % 11 == 10 else ""))
    return " ".join(out).capitalize() + "."


# -- fake chat models -------------------------------------------------------


def _shared_prefix(a: Sequence[BaseMessage], b: Sequence[BaseMessage]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x.type != y.type or x.content != y.content:
            break
        n += 1
    return n


class UncachedOnlyChatModel(FakeUsageChatModel):
    """Reports only the prompt tokens its cache missed (an Ollama release did).

    The cache holds the previous prompt and, with ``cache_replies``, the reply
    generated for it (Ollama keeps the generated tokens): the messages a new
    prompt shares with it from the start cost nothing in ``input_tokens``.
    """

    cache_replies: bool = True
    _last: list[BaseMessage] = PrivateAttr(default_factory=list)

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Reply:
        reply = super()._reply(messages, stop, kwargs)
        shared = _shared_prefix(messages, self._last)
        self._last = list(messages)
        if self.cache_replies:
            self._last.append(AIMessage(reply.text))
        if not shared:
            return reply
        tools = kwargs.get("tools")
        hit = self.true_prompt_tokens(messages[:shared], tools) - self.framing_tokens
        return dataclasses.replace(reply, input_tokens=max(reply.input_tokens - hit, 1))


class TruncatingChatModel(FakeUsageChatModel):
    """Cuts prompts to ``num_ctx`` tokens and reports the cut prompt's size.

    ``drop_messages=False`` cuts tokens (Ollama's runner keeps the start and
    the end: exactly ``num_ctx``); ``True`` drops the oldest messages after
    the system message until the prompt fits (Ollama's chat template path).
    """

    num_ctx: int = 2048
    drop_messages: bool = False

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Reply:
        reply = super()._reply(messages, stop, kwargs)
        if reply.input_tokens <= self.num_ctx:
            return reply
        count = self.num_ctx
        if self.drop_messages:
            kept = list(messages)
            tools = kwargs.get("tools")
            first = 1 if kept and isinstance(kept[0], SystemMessage) else 0
            while len(kept) > first + 1 and self.true_prompt_tokens(kept, tools) > (
                self.num_ctx
            ):
                del kept[first]
            count = min(self.true_prompt_tokens(kept, tools), self.num_ctx)
        return dataclasses.replace(reply, input_tokens=count)


class ScaledChatModel(FakeUsageChatModel):
    """An honest server whose tokenizer counts ``scale`` times the hidden one."""

    scale: float = 1.0

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Reply:
        reply = super()._reply(messages, stop, kwargs)
        return dataclasses.replace(
            reply, input_tokens=max(round(reply.input_tokens * self.scale), 1)
        )


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


class StripReasoningChatModel(FakeUsageChatModel):
    """An honest server whose template drops earlier replies' ``<think>`` text.

    Its replies open with a long ``<think>`` section (inline, as reasoning
    models served without a reasoning parser answer), which the next prompt
    does not count: the local count of the history is far above the truth.
    """

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Reply:
        reply = super()._reply(messages, stop, kwargs)
        stripped = [
            m.model_copy(update={"content": _THINK.sub("", m.content)})
            if isinstance(m, AIMessage) and isinstance(m.content, str)
            else m
            for m in messages
        ]
        count = self.true_prompt_tokens(stripped, kwargs.get("tools"))
        thought = f"<think>{text(len(messages), 400)}</think>"
        return dataclasses.replace(reply, text=thought + "Yes.", input_tokens=count)


# -- HTTP servers for the partner clients -----------------------------------


@functools.cache
def _encoding() -> tiktoken.Encoding:
    """o200k_base, loaded on first use.

    At import the offline cache the test fixtures point tiktoken at is not
    set yet.
    """
    return tiktoken.get_encoding("o200k_base")


def hidden_count(messages: Sequence[dict[str, Any]]) -> int:
    """The servers' true prompt size: a Llama-3-like template over o200k."""
    total = 1 + 4  # begin-of-text, and the assistant header that primes the reply
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = " ".join(str(b.get("text", "")) for b in content)
        total += (
            4 + len(_encoding().encode(m["role"])) + len(_encoding().encode(content))
        )
    return total


class OllamaServer:
    """An Ollama ``/api/chat`` (NDJSON) that may misreport ``prompt_eval_count``.

    Args:
        uncached_only: Count only the messages the previous prompt did not
            start with (the prompt cache's misses).
        drop_messages: With ``options.num_ctx``, drop the oldest messages
            after the system message until the prompt fits (else cut tokens:
            exactly ``num_ctx``).
    """

    def __init__(self, *, uncached_only: bool = False, drop_messages: bool = False):
        """A server with no prompt seen yet."""
        self.uncached_only = uncached_only
        self.drop_messages = drop_messages
        self.truths: list[int] = []
        self._last: list[dict[str, Any]] = []
        self._calls = 0

    def __call__(self, request: Any) -> Any:
        """Answer one ``/api/chat`` request."""
        import httpx  # noqa: PLC0415 - the ollama client's own httpx

        body = json.loads(request.content)
        messages = body["messages"]
        true = hidden_count(messages)
        self.truths.append(true)
        reported = true
        num_ctx = (body.get("options") or {}).get("num_ctx")
        if num_ctx and true > num_ctx:
            reported = num_ctx
            if self.drop_messages:
                kept = list(messages)
                first = 1 if kept and kept[0]["role"] == "system" else 0
                while len(kept) > first + 1 and hidden_count(kept) > num_ctx:
                    del kept[first]
                reported = min(hidden_count(kept), num_ctx)
        if self.uncached_only:
            shared = 0
            for a, b in zip(messages, self._last, strict=False):
                if (a["role"], a.get("content")) != (b["role"], b.get("content")):
                    break
                shared += 1
            if shared:
                reported = max(true - (hidden_count(messages[:shared]) - 5), 1)
        self._calls += 1
        reply = text(1000 + self._calls, 40 + 7 * (self._calls % 9))
        # The cache keeps the generated reply too.
        self._last = [*messages, {"role": "assistant", "content": reply}]
        done = {
            "model": body["model"],
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1,
            "prompt_eval_count": reported,
            "eval_count": len(_encoding().encode(reply)),
        }
        lines = [
            {
                "model": body["model"],
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": reply},
                "done": False,
            },
            done,
        ]
        if body.get("stream") is False:
            done["message"] = {"role": "assistant", "content": reply}
            return httpx.Response(200, json=done)
        return httpx.Response(
            200,
            text="".join(json.dumps(line) + "\n" for line in lines),
            headers={"content-type": "application/x-ndjson"},
        )


def _sse(events: Sequence[tuple[str | None, dict[str, Any] | str]]) -> str:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out)


class VllmServer:
    """A vLLM ``/v1/chat/completions`` streaming with ``continuous_usage_stats``.

    Every chunk carries the cumulative usage (the prompt's count and the
    completion so far); the last, choice-less chunk carries the whole call's.
    """

    def __init__(self) -> None:
        """A server with no prompt seen yet."""
        self.truths: list[int] = []
        self._calls = 0

    def __call__(self, request: Any) -> Any:
        """Answer one ``/v1/chat/completions`` request."""
        import httpx2  # noqa: PLC0415 - the openai client's own httpx

        body = json.loads(request.content)
        prompt = hidden_count(body["messages"])
        self.truths.append(prompt)
        self._calls += 1
        words = text(2000 + self._calls, 30).split()
        base = {"id": f"cmpl-{self._calls}", "created": 1, "model": body["model"]}
        if not body.get("stream"):
            reply = " " + " ".join(words)
            done = len(_encoding().encode(reply))
            return httpx2.Response(
                200,
                json={
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": done,
                        "total_tokens": prompt + done,
                    },
                },
            )
        events: list[tuple[str | None, dict[str, Any] | str]] = []
        done = 0
        for i, word in enumerate(words):
            done += len(_encoding().encode(" " + word))
            last = i == len(words) - 1
            events.append(
                (
                    None,
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": " " + word}
                                if i == 0
                                else {"content": " " + word},
                                "finish_reason": "stop" if last else None,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": done,
                            "total_tokens": prompt + done,
                        },
                    },
                )
            )
        events.append(
            (
                None,
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": done,
                        "total_tokens": prompt + done,
                    },
                },
            )
        )
        events.append((None, "[DONE]"))
        return httpx2.Response(
            200, text=_sse(events), headers={"content-type": "text/event-stream"}
        )


class AnthropicCompatibleServer:
    """An Anthropic-compatible ``/v1/messages``: honest replies, output-only streams.

    A reply reports ``input_tokens``; a stream's ``message_start`` reports 0
    and its ``message_delta`` only ``output_tokens`` (as some compatible
    servers send them).
    """

    def __init__(self) -> None:
        """A server with no prompt seen yet."""
        self.truths: list[int] = []

    def __call__(self, request: Any) -> Any:
        """Answer one ``/v1/messages`` request."""
        import httpx2  # noqa: PLC0415 - the anthropic client's own httpx

        body = json.loads(request.content)
        messages = list(body["messages"])
        system = body.get("system")
        if system:
            if isinstance(system, list):
                system = " ".join(b.get("text", "") for b in system)
            messages.insert(0, {"role": "system", "content": system})
        prompt = hidden_count(messages)
        self.truths.append(prompt)
        reply = text(3000 + len(self.truths), 25)
        out = len(_encoding().encode(reply))
        message = {
            "id": f"msg_{len(self.truths)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        if not body.get("stream"):
            message.update(
                content=[{"type": "text", "text": reply}],
                stop_reason="end_turn",
                usage={"input_tokens": prompt, "output_tokens": out},
            )
            return httpx2.Response(200, json=message)
        events: list[tuple[str | None, dict[str, Any] | str]] = [
            ("message_start", {"type": "message_start", "message": message}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": reply},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return httpx2.Response(
            200, text=_sse(events), headers={"content-type": "text/event-stream"}
        )
