"""An Ollama-shaped ``/api/chat`` on loopback, serving Qwen 3 (``qwen3:8b``).

Streams are NDJSON: one object a line with a piece of ``message.content``
(tool calls as whole objects in one line, arguments as JSON objects), then a
``done: true`` line carrying ``prompt_eval_count``, ``eval_count`` and the
durations. With ``"stream": false`` that last object holds the whole message.
With ``omit_cached=True`` it behaves as older Ollama releases did: a prompt
evaluated before (served from the KV cache) gets no ``prompt_eval_count``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, Reply, ndjson
from tests.integration_tests.replies import answer
from tests.integration_tests.truth import Qwen3
from tests.integration_tests.wire import from_ollama

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["OllamaApp"]

_CREATED = "2025-11-28T10:15:42.123456789Z"


class OllamaApp(App):
    """``/api/chat`` with Qwen 3's template and vocabulary."""

    def __init__(self, *, omit_cached: bool = False) -> None:
        """``omit_cached=True``: no ``prompt_eval_count`` for a prompt seen before."""
        super().__init__()
        self.template = Qwen3()
        self.omit_cached = omit_cached
        self._seen: set[str] = set()

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        if path != "/api/chat":
            return Reply(404, {"error": f"no route {path}"})
        turns, tools = from_ollama(body)
        text = self.template.render(turns, tools)
        prompt = self.template.count(text)
        with self.lock:
            cached = text in self._seen
            self._seen.add(text)
        a = answer(turns, tools, call_id=lambda rng: "")
        output = self.template.reply_tokens(a.text, a.calls)
        model = str(body["model"])
        self.bill(Bill(model, prompt, output))
        calls = [{"function": {"name": c.name, "arguments": c.args}} for c in a.calls]
        final = {
            "model": model,
            "created_at": _CREATED,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_843_000_000,
            "load_duration": 21_000_000,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": 112_000_000,
            "eval_count": output,
            "eval_duration": 1_650_000_000,
        }
        if cached and self.omit_cached:
            del final["prompt_eval_count"], final["prompt_eval_duration"]
        if body.get("stream") is False:
            message: dict[str, Any] = {"role": "assistant", "content": a.text}
            if calls:
                message["tool_calls"] = calls
            return Reply(body={**final, "message": message})
        return Reply(
            chunks=ndjson(self._lines(model, a.text, calls, final)),
            content_type="application/x-ndjson",
        )

    def _lines(
        self, model: str, text: str, calls: list[dict[str, Any]], final: dict[str, Any]
    ) -> Iterator[dict[str, Any]]:
        for i in range(0, len(text), 10):
            yield {
                "model": model,
                "created_at": _CREATED,
                "message": {"role": "assistant", "content": text[i : i + 10]},
                "done": False,
            }
        if calls:
            yield {
                "model": model,
                "created_at": _CREATED,
                "message": {"role": "assistant", "content": "", "tool_calls": calls},
                "done": False,
            }
        yield final
