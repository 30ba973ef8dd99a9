"""ChatOpenAI against OpenAI-shaped APIs: details, candidates, streams, structured output, vLLM."""

from __future__ import annotations

from typing import ClassVar

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from tests.integration_tests.clients import CLIENTS
from tests.integration_tests.corpus import SYSTEM, questions
from tests.integration_tests.drive import billed, call
from tests.integration_tests.loopback import LoopbackServer
from tests.integration_tests.openai_api import OpenAIApp, vllm_app

_OPENAI = next(c for c in CLIENTS if c.id == "openai-chat")
_VLLM = next(c for c in CLIENTS if c.id == "vllm")
# A system prompt long enough for the simulated prefix cache (128 tokens).
_LONG_SYSTEM = SYSTEM + "\n\n" + "\n".join(questions(6, seed=3))


@pytest.fixture
def openai_api():
    """OpenAI's API shape on loopback, answering as gpt-4o and o4-mini."""
    with LoopbackServer(OpenAIApp()) as server:
        yield server
        assert not server.errors, server.errors


@pytest.fixture
def vllm_api():
    """The OpenAI-compatible API of vLLM serving Llama 3.1 8B Instruct."""
    with LoopbackServer(vllm_app()) as server:
        yield server
        assert not server.errors, server.errors


class Shipment(BaseModel):
    """A shipment's status as the assistant reports it."""

    shipment_id: str = Field(description="The shipment number, e.g. SHP-123456")
    late: bool = Field(description="Whether it will arrive after its ETA")
    delay_hours: int = Field(description="Expected delay in hours (0 if on time)")


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
class TestDetails:
    """Cache reads and reasoning are billed as the server reported them."""

    @pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
    def test_cached_and_reasoning_tokens(self, openai_api, handler, responses, mode):
        """A reasoning model on a shared long prefix: cache reads and reasoning billed."""
        llm = _OPENAI.make(
            openai_api.url,
            model="o4-mini",
            use_responses_api=responses,
            reasoning_effort="low",
            callbacks=[handler],
        )
        prompts = [
            [SystemMessage(_LONG_SYSTEM), HumanMessage(q)]
            for q in ("Summarize it.", "Which is urgent?")
        ]
        call(llm, mode, prompts)
        totals = openai_api.app.totals()
        assert totals["cache_read"] > 0
        assert totals["reasoning"] > 0
        assert handler.models == ["o4-mini"]
        assert billed(handler.usage["o4-mini"]) == totals
        for prompt, bill in zip(prompts, openai_api.app.bills, strict=True):
            est = handler.estimate(prompt, model="o4-mini")
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)


class TestCandidates:
    """``n>1`` candidates repeat one usage: billed and learned once."""

    def test_n_candidates_bill_once(self, openai_api, handler):
        """Three candidates, one bill, the prompt learned exactly."""
        llm = _OPENAI.make(openai_api.url, n=3, callbacks=[handler])
        prompt = [
            SystemMessage(SYSTEM),
            HumanMessage("Give me a subject line for the weekly report."),
        ]
        result = llm.generate([prompt])
        assert len(result.generations[0]) == 3
        assert len(openai_api.app.bills) == 1
        assert billed(handler.usage["gpt-4o"]) == openai_api.app.totals()
        est = handler.estimate(prompt, model="gpt-4o")
        assert (est.source, est.tokens) == (
            "exact",
            openai_api.app.bills[0].input_tokens,
        )


class TestStreamUsage:
    """A stream without ``stream_usage`` reports nothing: nothing billed, a warning says why."""

    def test_stream_without_usage(self, openai_api, handler):
        """No usage chunk: the run is rejected as "no usage" and health() warns."""
        llm = _OPENAI.make(openai_api.url, stream_usage=False, callbacks=[handler])
        prompt = [SystemMessage(SYSTEM), HumanMessage("Hello?")]
        call(llm, "stream", [prompt])
        assert not openai_api.app.requests[0][1].get("stream_options")
        usage = handler.usage.get("gpt-4o")
        assert usage is None or billed(usage)["input_tokens"] == 0
        assert dict(handler.stats()["gpt-4o"].rejected) == {"no usage": 1}
        checks = {(i.check, i.severity) for i in handler.health(log=False).issues}
        assert ("no_usage", "warning") in checks


class TestStructuredOutput:
    """``with_structured_output`` schemas are part of the prompt the handler learns."""

    @pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
    @pytest.mark.parametrize("method", ["json_schema", "function_calling"])
    def test_schema_is_counted(self, openai_api, handler, method, responses):
        """The parsed result arrives, is billed, and the prompt with its schema is exact."""
        llm = _OPENAI.make(
            openai_api.url, use_responses_api=responses, callbacks=[handler]
        )
        structured = llm.with_structured_output(Shipment, method=method)
        prompt = [
            SystemMessage(SYSTEM),
            HumanMessage("Is SHP-204311 late? It left Ningbo on Monday."),
        ]
        result = structured.invoke(prompt)
        assert isinstance(result, Shipment)
        sent = openai_api.app.requests[0][1]
        schema_sent = "response_format" in sent or "format" in (sent.get("text") or {})
        assert schema_sent == (method == "json_schema")
        assert billed(handler.usage["gpt-4o"]) == openai_api.app.totals()
        est = handler.estimate(prompt, model="gpt-4o", tools=[Shipment])
        assert (est.source, est.tokens) == (
            "exact",
            openai_api.app.bills[0].input_tokens,
        )
        stats = handler.stats()["gpt-4o"]
        assert stats.observations == 1


class TestVLLM:
    """ChatOpenAI as a vLLM client: no detail objects; ``continuous_usage_stats`` streams."""

    _CONTINUOUS: ClassVar[dict] = {
        "stream_options": {"include_usage": True, "continuous_usage_stats": True}
    }

    def _stream(self, vllm_api, handler, n=2):
        llm = _VLLM.make(vllm_api.url, extra_body=self._CONTINUOUS, callbacks=[handler])
        prompts = [
            [SystemMessage(SYSTEM), HumanMessage(q)] for q in questions(n, seed=11)
        ]
        replies = call(llm, "stream", prompts)
        sent = vllm_api.app.requests[0][1]
        assert sent["stream_options"]["continuous_usage_stats"] is True
        return prompts, replies

    def test_continuous_usage_is_billed_once(self, vllm_api, handler):
        """Every chunk carries the cumulative usage; the bill is the last chunk's, not the sum."""
        _, replies = self._stream(vllm_api, handler)
        # LangChain summed the chunks: the merged message is inflated...
        assert (
            replies[0].usage_metadata["input_tokens"]
            > vllm_api.app.bills[0].input_tokens
        )
        # ...the handler bills what the server billed.
        assert billed(handler.usage[_VLLM.key]) == vllm_api.app.totals()

    def test_continuous_usage_is_learned(self, vllm_api, handler):
        """The last chunk's usage is the call's: the prompt is learned from it."""
        prompts, _ = self._stream(vllm_api, handler)
        for prompt, bill in zip(prompts, vllm_api.app.bills, strict=True):
            est = handler.estimate(prompt, model=_VLLM.key)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)
        assert dict(handler.stats()[_VLLM.key].rejected) == {}

    def test_plain_usage_without_details(self, vllm_api, handler):
        """Usage with no detail objects: billed and learned, no details invented."""
        llm = _VLLM.make(vllm_api.url, callbacks=[handler])
        prompt = [SystemMessage(SYSTEM), HumanMessage("Hi")]
        call(llm, "invoke", [prompt])
        raw = vllm_api.app.requests[0]
        assert raw[0] == "/v1/chat/completions"
        usage = handler.usage[_VLLM.key]
        assert "input_token_details" not in usage
        assert "output_token_details" not in usage
        assert billed(usage) == vllm_api.app.totals()
