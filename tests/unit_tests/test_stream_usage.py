"""Streamed usage through the real partner clients, over a mock transport.

vLLM's ``continuous_usage_stats`` puts cumulative usage on every chunk, which
LangChain's merge sums: the last chunk's usage is the call's, and it is
learned. An Anthropic-compatible server whose stream reports output tokens
only teaches nothing, and ``health()`` says exactly that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._reasons import STREAM_WITHOUT_INPUT
from langchain_tokencal.testing import FakeUsageChatModel
from tests.unit_tests.servers import AnthropicCompatibleServer, VllmServer, text

httpx2 = pytest.importorskip("httpx2")

VLLM_MODEL = "Qwen/Qwen3-8B"
ANTHROPIC_MODEL = "claude-compatible"


@pytest.fixture
def handler() -> TokenCalibrationHandler:
    """A fresh handler that raises its own errors."""
    h = TokenCalibrationHandler()
    h.raise_error = True
    return h


def vllm(handler: TokenCalibrationHandler, server: VllmServer) -> Any:
    """ChatOpenAI pointed at a vLLM-shaped server, with stream usage on."""
    openai = pytest.importorskip("langchain_openai")
    return openai.ChatOpenAI(
        model=VLLM_MODEL,
        base_url="http://127.0.0.1:8000/v1",
        api_key="EMPTY",
        stream_usage=True,
        http_client=httpx2.Client(transport=httpx2.MockTransport(server)),
        callbacks=[handler],
    )


def anthropic_compatible(
    handler: TokenCalibrationHandler, server: AnthropicCompatibleServer
) -> Any:
    """ChatAnthropic whose SDK clients talk to an Anthropic-compatible server."""
    lc_anthropic = pytest.importorskip("langchain_anthropic")
    sdk = pytest.importorskip("anthropic")
    llm = lc_anthropic.ChatAnthropic(
        model=ANTHROPIC_MODEL, api_key="k", callbacks=[handler]
    )
    # The SDK clients are cached properties: give them the mock transport.
    llm.__dict__["_client"] = sdk.Anthropic(
        api_key="k", http_client=httpx2.Client(transport=httpx2.MockTransport(server))
    )
    llm.__dict__["_async_client"] = sdk.AsyncAnthropic(
        api_key="k",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(server)),
    )
    return llm


def streamed(llm: Any, prompt: list[BaseMessage]) -> BaseMessage:
    """Stream a reply and merge its chunks, as a user of stream() would."""
    merged = None
    for chunk in llm.stream(prompt):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    return merged


def start() -> list[BaseMessage]:
    """The first prompt of a conversation."""
    return [SystemMessage(text(0, 50)), HumanMessage(text(1, 30))]


class TestCumulativeStreams:
    """vLLM ``continuous_usage_stats``: every chunk repeats the running usage."""

    def test_stream_is_learned_exactly(self, handler):
        """Each streamed call is learned from its last chunk: exact counts, no rejection."""
        server = VllmServer()
        llm = vllm(handler, server)
        history = start()
        prompts = []
        for turn in range(5):
            prompts.append(history)
            merged = streamed(llm, history)
            # LangChain summed the chunks: the merged input is inflated.
            assert merged.usage_metadata["input_tokens"] > server.truths[-1]
            history = [*history, merged, HumanMessage(text(10 + turn, 30))]
        stats = handler.stats()[VLLM_MODEL]
        assert stats.rejected == {}
        assert stats.observations == 5
        assert "cumulative_stream" in stats.last_usage.flags
        for prompt, truth in zip(prompts, server.truths, strict=True):
            est = handler.estimate(prompt, model=VLLM_MODEL)
            assert (est.source, est.tokens) == ("exact", truth)

    def test_stream_is_billed_once(self, handler):
        """The billed usage is the calls' own, not the merged sums."""
        server = VllmServer()
        llm = vllm(handler, server)
        history = start()
        for turn in range(3):
            history = [*history, streamed(llm, history), HumanMessage(text(turn, 20))]
        assert handler.usage[VLLM_MODEL]["input_tokens"] == sum(server.truths)

    def test_next_turn_is_anchored_on_the_stream(self, handler):
        """The reply's cost is learned from the last chunk's output tokens."""
        server = VllmServer()
        llm = vllm(handler, server)
        history = start()
        history = [*history, streamed(llm, history), HumanMessage(text(5, 20))]
        est = handler.estimate(history, model=VLLM_MODEL)
        assert est.source == "anchored"
        llm.invoke(history)
        assert abs(est.tokens - server.truths[-1]) <= 0.02 * server.truths[-1]

    def test_health_is_quiet(self, handler):
        """A cumulative stream is not a problem to report."""
        llm = vllm(handler, VllmServer())
        streamed(llm, start())
        # One report: only the note that counts still lean on the priors.
        checks = [i.check for i in handler.health(log=False).issues]
        assert checks in ([], ["few_reports"])


class TestOutputOnlyStreams:
    """An Anthropic-compatible server whose stream usage names only the reply."""

    def test_stream_is_rejected_with_its_reason(self, handler):
        """A stream reporting input_tokens 0 and output > 0 teaches nothing."""
        llm = anthropic_compatible(handler, AnthropicCompatibleServer())
        merged = streamed(llm, start())
        assert merged.usage_metadata["input_tokens"] == 0
        assert merged.usage_metadata["output_tokens"] > 0
        stats = handler.stats()[ANTHROPIC_MODEL]
        assert stats.rejected == {STREAM_WITHOUT_INPUT: 1}
        assert stats.observations == 0

    def test_health_says_exactly_that(self, handler):
        """health() says the stream reports output only, not "enable stream_usage"."""
        llm = anthropic_compatible(handler, AnthropicCompatibleServer())
        for i in range(3):
            streamed(llm, [HumanMessage(text(i, 20))])
        issues = handler.health(log=False).issues
        (found,) = [i for i in issues if i.check == "stream_without_input"]
        assert found.severity == "warning"
        assert "3 streamed run(s) reported output tokens with input_tokens 0" in (
            found.message
        )
        assert "output-only message_delta" in found.message
        assert "stream_usage is already on" in found.message
        assert not [i for i in issues if i.check == "no_usage"]

    def test_nothing_learned_before_is_lost(self, handler):
        """Prompts learned from invoke() stay exact after output-only streams."""
        server = AnthropicCompatibleServer()
        llm = anthropic_compatible(handler, server)
        history = start()
        prompts = []
        for turn in range(3):
            prompts.append(history)
            history = [*history, llm.invoke(history), HumanMessage(text(20 + turn, 25))]
        truths = list(server.truths)
        before = handler.stats()[ANTHROPIC_MODEL]
        for turn in range(3):
            history = [*history, streamed(llm, history), HumanMessage(text(turn, 25))]
        stats = handler.stats()[ANTHROPIC_MODEL]
        assert stats.rejected == {STREAM_WITHOUT_INPUT: 3}
        assert stats.observations == before.observations == 3
        assert stats.coefficients == before.coefficients
        for prompt, truth in zip(prompts, truths, strict=True):
            est = handler.estimate(prompt, model=ANTHROPIC_MODEL)
            assert (est.source, est.tokens) == ("exact", truth)
        # The streams' output tokens are still billed.
        assert handler.usage[ANTHROPIC_MODEL]["output_tokens"] > 0

    def test_astream_is_rejected_too(self, handler):
        """astream() goes the same way through the async client."""
        llm = anthropic_compatible(handler, AnthropicCompatibleServer())

        async def consume() -> None:
            async for _ in llm.astream(start()):
                pass

        asyncio.run(consume())
        assert handler.stats()[ANTHROPIC_MODEL].rejected == {STREAM_WITHOUT_INPUT: 1}

    def test_streams_without_any_usage_keep_the_stream_usage_hint(self, handler):
        """A stream with no usage at all still says to enable stream_usage."""
        llm = FakeUsageChatModel(model="m", stream_usage="none", callbacks=[handler])
        for _ in llm.stream(start()):
            pass
        (found,) = handler.health(log=False).issues
        assert found.check == "no_usage"
        assert "stream_usage=True" in found.message
