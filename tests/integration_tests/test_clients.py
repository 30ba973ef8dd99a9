"""Every partner client: model key, billing, learning in every calling mode, tools, LLM cache."""

from __future__ import annotations

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

from tests.integration_tests.corpus import SYSTEM, SYSTEM_TOOLS
from tests.integration_tests.drive import MODES, billed, call
from tests.integration_tests.tools import TOOLS_A, run_tool

PROMPTS = [
    [
        SystemMessage(SYSTEM),
        HumanMessage("Which of our lanes had the worst delays in November?"),
    ],
    [
        SystemMessage(SYSTEM),
        HumanMessage(
            "Draft a two-line apology to a customer in Zürich whose pallets arrived late."
        ),
    ],
    [SystemMessage(SYSTEM), HumanMessage("请用一句话总结本周的港口情况。")],
]


class TestEveryMode:
    """Each calling mode bills what the server billed and learns each prompt exactly."""

    @pytest.mark.parametrize("mode", MODES)
    def test_billed_and_learned(self, client, api, handler, mode):
        """After the calls, usage equals the server's bill and each prompt counts exactly."""
        llm = client.make(api.url, callbacks=[handler])
        call(llm, mode, PROMPTS)
        assert handler.models == [client.key]
        assert billed(handler.usage[client.key]) == api.app.totals()
        counts = sorted(handler.estimate(p, model=client.key).tokens for p in PROMPTS)
        assert counts == sorted(b.input_tokens for b in api.app.bills)
        assert {handler.estimate(p, model=client.key).source for p in PROMPTS} == {
            "exact"
        }
        stats = handler.stats()[client.key]
        assert stats.observations == len(PROMPTS)
        assert dict(stats.rejected) == {}


class TestModelKey:
    """Usage is filed under the configured name; the served snapshot resolves to it."""

    def test_snapshot_resolves_to_the_configured_name(self, client, api, handler):
        """A count asked for by the snapshot name uses the configured model's counter."""
        llm = client.make(api.url, callbacks=[handler])
        llm.invoke(PROMPTS[0])
        assert api.app.bills[0].model == client.served
        assert handler.models == [client.key]
        est = handler.estimate(PROMPTS[0], model=client.served)
        assert est.model == client.key
        assert (est.source, est.tokens) == ("exact", api.app.bills[0].input_tokens)


class TestBoundTools:
    """Tools bound with ``bind_tools`` are part of the prompt the handler learns."""

    @pytest.mark.parametrize("mode", ["invoke", "stream"])
    def test_tool_round_trip_is_learned_with_its_tools(
        self, client, api, handler, mode
    ):
        """Both calls of a tool round trip count exactly with the same tools passed."""
        llm = client.make(api.url, callbacks=[handler])
        bound = llm.bind_tools(TOOLS_A)
        history = [
            SystemMessage(SYSTEM_TOOLS),
            HumanMessage("What is the weather in Zürich today?"),
        ]
        first = list(history)
        (reply,) = call(bound, mode, [history])
        assert reply.tool_calls, "the server calls a tool after a question"
        history += [reply]
        history += [
            ToolMessage(run_tool(c), tool_call_id=c["id"]) for c in reply.tool_calls
        ]
        call(bound, mode, [history])
        bills = api.app.bills
        for prompt, bill in zip((first, history), bills, strict=True):
            est = handler.estimate(prompt, model=client.key, tools=TOOLS_A)
            assert (est.source, est.tokens) == ("exact", bill.input_tokens)
        # Without the tools it is another prompt, and a smaller one.
        bare = handler.estimate(first, model=client.key)
        assert bare.source != "exact"
        assert bare.tokens < bills[0].input_tokens
        assert billed(handler.usage[client.key]) == api.app.totals()


class TestLLMCache:
    """An LLM-cache hit costs nothing: it is neither billed nor learned from."""

    def test_cache_hit_is_not_billed(self, client, api, handler):
        """Two identical calls through a cache reach the server once and bill once."""
        llm = client.make(api.url, callbacks=[handler], cache=InMemoryCache())
        first = llm.invoke(PROMPTS[0])
        again = llm.invoke(PROMPTS[0])
        assert first.content == again.content
        assert len(api.app.bills) == 1
        assert billed(handler.usage[client.key]) == api.app.totals()
        stats = handler.stats()[client.key]
        assert stats.observations == 1
