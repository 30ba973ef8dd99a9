"""ChatAnthropic against an Anthropic-shaped Messages API: caching, thinking, stream usage."""

from __future__ import annotations

from typing import ClassVar

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tests.integration_tests.anthropic_api import AnthropicApp
from tests.integration_tests.clients import CLIENTS
from tests.integration_tests.corpus import SYSTEM, questions
from tests.integration_tests.drive import billed, call
from tests.integration_tests.loopback import LoopbackServer
from tests.integration_tests.tools import TOOLS_A

_CLAUDE = next(c for c in CLIENTS if c.id == "anthropic")
_KEY = _CLAUDE.key
_LONG_SYSTEM = SYSTEM + "\n\n" + "\n".join(questions(6, seed=5))


@pytest.fixture
def claude_api():
    """Anthropic's Messages API shape on loopback."""
    with LoopbackServer(AnthropicApp()) as server:
        yield server
        assert not server.errors, server.errors


def _cached(text: str, ttl: str | None = None) -> list[dict]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return [{"type": "text", "text": text, "cache_control": control}]


class TestPromptCaching:
    """Cache writes (5m and 1h) and reads are billed as input, and learned as the prompt."""

    @pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke"])
    def test_cache_writes_and_reads(self, claude_api, handler, mode):
        """A 1h system breakpoint and 5m turn breakpoints over a growing conversation."""
        llm = _CLAUDE.make(claude_api.url, callbacks=[handler])
        history = [SystemMessage(_cached(_LONG_SYSTEM, "1h"))]
        prompts = []
        for q in questions(3, seed=2):
            history.append(HumanMessage(_cached(q)))
            prompts.append(list(history))
            (reply,) = call(llm, mode, [history])
            history.append(reply)
        bills = claude_api.app.bills
        sent = claude_api.app.requests[0][1]
        assert sent["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
        totals = claude_api.app.totals()
        assert bills[0].cache_read == 0
        assert bills[0].cache_creation > 0
        assert all(b.cache_read > 0 for b in bills[1:])
        assert billed(handler.usage[_KEY]) == totals
        for prompt, bill in zip(prompts, bills, strict=True):
            est = handler.estimate(prompt, model=_KEY)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)

    def test_ttl_breakdown_is_not_added_twice(self, claude_api, handler):
        """The 5m/1h split of one write is counted once, as LangChain reports it."""
        llm = _CLAUDE.make(claude_api.url, callbacks=[handler])
        prompt = [
            SystemMessage(_cached(_LONG_SYSTEM, "1h")),
            HumanMessage(_cached("Summarize.")),
        ]
        reply = llm.invoke(prompt)
        details = reply.usage_metadata["input_token_details"]
        assert details["ephemeral_1h_input_tokens"] > 0
        assert details["ephemeral_5m_input_tokens"] > 0
        bill = claude_api.app.bills[0]
        assert bill.cache_creation == (
            details["ephemeral_1h_input_tokens"] + details["ephemeral_5m_input_tokens"]
        )
        assert billed(handler.usage[_KEY]) == claude_api.app.totals()


class TestThinking:
    """Extended thinking: billed as reasoning output; thinking sent back is learned as prompt."""

    @pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
    def test_thinking_conversation(self, claude_api, handler, mode):
        """Thinking blocks come back in the history; every prompt is learned exactly."""
        llm = _CLAUDE.make(
            claude_api.url,
            thinking={"type": "enabled", "budget_tokens": 2048},
            callbacks=[handler],
        )
        history = [SystemMessage(SYSTEM)]
        prompts = []
        for q in questions(3, seed=9):
            history.append(HumanMessage(q))
            prompts.append(list(history))
            (reply,) = call(llm, mode, [history])
            assert any(b.get("type") == "thinking" for b in reply.content)
            history.append(reply)
        assert claude_api.app.totals()["reasoning"] > 0
        assert billed(handler.usage[_KEY]) == claude_api.app.totals()
        for prompt, bill in zip(prompts, claude_api.app.bills, strict=True):
            est = handler.estimate(prompt, model=_KEY)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)


class TestForcedToolChoice:
    """``tool_choice="any"`` calls a tool; the round trip is billed and learned."""

    def test_forced_tool_use(self, claude_api, handler):
        """A forced tool call carries usage like any other reply."""
        llm = _CLAUDE.make(claude_api.url, callbacks=[handler])
        bound = llm.bind_tools(TOOLS_A, tool_choice="any")
        prompt = [SystemMessage(SYSTEM), HumanMessage("Thanks, that is all.")]
        reply = bound.invoke(prompt)
        assert reply.tool_calls
        assert claude_api.app.requests[0][1]["tool_choice"] == {"type": "any"}
        assert billed(handler.usage[_KEY]) == claude_api.app.totals()
        est = handler.estimate(prompt, model=_KEY, tools=TOOLS_A)
        assert (est.source, est.tokens) == (
            "exact",
            claude_api.app.bills[0].input_tokens,
        )


class TestOutputOnlyDelta:
    """A server whose ``message_delta`` carries only ``output_tokens`` (no input counts)."""

    @pytest.fixture
    def quiet_api(self):
        """The Messages API with output-only ``message_delta`` usage."""
        with LoopbackServer(AnthropicApp(delta_input=False)) as server:
            yield server
            assert not server.errors, server.errors

    def _stream(self, quiet_api, handler):
        llm = _CLAUDE.make(quiet_api.url, callbacks=[handler])
        prompt = [SystemMessage(SYSTEM), HumanMessage("Hello?")]
        (reply,) = call(llm, "stream", [prompt])
        # langchain-anthropic reads the usage from message_delta only.
        assert reply.usage_metadata["input_tokens"] == 0
        return prompt

    def test_nothing_is_learned_and_output_is_billed(self, quiet_api, handler):
        """The run is rejected by its own reason; the output LangChain saw is billed."""
        prompt = self._stream(quiet_api, handler)
        rejected = dict(handler.stats()[_KEY].rejected)
        assert rejected == {"stream without input tokens": 1}
        assert handler.estimate(prompt, model=_KEY).source != "exact"
        usage = billed(handler.usage.get(_KEY))
        assert usage["output_tokens"] == quiet_api.app.totals()["output_tokens"]
        assert usage["input_tokens"] == 0

    def test_health_names_the_output_only_delta(self, quiet_api, handler):
        """health() says the stream reported input_tokens 0, not to enable stream_usage."""
        self._stream(quiet_api, handler)
        (issue,) = [
            i for i in handler.health(log=False).issues if i.severity == "warning"
        ]
        assert "stream_usage=True" not in issue.message
        assert "input" in issue.message


class TestServerTools:
    """A server-side web search feeds its results back as input within the request."""

    _SEARCH: ClassVar[dict] = {
        "type": "web_search_20250305",
        "name": "web_search",
        "max_uses": 1,
    }

    @pytest.mark.parametrize("mode", ["invoke", "stream"])
    def test_search_input_is_billed_not_learned(self, claude_api, handler, mode):
        """The larger input is billed; it is not the prompt, so it is not learned."""
        llm = _CLAUDE.make(claude_api.url, callbacks=[handler]).bind_tools(
            [self._SEARCH]
        )
        prompt = [
            SystemMessage(SYSTEM),
            HumanMessage("Is the port of Felixstowe open today?"),
        ]
        (reply,) = call(llm, mode, [prompt])
        kinds = [b.get("type") for b in reply.content]
        assert kinds[:2] == ["server_tool_use", "web_search_tool_result"]
        assert billed(handler.usage[_KEY]) == claude_api.app.totals()
        stats = handler.stats()[_KEY]
        assert stats.observations == 0
        assert dict(stats.rejected) == {"server tool input": 1}
        est = handler.estimate(prompt, model=_KEY, tools=[self._SEARCH])
        assert est.source != "exact"
        assert est.tokens < claude_api.app.bills[0].input_tokens
