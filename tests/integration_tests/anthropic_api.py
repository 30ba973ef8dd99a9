"""An Anthropic-shaped Messages API on loopback.

``POST /v1/messages`` answers as Anthropic does: ``usage.input_tokens``
excludes the cache, ``cache_read_input_tokens``/``cache_creation_input_tokens``
and the ``cache_creation`` TTL breakdown come from the request's
``cache_control`` breakpoints (a simulated cache: a prefix is written the first
time a breakpoint ends it, read afterwards), thinking blocks when ``thinking``
is enabled (``output_tokens_details.thinking_tokens``), ``tool_use`` blocks
with ``stop_reason: tool_use``. Streams are SSE: ``message_start`` (the input
counts and a placeholder output), ``content_block_start/delta/stop``,
``ping``, ``message_delta`` with the cumulative usage (with the input counts,
or, with ``delta_input=False``, output only as older servers and some
Anthropic-compatible ones send it), ``message_stop``.

A ``web_search`` server tool runs on the server: the reply holds
``server_tool_use`` and ``web_search_tool_result`` blocks, the search results
are billed as input (``message_start`` has the prompt alone, the final usage
the prompt plus the results) and ``usage.server_tool_use`` counts requests.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, Reply, sse
from tests.integration_tests.replies import answer, seed_of
from tests.integration_tests.shapes import make_id
from tests.integration_tests.truth import ClaudeLike
from tests.integration_tests.wire import from_anthropic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration_tests.wire import Tool, Turn

__all__ = ["AnthropicApp"]

SERVED = {"claude-sonnet-4-5": "claude-sonnet-4-5-20250929"}
CACHE_MIN = 64  # tokens a breakpoint's prefix needs to be cached (1024 upstream)


class AnthropicApp(App):
    """Messages with a Claude-like hidden template and a prompt cache."""

    def __init__(self, *, delta_input: bool = True) -> None:
        """``delta_input=False``: ``message_delta`` reports output tokens only."""
        super().__init__()
        self.template = ClaudeLike()
        self.delta_input = delta_input
        self._cache: set[tuple[str, str]] = set()  # (ttl, prefix text) written

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        if not path.endswith("/v1/messages"):
            return Reply(
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": path},
                },
            )
        return self.messages(body)

    def _caching(
        self, turns: list[Turn], tools: list[Tool], choice: str
    ) -> tuple[int, int, int]:
        """Cache read, 5m write and 1h write tokens of this request."""
        t = self.template
        tools_cost = t.tools_tokens(tools, choice)
        marks = [
            (i, turn.cache) for i, turn in enumerate(turns) if turn.cache is not None
        ]
        read = 0
        writes = {"5m": 0, "1h": 0}
        done = 0  # tokens of the prefix already accounted for
        for i, ttl in marks:
            text = t.render(turns[: i + 1], tools, prompt=False)
            tokens = t.FRAMING + tools_cost + t.count(text)
            if tokens < CACHE_MIN:
                continue
            with self.lock:
                hit = any((x, text) in self._cache for x in ("5m", "1h"))
                self._cache.add((str(ttl), text))
            if hit:
                read = tokens
            else:
                writes["1h" if ttl == "1h" else "5m"] += max(
                    tokens - max(done, read), 0
                )
            done = tokens
        return read, writes["5m"], writes["1h"]

    def messages(self, body: dict[str, Any]) -> Reply:
        """``POST /v1/messages``: one reply, as JSON or as an SSE stream."""
        turns, tools = from_anthropic(body)
        choice = (body.get("tool_choice") or {}).get("type", "auto")
        prompt = self.template.prompt_tokens(
            turns, tools, {"tool_choice": body.get("tool_choice")}
        )
        searching = any(
            str(t.get("type", "")).startswith("web_search")
            for t in body.get("tools") or ()
        )
        if searching and turns and turns[-1].role == "user":
            return self._search(body, turns, prompt)
        client_tools = [t for t in tools if t.name != "web_search"]
        read, write_5m, write_1h = self._caching(turns, tools, choice)
        read = min(read, prompt)
        write_1h = min(write_1h, prompt - read)
        write_5m = min(write_5m, prompt - read - write_1h)
        write = write_5m + write_1h
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        forced = (body.get("tool_choice") or {}).get("name")
        a = answer(
            turns,
            client_tools,
            call_id=lambda rng: make_id(rng, "toolu_01", 22),
            thinking=thinking,
            force=forced,
        )
        thinking_tokens = self.template.count(a.thinking) if a.thinking else 0
        output = self.template.reply_tokens(a.text, a.calls, a.thinking)
        model = SERVED.get(body["model"], body["model"])
        self.bill(
            Bill(
                model,
                prompt,
                output,
                cache_read=read,
                cache_creation=write,
                reasoning=thinking_tokens,
            )
        )
        rng = random.Random(seed_of(body.get("messages"), "msg"))
        content: list[dict[str, Any]] = []
        if a.thinking:
            content.append(
                {
                    "type": "thinking",
                    "thinking": a.thinking,
                    "signature": make_id(rng, "Sig", 40),
                }
            )
        if a.text:
            content.append({"type": "text", "text": a.text})
        content.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.args}
            for c in a.calls
        )
        usage: dict[str, Any] = {
            "input_tokens": prompt - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": write_5m,
                "ephemeral_1h_input_tokens": write_1h,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }
        if thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
        message = {
            "id": make_id(rng, "msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if a.calls else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return Reply(body=message)
        return Reply(
            chunks=sse(self._events(message)), content_type="text/event-stream"
        )

    def _search(self, body: dict[str, Any], turns: list[Turn], prompt: int) -> Reply:
        """A web search run by the server, its results fed back as input."""
        rng = random.Random(seed_of(body.get("messages"), "search"))
        query = turns[-1].text[:60]
        results = [
            {
                "type": "web_search_result",
                "url": f"https://example.org/port-notices/{rng.randint(100, 999)}",
                "title": f"Port notice {rng.randint(1, 99)}",
                "encrypted_content": make_id(rng, "Eq", 200),
                "page_age": "2 days ago",
            }
            for _ in range(3)
        ]
        results_tokens = 700 + rng.randint(0, 900)  # the pages the model read
        a = answer(turns, [], call_id=lambda r: "")
        output = self.template.reply_tokens(a.text, ()) + 12
        model = SERVED.get(body["model"], body["model"])
        self.bill(Bill(model, prompt + results_tokens, output))
        use_id = make_id(rng, "srvtoolu_01", 22)
        message = {
            "id": make_id(rng, "msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [
                {
                    "type": "server_tool_use",
                    "id": use_id,
                    "name": "web_search",
                    "input": {"query": query},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": use_id,
                    "content": results,
                },
                {"type": "text", "text": a.text},
            ],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": prompt + results_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
                "server_tool_use": {"web_search_requests": 1},
                "service_tier": "standard",
            },
        }
        if not body.get("stream"):
            return Reply(body=message)
        return Reply(
            chunks=sse(self._events(message, start_input=prompt)),
            content_type="text/event-stream",
        )

    def _events(
        self, message: dict[str, Any], start_input: int | None = None
    ) -> Iterator[tuple[str, Any]]:
        usage = message["usage"]
        start_usage = {**usage, "output_tokens": 1}
        start_usage.pop("output_tokens_details", None)
        start_usage.pop("server_tool_use", None)
        if start_input is not None:
            start_usage["input_tokens"] = start_input
        start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
        yield "message_start", {"type": "message_start", "message": start}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            empty: dict[str, Any]
            if kind == "text":
                empty = {"type": "text", "text": ""}
            elif kind == "thinking":
                empty = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == "web_search_tool_result":
                empty = block  # arrives whole, no deltas
            else:
                empty = {**block, "input": {}}
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": empty,
                },
            )
            for delta in _deltas(block):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": delta,
                    },
                )
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        final: dict[str, Any] = {"output_tokens": usage["output_tokens"]}
        if self.delta_input:
            final = {
                "input_tokens": usage["input_tokens"],
                "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                "cache_read_input_tokens": usage["cache_read_input_tokens"],
                "output_tokens": usage["output_tokens"],
            }
            for extra in ("output_tokens_details", "server_tool_use"):
                if extra in usage:
                    final[extra] = usage[extra]
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": final,
            },
        )
        yield "message_stop", {"type": "message_stop"}


def _split(text: str, size: int = 16) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _deltas(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    kind = block["type"]
    if kind == "web_search_tool_result":
        return
    if kind == "text":
        for piece in _split(block["text"]):
            yield {"type": "text_delta", "text": piece}
    elif kind == "thinking":
        for piece in _split(block["thinking"]):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": block["signature"]}
    else:
        for piece in _split(json.dumps(block["input"])):
            yield {"type": "input_json_delta", "partial_json": piece}
