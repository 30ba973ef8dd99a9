"""What ChatGoogleGenerativeAI, ChatBedrockConverse and ChatDeepSeek add beyond the common tests.

Gemini streams cumulative usage with thinking and implicit-cache counts;
Bedrock reports cache reads and writes beside an ``inputTokens`` that
excludes them; DeepSeek reports its prefix cache as hit and miss counts and
the reasoner's reasoning tokens. In each case the handler must bill what the
server billed, in LangChain's convention (input includes cache reads and
writes, output includes reasoning), and learn the whole prompt.
"""

from __future__ import annotations

import pytest
from langchain_aws import ChatBedrockConverse
from langchain_core.messages import HumanMessage, SystemMessage

from tests.integration_tests.clients import CLIENTS
from tests.integration_tests.corpus import SYSTEM
from tests.integration_tests.drive import MODES, billed, call
from tests.integration_tests.loopback import LoopbackServer

_GEMINI = next(c for c in CLIENTS if c.id == "gemini")
_BEDROCK = next(c for c in CLIENTS if c.id == "bedrock")
_DEEPSEEK = next(c for c in CLIENTS if c.id == "deepseek")
# Long enough for each provider's prefix cache (Gemini's starts at 1,024 tokens).
_LONG_SYSTEM = (SYSTEM + " ") * 30


def _questions(n: int) -> list[list]:
    return [
        [SystemMessage(_LONG_SYSTEM), HumanMessage(f"Status of shipment {i}00-{i}?")]
        for i in range(n)
    ]


class TestGemini:
    """Cumulative stream usage, thoughts as reasoning, implicit caching."""

    @pytest.mark.parametrize("mode", ["stream", "astream"])
    def test_cumulative_stream_is_billed_once(self, handler, mode):
        """Every chunk repeats the usage so far; the sum billed is the last one."""
        prompts = _questions(2)
        with LoopbackServer(_GEMINI.app()) as server:
            llm = _GEMINI.make(server.url, callbacks=[handler])
            replies = call(llm, mode, prompts)
            assert not server.errors
        bills = server.app.bills
        for reply, bill in zip(replies, bills, strict=True):
            assert reply.usage_metadata["input_tokens"] == bill.input_tokens
            assert reply.usage_metadata["output_tokens"] == bill.output_tokens
        totals = server.app.totals()
        assert totals["reasoning"] > 0  # gemini-2.5 thinks by default
        assert totals["cache_read"] > 0  # the second prompt shares the first's start
        assert billed(handler.usage[_GEMINI.key]) == totals
        for prompt, bill in zip(prompts, bills, strict=True):
            est = handler.estimate(prompt, model=_GEMINI.key)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)


class TestBedrock:
    """Converse's cache counts are outside inputTokens; the handler adds them."""

    @pytest.mark.parametrize("mode", ["invoke", "stream"])
    def test_cache_point_reads_and_writes(self, handler, mode):
        """A cachePoint writes, then reads: billed as cache_creation, cache_read."""
        system = SystemMessage(
            [
                {"type": "text", "text": _LONG_SYSTEM},
                ChatBedrockConverse.create_cache_point(),
            ]
        )
        prompts = [[system, HumanMessage(f"Where is pallet {i}?")] for i in range(2)]
        with LoopbackServer(_BEDROCK.app()) as server:
            llm = _BEDROCK.make(server.url, callbacks=[handler])
            call(llm, mode, prompts)
            assert not server.errors
        first, second = server.app.bills
        assert first.cache_creation > 0
        assert second.cache_read > 0
        assert billed(handler.usage[_BEDROCK.key]) == server.app.totals()
        for prompt, bill in zip(prompts, server.app.bills, strict=True):
            est = handler.estimate(prompt, model=_BEDROCK.key)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)
        assert dict(handler.stats()[_BEDROCK.key].rejected) == {}


class TestDeepSeek:
    """Prefix-cache hits and the reasoner's reasoning tokens."""

    def test_cache_hits_are_cache_reads(self, handler):
        """prompt_cache_hit_tokens (and cached_tokens) bill as cache_read."""
        prompts = _questions(3)
        with LoopbackServer(_DEEPSEEK.app()) as server:
            llm = _DEEPSEEK.make(server.url, callbacks=[handler])
            call(llm, "invoke", prompts)
            assert not server.errors
        assert server.app.totals()["cache_read"] > 0
        assert billed(handler.usage[_DEEPSEEK.key]) == server.app.totals()

    @pytest.mark.parametrize("mode", MODES)
    def test_reasoner_bills_reasoning(self, handler, mode):
        """deepseek-reasoner's reasoning tokens are output, billed as reasoning."""
        prompts = _questions(2)
        with LoopbackServer(_DEEPSEEK.app()) as server:
            llm = _DEEPSEEK.make(
                server.url, model="deepseek-reasoner", callbacks=[handler]
            )
            call(llm, mode, prompts)
            assert not server.errors
        totals = server.app.totals()
        assert totals["reasoning"] > 0
        assert billed(handler.usage["deepseek-reasoner"]) == totals
        stats = handler.stats()["deepseek-reasoner"]
        assert stats.observations == 2


class TestGeminiGrounding:
    """Grounding with Google Search: billed as input, not learned as the prompt."""

    @pytest.mark.parametrize("mode", ["invoke", "stream"])
    def test_search_input_is_billed_not_learned(self, handler, mode):
        """ToolUsePromptTokenCount is billed; the grounded report is not the prompt.

        langchain-google-genai folds the search results' tokens into
        ``input_tokens``; ``grounding_metadata`` says they are there. The
        callbacks see google-genai's ``Tool`` dump of ``{"google_search":
        {}}``, the user counts with the dict they bound: one tool set.
        """
        search = [{"google_search": {}}]
        prompt = [
            SystemMessage(SYSTEM),
            HumanMessage("What moved the port of Rotterdam today?"),
        ]
        with LoopbackServer(_GEMINI.app()) as server:
            llm = _GEMINI.make(server.url, callbacks=[handler]).bind_tools(search)
            (reply,) = call(llm, mode, [prompt])
            assert not server.errors
        (bill,) = server.app.bills
        assert reply.usage_metadata["input_tokens"] == bill.input_tokens
        assert billed(handler.usage[_GEMINI.key]) == server.app.totals()
        stats = handler.stats()[_GEMINI.key]
        assert (stats.observations, dict(stats.rejected)) == (
            0,
            {"server tool input": 1},
        )
        est = handler.estimate(prompt, model=_GEMINI.key, tools=search)
        assert est.source != "exact"
        assert est.tokens < bill.input_tokens
