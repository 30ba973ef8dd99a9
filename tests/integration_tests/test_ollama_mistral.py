"""ChatOllama's NDJSON streams and ChatMistralAI's streamed usage, beyond the common tests."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from tests.integration_tests.clients import CLIENTS
from tests.integration_tests.corpus import SYSTEM
from tests.integration_tests.drive import billed, call
from tests.integration_tests.loopback import LoopbackServer
from tests.integration_tests.ollama_api import OllamaApp

_OLLAMA = next(c for c in CLIENTS if c.id == "ollama")
_MISTRAL = next(c for c in CLIENTS if c.id == "mistral")
_PROMPT = [
    SystemMessage(SYSTEM),
    HumanMessage("How many pallets fit in a 40 ft container?"),
]


class TestOllama:
    """``prompt_eval_count`` on the final NDJSON line is the prompt; its absence is no usage."""

    def test_final_line_counts(self, handler):
        """The done line's prompt_eval_count and eval_count are what is billed and learned."""
        with LoopbackServer(OllamaApp()) as server:
            llm = _OLLAMA.make(server.url, callbacks=[handler])
            reply = llm.invoke(_PROMPT)
        bill = server.app.bills[0]
        assert server.app.requests[0][1]["stream"] is True  # ChatOllama always streams
        assert reply.response_metadata["prompt_eval_count"] == bill.input_tokens
        assert billed(handler.usage[_OLLAMA.key]) == server.app.totals()
        est = handler.estimate(_PROMPT, model=_OLLAMA.key)
        assert (est.source, est.tokens) == ("exact", bill.input_tokens)

    @pytest.mark.parametrize("mode", ["invoke", "astream"])
    def test_missing_prompt_eval_count(self, handler, mode):
        """A cached prompt reported without prompt_eval_count: rejected, nothing lost."""
        with LoopbackServer(OllamaApp(omit_cached=True)) as server:
            llm = _OLLAMA.make(server.url, callbacks=[handler])
            call(llm, mode, [_PROMPT, _PROMPT])
            assert not server.errors
        first = server.app.bills[0]
        stats = handler.stats()[_OLLAMA.key]
        assert stats.observations == 1
        assert dict(stats.rejected) == {"no usage": 1}
        est = handler.estimate(_PROMPT, model=_OLLAMA.key)
        assert (est.source, est.tokens) == ("exact", first.input_tokens)
        assert billed(handler.usage[_OLLAMA.key])["input_tokens"] == first.input_tokens


class TestMistral:
    """Mistral streams put the usage on the finishing chunk only."""

    @pytest.mark.parametrize("mode", ["stream", "astream"])
    def test_usage_on_the_last_chunk(self, handler, mode):
        """One chunk carries usage; it is billed once and learned."""
        with LoopbackServer(_MISTRAL.app()) as server:
            llm = _MISTRAL.make(server.url, callbacks=[handler])
            (reply,) = call(llm, mode, [_PROMPT])
            assert not server.errors
        bill = server.app.bills[0]
        assert reply.usage_metadata["input_tokens"] == bill.input_tokens
        assert billed(handler.usage[_MISTRAL.key]) == server.app.totals()
        assert handler.stats()[_MISTRAL.key].observations == 1
