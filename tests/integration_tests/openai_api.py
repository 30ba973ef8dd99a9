"""OpenAI-shaped APIs on loopback: Chat Completions and Responses, OpenAI or vLLM.

`OpenAIApp` answers ``POST /v1/chat/completions`` and ``POST /v1/responses``
as OpenAI does: usage with ``prompt_tokens_details.cached_tokens`` (a simulated
automatic prefix cache: 64-token blocks once 128 tokens match an earlier
prompt) and ``completion_tokens_details.reasoning_tokens`` for reasoning
models; streams as SSE with the usage on a last chunk with empty ``choices``
when ``stream_options.include_usage`` asks for it; ``n`` candidates sharing
one usage. With ``flavor="vllm"`` it answers as vLLM does: no detail objects,
and a cumulative usage on every chunk when ``continuous_usage_stats`` is
asked; with ``flavor="mistral"`` as Mistral does (`mistral_chunks`).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from typing_extensions import override

from tests.integration_tests.loopback import App, Bill, Reply, sse
from tests.integration_tests.mistral_api import mistral_chunks
from tests.integration_tests.replies import Answer, answer, example_value, seed_of
from tests.integration_tests.responses_api import responses_reply
from tests.integration_tests.shapes import (
    common_prefix,
    dumps,
    json_schema,
    make_id,
    pieces,
)
from tests.integration_tests.truth import (
    ChatML200k,
    Llama31,
    MistralLike,
    Qwen3,
    Template,
)
from tests.integration_tests.wire import from_openai_chat, from_responses

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tests.integration_tests.wire import Tool, Turn

__all__ = ["OpenAIApp", "deepseek_app", "mistral_app", "vllm_app"]


def forced_tool(choice: Any) -> str | None:
    """The tool a ``tool_choice`` requires, if it names one."""
    if isinstance(choice, dict):
        fn = choice.get("function")
        return str((fn or choice).get("name") or "") or None
    return None


class OpenAIApp(App):
    """Chat Completions and Responses with a hidden template."""

    def __init__(
        self,
        template: Template | None = None,
        served: dict[str, str] | None = None,
        *,
        flavor: str = "openai",
        reasoning: Sequence[str] = ("o4-mini",),
    ) -> None:
        """Serve ``template``'s counts; ``served`` maps requested names to snapshots.

        ``flavor`` is ``"openai"``, ``"vllm"``, ``"mistral"`` or ``"deepseek"``; models whose name
        starts with one of ``reasoning`` (or requests asking for reasoning) spend
        hidden reasoning tokens.
        """
        super().__init__()
        self.template = template or ChatML200k()
        self.served = served or {
            "gpt-4o": "gpt-4o-2024-08-06",
            "o4-mini": "o4-mini-2025-04-16",
        }
        self.flavor = flavor
        # vLLM and Mistral send no detail objects and cache nothing visible;
        # DeepSeek caches prefixes and says so its own way too.
        self.vllm = flavor not in {"openai", "deepseek"}
        self.reasoning = tuple(reasoning)
        self._seen: list[str] = []

    # -- shared -------------------------------------------------------------

    @override
    def handle(self, path: str, body: dict[str, Any]) -> Reply:
        if path.endswith("/chat/completions"):
            return self.chat(body)
        if path.endswith("/responses"):
            return self.responses(body)
        return Reply(
            404,
            {"error": {"message": f"no route {path}", "type": "invalid_request_error"}},
        )

    def model_of(self, body: dict[str, Any]) -> str:
        """The snapshot name the server answers with."""
        model = str(body.get("model", ""))
        return self.served.get(model, model)

    def cached(self, text: str) -> int:
        """Tokens served from the simulated prefix cache for this prompt."""
        if self.vllm:
            return 0
        with self.lock:
            best = max((common_prefix(text, s) for s in self._seen), default=0)
            self._seen.append(text)
        tokens = self.template.count(text[:best]) if best else 0
        return tokens // 64 * 64 if tokens >= 128 else 0

    def hidden_reasoning(self, body: dict[str, Any], seed: int) -> int:
        """Reasoning tokens spent on this request (0 for a plain model)."""
        model = str(body.get("model", ""))
        asked = body.get("reasoning_effort") or (body.get("reasoning") or {}).get(
            "effort"
        )
        if self.vllm or not (asked or model.startswith(self.reasoning)):
            return 0
        return 64 + seed % 400

    def _answers(
        self, turns: list[Turn], tools: list[Tool], body: dict[str, Any], n: int
    ) -> list[Answer]:
        force = forced_tool(body.get("tool_choice"))
        max_calls = 1 if isinstance(self.template, Llama31) else 2
        out = []
        for i in range(n):
            a = answer(
                turns,
                tools,
                call_id=self.call_id,
                max_calls=max_calls,
                salt=i,
                force=force,
            )
            fmt = body.get("response_format") or (body.get("text") or {}).get("format")
            schema = json_schema(fmt)
            if schema is not None and not a.calls:
                rng = random.Random(seed_of(turns[-1].text if turns else "", i))
                a = Answer(dumps(example_value(schema, rng)), ())
            out.append(a)
        return out

    def call_id(self, rng: random.Random) -> str:
        """A tool call id in the flavor's format."""
        if self.flavor == "mistral":
            return make_id(rng, "", 9)
        return (
            make_id(rng, "chatcmpl-tool-", 32)
            if self.flavor == "vllm"
            else make_id(rng, "call_")
        )

    def _usage(
        self, prompt: int, output: int, cached: int, reasoning: int
    ) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }
        if self.flavor == "deepseek":
            # DeepSeek: hit and miss counts beside OpenAI's cached_tokens;
            # reasoning details only from the reasoner.
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
            usage["prompt_cache_hit_tokens"] = cached
            usage["prompt_cache_miss_tokens"] = prompt - cached
            if reasoning:
                usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
            return usage
        if not self.vllm:
            usage["prompt_tokens_details"] = {
                "cached_tokens": cached,
                "audio_tokens": 0,
            }
            usage["completion_tokens_details"] = {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage

    # -- Chat Completions ---------------------------------------------------

    def chat(self, body: dict[str, Any]) -> Reply:
        """``POST /v1/chat/completions``: JSON, or SSE chunks when streaming."""
        turns, tools = from_openai_chat(body)
        options = {"response_format": body.get("response_format")}
        text = self.template.render(turns, tools, options=options)
        prompt = self.template.count(text)
        cached = min(self.cached(text), prompt)
        n = int(body.get("n") or 1)
        answers = self._answers(turns, tools, body, n)
        reasoning = self.hidden_reasoning(body, seed_of(text))
        output = reasoning + sum(
            self.template.reply_tokens(a.text, a.calls) for a in answers
        )
        model = self.model_of(body)
        self.bill(Bill(model, prompt, output, cache_read=cached, reasoning=reasoning))
        usage = self._usage(prompt, output, cached, reasoning)
        rng = random.Random(seed_of(text, "id"))
        head = {
            "id": make_id(rng, "chatcmpl-", 29),
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None
            if self.vllm
            else "fp_" + make_id(rng, "", 10).lower(),
        }
        if not body.get("stream"):
            choices = [
                {
                    "index": i,
                    "message": _message(a),
                    "logprobs": None,
                    "finish_reason": "tool_calls" if a.calls else "stop",
                }
                for i, a in enumerate(answers)
            ]
            doc = {
                **head,
                "object": "chat.completion",
                "choices": choices,
                "usage": usage,
            }
            if not self.vllm:
                doc["service_tier"] = "default"
            return Reply(body=doc)
        stream_options = body.get("stream_options") or {}
        if self.flavor == "mistral":
            return Reply(
                chunks=sse((None, c) for c in mistral_chunks(head, answers[0], usage)),
                content_type="text/event-stream",
            )
        return Reply(
            chunks=sse(
                (None, c)
                for c in self._chunks(
                    head,
                    answers,
                    usage if stream_options.get("include_usage") else None,
                    continuous=bool(
                        self.flavor == "vllm"
                        and stream_options.get("continuous_usage_stats")
                    ),
                )
            ),
            content_type="text/event-stream",
        )

    def _chunks(
        self,
        head: dict[str, Any],
        answers: list[Answer],
        usage: dict[str, Any] | None,
        *,
        continuous: bool,
    ) -> Iterator[Any]:
        base = {**head, "object": "chat.completion.chunk"}
        prompt = (usage or {}).get("prompt_tokens", 0)
        emitted = 0
        deltas: list[tuple[int, dict[str, Any], str | None]] = []
        for i, a in enumerate(answers):
            deltas.append((i, {"role": "assistant", "content": ""}, None))
            deltas.extend(
                (i, {"content": p}, None) for p in (pieces(a.text) if a.text else ())
            )
            for k, c in enumerate(a.calls):
                args = dumps(c.args)
                deltas.append(
                    (
                        i,
                        {
                            "tool_calls": [
                                {
                                    "index": k,
                                    "id": c.id,
                                    "type": "function",
                                    "function": {"name": c.name, "arguments": ""},
                                }
                            ]
                        },
                        None,
                    )
                )
                deltas.extend(
                    (
                        i,
                        {"tool_calls": [{"index": k, "function": {"arguments": p}}]},
                        None,
                    )
                    for p in pieces(args)
                )
            deltas.append((i, {}, "tool_calls" if a.calls else "stop"))
        total_out = (usage or {}).get("completion_tokens", 0)
        for j, (i, delta, finish) in enumerate(deltas):
            chunk: dict[str, Any] = {
                **base,
                "choices": [
                    {
                        "index": i,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            if usage is not None and not continuous and not self.vllm:
                chunk["usage"] = None
            if continuous:
                # Cumulative: the prompt on every chunk, the output so far.
                emitted = total_out * (j + 1) // len(deltas)
                chunk["usage"] = {
                    "prompt_tokens": prompt,
                    "completion_tokens": emitted,
                    "total_tokens": prompt + emitted,
                }
            yield chunk
        if usage is not None:
            yield {**base, "choices": [], "usage": usage}
        yield "[DONE]"

    # -- Responses ----------------------------------------------------------

    def responses(self, body: dict[str, Any]) -> Reply:
        """``POST /v1/responses``: a response document or its event stream."""
        turns, tools = from_responses(body)
        fmt = (body.get("text") or {}).get("format")
        schema = json_schema(fmt)
        # The same rendering as Chat Completions' response_format.
        options = (
            {"response_format": {"type": "json_schema", "json_schema": fmt}}
            if schema is not None
            else {}
        )
        text = self.template.render(turns, tools, options=options)
        prompt = self.template.count(text)
        cached = min(self.cached(text), prompt)
        (a,) = self._answers(turns, tools, body, 1)
        reasoning = self.hidden_reasoning(body, seed_of(text))
        output = reasoning + self.template.reply_tokens(a.text, a.calls)
        model = self.model_of(body)
        self.bill(Bill(model, prompt, output, cache_read=cached, reasoning=reasoning))
        return responses_reply(
            body, a, model, (prompt, cached, output, reasoning), text
        )


def mistral_app() -> OpenAIApp:
    """Mistral's chat completions with a Mistral-like template."""
    return OpenAIApp(MistralLike(), served={}, flavor="mistral")


def _message(a: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": a.text or None,
        "refusal": None,
    }
    if a.calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": dumps(c.args)},
            }
            for c in a.calls
        ]
    return message


def deepseek_app() -> OpenAIApp:
    """DeepSeek's API (``deepseek-chat``, ``deepseek-reasoner``) with Qwen 3's template."""
    return OpenAIApp(
        Qwen3(),
        served={"deepseek-chat": "deepseek-chat"},
        flavor="deepseek",
        reasoning=("deepseek-reasoner",),
    )


def vllm_app() -> OpenAIApp:
    """VLLM serving Llama 3.1 8B Instruct (its chat template, no usage details)."""
    return OpenAIApp(
        Llama31(),
        served={"meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B-Instruct"},
        flavor="vllm",
    )
