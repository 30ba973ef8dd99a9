"""Tests for `get_tokencal_callback`, the block-scoped handler."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers import context as tracer_context

from langchain_tokencal import TokenCalibrationHandler, get_tokencal_callback
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel

PROMPT = [
    SystemMessage("You are a terse assistant."),
    HumanMessage("Which planet has the most moons?"),
]


def _strict(handler: TokenCalibrationHandler) -> TokenCalibrationHandler:
    handler.raise_error = True
    return handler


class TestGetTokencalCallback:
    """The context manager attaches one handler to every model in its block."""

    def test_attaches_to_every_chat_model(self):
        """Every chat model called in the block reports to the handler."""
        first = FakeUsageChatModel(model="model-a")
        second = FakeUsageChatModel.openai_like("gpt-4o-mini")
        with get_tokencal_callback() as handler:
            _strict(handler)
            first.invoke(PROMPT)
            second.invoke(PROMPT)
        assert handler.models == ["gpt-4o-mini", "model-a"]
        assert handler.estimate(PROMPT, model="model-a").source == "exact"

    def test_attaches_inside_a_runnable_lambda_chain(self):
        """A model called from inside a RunnableLambda in a chain is seen."""
        llm = FakeUsageChatModel()

        def ask(messages: list[HumanMessage]) -> object:
            return llm.invoke(messages)

        chain = RunnableLambda(lambda q: [HumanMessage(q)]) | RunnableLambda(ask)
        with get_tokencal_callback() as handler:
            _strict(handler)
            chain.invoke("Which planet has rings?")
        prompt = [HumanMessage("Which planet has rings?")]
        est = handler.estimate(prompt, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(prompt))

    def test_attaches_under_asyncio(self):
        """Calls by ainvoke and abatch inside the block are seen (tasks copy the context)."""
        llm = FakeUsageChatModel()
        prompts = [[HumanMessage(f"Async question {i}.")] for i in range(3)]

        async def run() -> None:
            await llm.ainvoke(PROMPT)
            await llm.abatch(prompts)

        with get_tokencal_callback() as handler:
            _strict(handler)
            asyncio.run(run())
        for prompt in [PROMPT, *prompts]:
            assert handler.estimate(prompt, model="fake-claude").source == "exact"

    def test_nothing_is_attached_after_the_block(self):
        """A call after the block is not seen."""
        llm = FakeUsageChatModel()
        with get_tokencal_callback() as handler:
            _strict(handler)
        llm.invoke(PROMPT)
        assert handler.models == []
        assert handler.usage == {}

    def test_block_is_left_clean_on_error(self):
        """An exception inside the block still detaches the handler."""
        llm = FakeUsageChatModel()

        def fail_inside() -> TokenCalibrationHandler:
            with get_tokencal_callback() as handler:
                _strict(handler)
                raise KeyError(handler)

        with pytest.raises(KeyError) as info:
            fail_inside()
        handler = info.value.args[0]
        llm.invoke(PROMPT)
        assert handler.usage == {}

    def test_plain_threads_do_not_inherit(self):
        """A plain thread started in the block does not see the handler (documented)."""
        llm = FakeUsageChatModel()
        with get_tokencal_callback() as handler:
            _strict(handler)
            thread = threading.Thread(target=llm.invoke, args=(PROMPT,))
            thread.start()
            thread.join()
        assert handler.usage == {}

    def test_threads_with_a_copied_context_inherit(self):
        """A thread that runs in a copy of the block's context sees the handler."""
        llm = FakeUsageChatModel()
        with get_tokencal_callback() as handler:
            _strict(handler)
            ctx = contextvars.copy_context()
            thread = threading.Thread(target=ctx.run, args=(llm.invoke, PROMPT))
            thread.start()
            thread.join()
        assert set(handler.usage) == {"fake-claude"}

    def test_hook_list_does_not_grow(self):
        """1,000 blocks leave LangChain's configure-hook list the same length."""
        before = len(tracer_context._configure_hooks)
        for _ in range(1000):
            with get_tokencal_callback():
                pass
        assert len(tracer_context._configure_hooks) == before

    def test_nested_blocks_restore_the_outer_handler(self):
        """An inner block takes over, and the outer handler is back after it."""
        llm = FakeUsageChatModel()
        inner_prompt = [HumanMessage("Only the inner block sees this.")]
        with get_tokencal_callback() as outer:
            _strict(outer)
            with get_tokencal_callback() as inner:
                _strict(inner)
                llm.invoke(inner_prompt)
            llm.invoke(PROMPT)
        assert inner.estimate(inner_prompt, model="fake-claude").source == "exact"
        assert inner.usage["fake-claude"]["input_tokens"] == llm.true_prompt_tokens(
            inner_prompt
        )
        assert outer.usage["fake-claude"]["input_tokens"] == llm.true_prompt_tokens(
            PROMPT
        )

    def test_existing_handler_keeps_what_it_learned(self):
        """Passing a handler attaches it, and it keeps learning across blocks."""
        handler = _strict(TokenCalibrationHandler())
        llm = FakeUsageChatModel()
        with get_tokencal_callback(handler) as attached:
            assert attached is handler
            llm.invoke(PROMPT)
        other = [HumanMessage("Second block.")]
        with get_tokencal_callback(handler):
            llm.invoke(other)
        assert handler.estimate(PROMPT, model="fake-claude").source == "exact"
        assert handler.estimate(other, model="fake-claude").source == "exact"

    def test_settings_configure_a_new_handler(self):
        """Settings build a new handler with that configuration."""
        with get_tokencal_callback(pending_size=7, cache_size=123) as handler:
            assert handler.config.pending_size == 7
            assert handler.config.cache_size == 123

    def test_handler_and_settings_conflict(self):
        """A handler and settings together are refused with a fix."""
        with (
            pytest.raises(ConfigError, match="either a handler or settings"),
            get_tokencal_callback(TokenCalibrationHandler(), cache_size=10),
        ):
            pass

    def test_unknown_setting_is_refused(self):
        """An unknown setting raises ConfigError naming the valid ones."""
        with (
            pytest.raises(ConfigError, match="valid settings are"),
            get_tokencal_callback(cache_sise=10),
        ):
            pass

    def test_model_with_the_same_handler_is_billed_once(self):
        """A model that already has the block's handler is not called twice."""
        handler = _strict(TokenCalibrationHandler())
        llm = FakeUsageChatModel(callbacks=[handler])
        with get_tokencal_callback(handler):
            reply = llm.invoke(PROMPT)
        assert reply.usage_metadata is not None
        assert handler.usage["fake-claude"] == reply.usage_metadata
