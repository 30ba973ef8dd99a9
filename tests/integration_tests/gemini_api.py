"""A Gemini-shaped ``generateContent`` API on loopback (``gemini-2.5-flash``).

``POST /{version}/models/{model}:generateContent`` answers one JSON
``GenerateContentResponse``; ``:streamGenerateContent?alt=sse`` answers
Server-Sent Events whose every chunk carries the usage *so far*
(cumulative, as Gemini does: the prompt count on each chunk, the candidate
count growing), the last one with ``finishReason``. 2.5 models think by
default: ``thoughtsTokenCount`` is billed as output (LangChain's reasoning).
A prompt whose beginning was served before reports part of it as
``cachedContentTokenCount`` (implicit caching; included in the prompt count).
A request grounded with ``googleSearch`` reports the search results it read
as ``toolUsePromptTokenCount``, billed as input beside the prompt.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, Reply, sse
from tests.integration_tests.replies import answer, seed_of
from tests.integration_tests.shapes import common_prefix, pieces
from tests.integration_tests.truth import GemmaLike
from tests.integration_tests.wire import from_gemini

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration_tests.replies import Answer

__all__ = ["GeminiApp"]


class GeminiApp(App):
    """``generateContent`` with a Gemma-like template and Llama 3's vocabulary."""

    def __init__(self) -> None:
        """Nothing cached yet."""
        super().__init__()
        self.template = GemmaLike()
        self._seen: list[str] = []

    def _cached(self, text: str) -> int:
        with self.lock:
            best = max((common_prefix(text, s) for s in self._seen), default=0)
            self._seen.append(text)
        tokens = self.template.count(text[:best]) if best else 0
        # Implicit caching starts at 1,024 tokens, in whole blocks.
        return tokens // 256 * 256 if tokens >= 1024 else 0

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        name, _, method = path.rpartition("/")[2].partition(":")
        if method not in {"generateContent", "streamGenerateContent"}:
            return Reply(404, {"error": {"code": 404, "message": f"no route {path}"}})
        turns, tools = from_gemini(body)
        text = self.template.render(turns, tools)
        prompt = self.template.count(text)
        cached = min(self._cached(text), prompt)
        a = answer(turns, tools, call_id=lambda rng: "")
        candidates = self.template.reply_tokens(a.text, a.calls)
        thoughts = 24 + seed_of(text) % 200 if name.startswith("gemini-2.5") else 0
        # Grounding with Google Search feeds the results back as a prompt of
        # its own, billed as input beside promptTokenCount.
        searched = any("googleSearch" in t for t in body.get("tools") or ())
        tool_use = 180 + seed_of(text, "search") % 300 if searched else 0
        self.bill(
            Bill(
                name,
                prompt + tool_use,
                candidates + thoughts,
                cache_read=cached,
                reasoning=thoughts,
            )
        )
        rng = random.Random(seed_of(text, "id"))
        head = {"modelVersion": name, "responseId": f"{rng.getrandbits(64):016x}"}
        counts = (prompt, cached, thoughts, tool_use)
        if method == "generateContent":
            return Reply(body=self._response(head, a, a.text, candidates, counts, True))
        return Reply(
            chunks=sse((None, c) for c in self._chunks(head, a, candidates, counts)),
            content_type="text/event-stream",
        )

    def _usage(
        self, counts: tuple[int, int, int, int], candidates: int
    ) -> dict[str, Any]:
        prompt, cached, thoughts, tool_use = counts
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts + tool_use,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if tool_use:
            usage["toolUsePromptTokenCount"] = tool_use
        if cached:
            usage["cachedContentTokenCount"] = cached
        return usage

    def _response(  # noqa: PLR0917 - one response's parts
        self,
        head: dict[str, Any],
        a: Answer,
        text: str,
        candidates: int,
        counts: tuple[int, int, int, int],
        final: bool,
    ) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        if final:
            parts += [
                {"functionCall": {"name": c.name, "args": c.args}} for c in a.calls
            ]
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "index": 0,
        }
        if final:
            candidate["finishReason"] = "STOP"
            if counts[3]:  # searched: what the answer is grounded on
                candidate["groundingMetadata"] = {
                    "webSearchQueries": ["port of Rotterdam news today"],
                    "groundingChunks": [
                        {"web": {"uri": "https://example.com/news", "title": "News"}}
                    ],
                }
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(counts, candidates),
            **head,
        }

    def _chunks(
        self,
        head: dict[str, Any],
        a: Answer,
        candidates: int,
        counts: tuple[int, int, int, int],
    ) -> Iterator[dict[str, Any]]:
        texts = pieces(a.text) if a.text else [""]
        for k, piece in enumerate(texts):
            last = k == len(texts) - 1
            # Cumulative: the candidates' count so far, the whole at the end.
            so_far = candidates if last else max(1, candidates * (k + 1) // len(texts))
            yield self._response(head, a, piece, so_far, counts, last)
