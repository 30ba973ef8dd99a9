"""A Bedrock-Runtime-shaped Converse API on loopback (Claude on Bedrock).

``POST /model/{modelId}/converse`` answers one JSON document;
``/converse-stream`` answers AWS's binary event stream
(``application/vnd.amazon.eventstream``: each message a prelude with its
lengths and CRC-32, ``:event-type``/``:content-type``/``:message-type``
string headers, a JSON payload, and a CRC-32 of the whole), the events
``messageStart``, ``contentBlockStart``/``Delta``/``Stop``, ``messageStop`` and
``metadata`` (the usage, last). botocore signs and parses them as it does
against AWS: nothing in the client is replaced.

Counts follow Anthropic's on Bedrock: ``inputTokens`` excludes cache reads
and writes, reported beside it as ``cacheReadInputTokens`` and
``cacheWriteInputTokens``; a ``cachePoint`` block marks what is cached.
"""

from __future__ import annotations

import binascii
import json
import random
import struct
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, Reply
from tests.integration_tests.replies import answer, seed_of
from tests.integration_tests.shapes import dumps, make_id, pieces
from tests.integration_tests.truth import ClaudeLike
from tests.integration_tests.wire import from_bedrock

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration_tests.replies import Answer

__all__ = ["BedrockApp", "event_message"]

_CHOICES = {"auto": "auto", "any": "any", "tool": "tool"}


def _header(name: str, value: str) -> bytes:
    raw, text = name.encode(), value.encode()
    # Header: name length, name, value type 7 (string), value length, value.
    return bytes([len(raw)]) + raw + b"\x07" + struct.pack(">H", len(text)) + text


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message of AWS's event stream, CRCs and all."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", "event")
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message))


class BedrockApp(App):
    """Converse and ConverseStream with a Claude-like hidden template."""

    def __init__(self) -> None:
        """Nothing cached yet."""
        super().__init__()
        self.template = ClaudeLike()
        self._cached: set[str] = set()

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        parts = path.strip("/").split("/")
        if (
            len(parts) != 3
            or parts[0] != "model"
            or parts[2]
            not in {
                "converse",
                "converse-stream",
            }
        ):
            return Reply(404, {"message": f"no route {path}"})
        model = unquote(parts[1])
        turns, tools = from_bedrock(body)
        choice_doc = (body.get("toolConfig") or {}).get("toolChoice") or {}
        choice = next((_CHOICES[k] for k in choice_doc if k in _CHOICES), "auto")
        prompt = self.template.prompt_tokens(
            turns, tools, {"tool_choice": {"type": choice}}
        )
        read, write = self._caching(body, prompt)
        forced = (choice_doc.get("tool") or {}).get("name")
        a = answer(
            turns,
            tools,
            call_id=lambda rng: make_id(rng, "tooluse_", 22),
            force=forced,
        )
        output = self.template.reply_tokens(a.text, a.calls)
        self.bill(Bill(model, prompt, output, cache_read=read, cache_creation=write))
        usage = {
            "inputTokens": prompt - read - write,
            "outputTokens": output,
            "totalTokens": prompt + output,
        }
        if read or write:
            usage["cacheReadInputTokens"] = read
            usage["cacheWriteInputTokens"] = write
        stop = "tool_use" if a.calls else "end_turn"
        if parts[2] == "converse":
            content: list[dict[str, Any]] = [{"text": a.text}] if a.text else []
            content += [
                {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.args}}
                for c in a.calls
            ]
            return Reply(
                body={
                    "output": {"message": {"role": "assistant", "content": content}},
                    "stopReason": stop,
                    "usage": usage,
                    "metrics": {"latencyMs": 431},
                }
            )
        return Reply(
            chunks=self._stream(a, stop, usage),
            content_type="application/vnd.amazon.eventstream",
        )

    def _caching(self, body: dict[str, Any], prompt: int) -> tuple[int, int]:
        """Tokens read from and written to the prompt cache (a ``cachePoint``).

        The cached prefix is everything up to the first ``cachePoint`` block
        (system blocks, then messages): read when an earlier request had the
        same prefix, else written. It stands for three quarters of the prompt.
        """
        prefix: list[Any] = []
        blocks = [*(body.get("system") or ())] + [
            block for m in body.get("messages", ()) for block in m.get("content", ())
        ]
        for block in blocks:
            if "cachePoint" in block:
                break
            prefix.append(block)
        else:
            return 0, 0
        key = dumps(prefix)
        part = prompt * 3 // 4
        with self.lock:
            seen = key in self._cached
            self._cached.add(key)
        return (part, 0) if seen else (0, part)

    def _stream(self, a: Answer, stop: str, usage: dict[str, Any]) -> Iterator[bytes]:
        rng = random.Random(seed_of(a.text, stop))
        yield event_message("messageStart", {"role": "assistant", "p": "abc"})
        index = 0
        if a.text:
            for piece in pieces(a.text):
                yield event_message(
                    "contentBlockDelta",
                    {"contentBlockIndex": index, "delta": {"text": piece}},
                )
            yield event_message("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        for c in a.calls:
            yield event_message(
                "contentBlockStart",
                {
                    "contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": c.id, "name": c.name}},
                },
            )
            text = dumps(c.args)
            cut = rng.randint(0, len(text))
            for piece in (text[:cut], text[cut:]):
                yield event_message(
                    "contentBlockDelta",
                    {
                        "contentBlockIndex": index,
                        "delta": {"toolUse": {"input": piece}},
                    },
                )
            yield event_message("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        yield event_message("messageStop", {"stopReason": stop})
        yield event_message("metadata", {"usage": usage, "metrics": {"latencyMs": 388}})
