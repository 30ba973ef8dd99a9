"""Tests for `TokenCalibrationHandler`, driven through real LangChain machinery."""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
import logging
import threading
from typing import Any
from uuid import UUID, uuid4

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import FakeListLLM
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from langchain_tokencal import TokenCalibrationHandler, TokenUsage
from langchain_tokencal.storage import MemoryStore
from langchain_tokencal.testing import FakeUsageChatModel

PROMPT = [
    SystemMessage("You are a terse assistant."),
    HumanMessage("What is the capital of France, and why is it there?"),
]
OTHER_PROMPT = [HumanMessage("Name three rivers that cross Germany.")]
SMALL_USAGE = {"input_tokens": 30, "output_tokens": 2, "total_tokens": 32}


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


class RecordingHandler(TokenCalibrationHandler):
    """The real handler, also recording which events LangChain sent it."""

    def __init__(self, **kwargs: Any) -> None:
        """Record nothing yet; raise every error."""
        super().__init__(**kwargs)
        self.raise_error = True
        self.events: list[tuple[str, UUID]] = []
        self.starts: list[dict[str, Any]] = []
        self.end_threads: list[int] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        """Record the start, then handle it."""
        self.events.append(("chat_model_start", run_id))
        self.starts.append({"messages": messages, **kwargs})
        super().on_chat_model_start(serialized, messages, run_id=run_id, **kwargs)

    def on_llm_start(self, serialized, prompts, *, run_id, **kwargs):
        """Record the start, then handle it."""
        self.events.append(("llm_start", run_id))
        super().on_llm_start(serialized, prompts, run_id=run_id, **kwargs)

    def on_llm_new_token(self, token, *, chunk=None, run_id, **kwargs):
        """Record the token, then handle it."""
        self.events.append(("llm_new_token", run_id))
        super().on_llm_new_token(token, chunk=chunk, run_id=run_id, **kwargs)

    def on_llm_end(self, response, *, run_id, **kwargs):
        """Record the end and its thread, then handle it."""
        self.events.append(("llm_end", run_id))
        self.end_threads.append(threading.get_ident())
        super().on_llm_end(response, run_id=run_id, **kwargs)

    def on_llm_error(self, error, *, run_id, **kwargs):
        """Record the error, then handle it."""
        self.events.append(("llm_error", run_id))
        super().on_llm_error(error, run_id=run_id, **kwargs)

    def kinds(self) -> list[str]:
        """The event names in order."""
        return [kind for kind, _ in self.events]


@pytest.fixture
def handler() -> TokenCalibrationHandler:
    """A fresh handler that raises its own errors."""
    h = TokenCalibrationHandler()
    h.raise_error = True
    return h


@pytest.fixture
def recorder() -> RecordingHandler:
    """A fresh recording handler that raises its own errors."""
    return RecordingHandler()


@pytest.fixture
def llm_cache():
    """Install an in-memory LLM cache for one test."""
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


def _usage_of(reply: BaseMessage) -> dict[str, Any]:
    usage = getattr(reply, "usage_metadata", None)
    assert usage is not None
    return dict(usage)


def start_run(
    handler: TokenCalibrationHandler,
    prompt: list[BaseMessage] = PROMPT,
    serialized: dict[str, Any] | None = None,
    **kwargs: Any,
) -> UUID:
    """Start a chat run by hand, as LangChain would; return its id."""
    run_id = uuid4()
    handler.on_chat_model_start(serialized or {}, [prompt], run_id=run_id, **kwargs)
    return run_id


def end_run(
    handler: TokenCalibrationHandler, run_id: UUID, *replies: AIMessage
) -> None:
    """End a run by hand with one generation per reply."""
    generations = [[ChatGeneration(message=reply) for reply in replies]]
    handler.on_llm_end(LLMResult(generations=generations), run_id=run_id)


def drive_run(
    handler: TokenCalibrationHandler,
    usage: dict[str, Any],
    *,
    content: str = "ok",
    prompt: list[BaseMessage] = PROMPT,
    bad: bool = False,
    **start: Any,
) -> None:
    """One chat run by hand: start it, then end it with a reply reporting ``usage``.

    A ``bad`` reply carries tool calls that are no mappings, as no real model
    sends: the handler fails to copy them when it settles the run.
    """
    run_id = start_run(handler, prompt, **start)
    reply = AIMessage(content, usage_metadata=usage)
    if bad:
        reply.tool_calls = [5]  # type: ignore[list-item]
    end_run(handler, run_id, reply)


class TestEvents:
    """Which hooks LangChain calls, and that the handler learns from them."""

    def test_invoke_fires_start_then_end(self, recorder):
        """An invoke fires on_chat_model_start then on_llm_end for one run id."""
        FakeUsageChatModel(callbacks=[recorder]).invoke(PROMPT)
        assert recorder.kinds() == ["chat_model_start", "llm_end"]
        assert recorder.events[0][1] == recorder.events[1][1]
        assert recorder.pending_runs == 0

    def test_invoke_learns_the_exact_count(self, handler):
        """After one call, the same prompt is estimated exactly."""
        llm = FakeUsageChatModel(callbacks=[handler])
        before = handler.estimate(PROMPT, model="fake-claude")
        llm.invoke(PROMPT)
        after = handler.estimate(PROMPT, model="fake-claude")
        assert before.source == "local"
        assert after.source == "exact"
        assert after.tokens == llm.true_prompt_tokens(PROMPT)

    def test_second_identical_call_is_a_repeat(self, handler):
        """A second identical call is recognized as already known exactly."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        llm.invoke(PROMPT)
        stats = handler.stats()["fake-claude"]
        assert stats.observations == 1
        assert stats.repeats == 1
        assert handler.count_messages(PROMPT, model="fake-claude") == (
            llm.true_prompt_tokens(PROMPT)
        )

    def test_batch_makes_one_run_per_prompt(self, recorder):
        """A batch of N prompts makes N runs with distinct run ids, each learned."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        prompts = [
            [HumanMessage(f"Question number {i} about rivers.")] for i in range(4)
        ]
        llm.batch(prompts)
        starts = {run for kind, run in recorder.events if kind == "chat_model_start"}
        ends = {run for kind, run in recorder.events if kind == "llm_end"}
        assert len(starts) == 4
        assert starts == ends
        for prompt in prompts:
            est = recorder.estimate(prompt, model="fake-claude")
            assert est.source == "exact"
            assert est.tokens == llm.true_prompt_tokens(prompt)

    def test_each_start_holds_one_message_list(self, recorder):
        """Each start carries exactly one message list, even under batch."""
        FakeUsageChatModel(callbacks=[recorder]).batch([PROMPT, OTHER_PROMPT])
        assert [len(start["messages"]) for start in recorder.starts] == [1, 1]

    def test_generate_makes_one_run_per_list(self, recorder):
        """generate() with N message lists makes N runs, each learned."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        result = llm.generate([PROMPT, OTHER_PROMPT])
        assert len(result.generations) == 2
        starts = [run for kind, run in recorder.events if kind == "chat_model_start"]
        assert len(set(starts)) == 2
        for prompt in (PROMPT, OTHER_PROMPT):
            est = recorder.estimate(prompt, model="fake-claude")
            assert est.tokens == llm.true_prompt_tokens(prompt)

    def test_handler_implements_chat_model_start(self):
        """The handler overrides on_chat_model_start, so LangChain never flattens."""
        assert (
            TokenCalibrationHandler.on_chat_model_start
            is not BaseCallbackHandler.on_chat_model_start
        )

    def test_messages_arrive_structured(self, recorder):
        """Names, tool calls and tool-call ids reach the handler intact."""
        history = [
            HumanMessage("What is the weather in Paris?", name="alice"),
            AIMessage(
                "",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}
                ],
            ),
            ToolMessage("sunny", tool_call_id="c1"),
        ]
        FakeUsageChatModel(callbacks=[recorder]).invoke(history)
        (sent,) = recorder.starts[0]["messages"]
        assert "llm_start" not in recorder.kinds()
        assert all(isinstance(m, BaseMessage) for m in sent)
        assert sent[0].name == "alice"
        assert sent[1].tool_calls[0]["args"] == {"city": "Paris"}
        assert sent[2].tool_call_id == "c1"

    def test_handler_without_chat_model_start_gets_flat_strings(self):
        """A handler lacking on_chat_model_start gets one flattened string (why we have it)."""

        class StartOnly(BaseCallbackHandler):
            raise_error = True

            def __init__(self) -> None:
                self.prompts: list[list[str]] = []

            def on_llm_start(self, serialized, prompts, **kwargs):
                self.prompts.append(prompts)

        legacy = StartOnly()
        FakeUsageChatModel(callbacks=[legacy]).invoke(PROMPT)
        (prompts,) = legacy.prompts
        assert len(prompts) == 1
        assert isinstance(prompts[0], str)

    def test_completion_llm_counts_no_usage(self, recorder):
        """A completion LLM goes through on_llm_start and ends as 'no usage'."""
        reply = FakeListLLM(responses=["Paris."], callbacks=[recorder]).invoke("hi")
        assert reply == "Paris."
        assert recorder.kinds() == ["llm_start", "llm_end"]
        assert recorder.pending_runs == 0
        rejected = [s.rejected for s in recorder.stats().values()]
        assert rejected == [{"no usage": 1}]
        assert recorder.usage == {}


class TestKwargs:
    """What the handler reads from the start kwargs: model key, aliases, tools."""

    def test_ls_model_name_and_provider_key_the_model(self, handler):
        """The configured model name is the key and ls_provider the provider."""
        FakeUsageChatModel(
            model="fake-gemini", provider="google", callbacks=[handler]
        ).invoke(PROMPT)
        assert handler.models == ["fake-gemini"]
        assert handler.stats()["fake-gemini"].provider == "google"
        assert set(handler.usage) == {"fake-gemini"}

    def test_metadata_wins_over_invocation_params(self, handler):
        """metadata['ls_model_name'] beats the model in invocation_params."""
        drive_run(
            handler,
            SMALL_USAGE,
            metadata={"ls_model_name": "claude-sonnet-4-5", "ls_provider": "anthropic"},
            invocation_params={"model": "claude-sonnet-4-5-20250929", "_type": "x"},
        )
        assert handler.models == ["claude-sonnet-4-5"]
        assert handler.stats()["claude-sonnet-4-5"].provider == "anthropic"

    def test_invocation_params_key_without_metadata(self, handler):
        """Without metadata, the model comes from invocation_params and the provider from _type."""
        drive_run(
            handler,
            SMALL_USAGE,
            invocation_params={"model": "my-model", "_type": "anthropic-chat"},
        )
        assert handler.models == ["my-model"]
        assert handler.stats()["my-model"].provider == "anthropic"

    def test_dated_snapshot_reaches_the_same_counter(self, handler):
        """The dated snapshot the response names resolves to the configured model."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        est = handler.estimate(PROMPT, model="fake-claude-20250101")
        assert est.model == "fake-claude"
        assert handler.count_messages(PROMPT, model="fake-claude-20250101") == (
            llm.true_prompt_tokens(PROMPT)
        )
        assert handler.models == ["fake-claude"]

    def test_undated_snapshot_is_recorded_as_alias(self, handler):
        """A response model name that is no dated form of the key is an alias too."""
        llm = FakeUsageChatModel(snapshot="claude-next-latest", callbacks=[handler])
        llm.invoke(PROMPT)
        est = handler.estimate(PROMPT, model="claude-next-latest")
        assert est.model == "fake-claude"
        assert est.source == "exact"

    def test_tools_change_the_estimate(self, handler):
        """The same messages with and without tools give different estimates."""
        without = handler.estimate(PROMPT, model="fake-claude")
        with_tools = handler.estimate(PROMPT, model="fake-claude", tools=[get_weather])
        assert with_tools.tokens > without.tokens

    def test_bound_tools_enter_the_fingerprint(self, handler):
        """After a call with bound tools, the same prompt with the same tools is exact."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.bind_tools([get_weather]).invoke(PROMPT)
        with_tools = handler.estimate(PROMPT, model="fake-claude", tools=[get_weather])
        without = handler.estimate(PROMPT, model="fake-claude")
        assert with_tools.source == "exact"
        assert with_tools.tokens == llm.true_prompt_tokens(PROMPT, [get_weather])
        assert without.source != "exact"
        assert without.tokens < with_tools.tokens - 200

    def test_invocation_params_carry_the_bound_tools(self, recorder):
        """bind_tools puts the converted tools and tool_choice in invocation_params."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        llm.bind_tools([get_weather], tool_choice="auto").invoke(PROMPT)
        params = recorder.starts[0]["invocation_params"]
        assert params["tools"] == [convert_to_openai_tool(get_weather)]
        assert params["tool_choice"] == "auto"

    def test_with_structured_output_is_counted(self, handler):
        """with_structured_output binds the schema as a tool, and its cost is learned."""
        llm = FakeUsageChatModel(callbacks=[handler])
        person = llm.with_structured_output(Person).invoke(PROMPT)
        assert isinstance(person, Person)
        est = handler.estimate(PROMPT, model="fake-claude", tools=[Person])
        assert est.source == "exact"
        assert est.tokens == llm.true_prompt_tokens(PROMPT, [Person])

    def test_response_format_json_schema_is_learned(self, handler):
        """An OpenAI-style json_schema response_format is learned as the schema's tool."""
        llm = FakeUsageChatModel(callbacks=[handler])
        function = convert_to_openai_tool(Person)["function"]
        response_format = {
            "type": "json_schema",
            "json_schema": {
                "name": function["name"],
                "description": function["description"],
                "schema": function["parameters"],
                "strict": True,
            },
        }
        llm.bind(response_format=response_format).invoke(PROMPT)
        stats = handler.stats()["fake-claude"]
        assert stats.rejected == {}
        assert stats.observations == 1
        est = handler.estimate(PROMPT, model="fake-claude", tools=[Person])
        assert est.source == "exact"
        assert est.tokens == llm.true_prompt_tokens(
            PROMPT, response_format=response_format
        )

    def test_response_format_class_does_not_poison_the_plain_prompt(self, handler):
        """A pydantic response_format is prompt: its cost is not filed under no tools."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.bind(response_format=Person).invoke(PROMPT)
        plain = handler.estimate(PROMPT, model="fake-claude")
        shaped = handler.estimate(PROMPT, model="fake-claude", tools=[Person])
        assert plain.source != "exact"
        assert shaped.source == "exact"
        assert shaped.tokens == llm.true_prompt_tokens(PROMPT, response_format=Person)

    def test_structured_output_schema_in_options_is_counted(self, handler):
        """A schema found only in options (JSON mode) is learned as the prompt's tool."""
        schema = Person.model_json_schema()
        drive_run(
            handler,
            {"input_tokens": 90, "output_tokens": 9, "total_tokens": 99},
            content='{"name": "Ann", "age": 3}',
            metadata={"ls_model_name": "m"},
            invocation_params={"response_format": {"type": "json_object"}},
            options={"ls_structured_output_format": {"kwargs": {}, "schema": schema}},
        )
        assert handler.estimate(PROMPT, model="m", tools=[schema]).tokens == 90
        assert handler.estimate(PROMPT, model="m").source != "exact"


class TestCandidates:
    """n > 1 candidates each repeat the full usage."""

    def test_two_candidates_are_billed_once(self, handler):
        """Two generations carrying the same usage are billed and learned once."""
        usage = {"input_tokens": 40, "output_tokens": 5, "total_tokens": 45}
        run_id = start_run(handler, metadata={"ls_model_name": "m"})
        end_run(
            handler,
            run_id,
            AIMessage("Paris.", usage_metadata=usage),
            AIMessage("Lyon?", usage_metadata=usage),
        )
        assert handler.usage["m"] == usage
        est = handler.estimate(PROMPT, model="m")
        assert (est.source, est.tokens) == ("exact", 40)


class TestStreaming:
    """stream() merges chunks; the handler must tell honest usage from inflated."""

    def test_final_chunk_usage_is_learned(self, handler):
        """Usage on the last chunk only is the call's usage, and is learned."""
        llm = FakeUsageChatModel(stream_usage="final", callbacks=[handler])
        chunks = list(llm.stream(PROMPT))
        assert len(chunks) > 2
        est = handler.estimate(PROMPT, model="fake-claude")
        assert est.source == "exact"
        assert est.tokens == llm.true_prompt_tokens(PROMPT)

    def test_cumulative_usage_is_learned_from_the_last_chunk(self, handler):
        """Cumulative chunk usage sums to an inflated total; the last chunk's is learned."""
        llm = FakeUsageChatModel(stream_usage="cumulative", callbacks=[handler])
        for _ in llm.stream(PROMPT):
            pass
        stats = handler.stats()["fake-claude"]
        assert stats.rejected == {}
        assert stats.observations == 1
        assert stats.last_usage is not None
        assert "cumulative_stream" in stats.last_usage.flags
        est = handler.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))

    def test_inputs_that_change_within_a_stream_are_rejected(self, handler):
        """Chunks naming different prompt counts are summed, not cumulative: rejected."""
        run_id = start_run(handler, metadata={"ls_model_name": "m"})
        for n in (40, 55):
            chunk = AIMessageChunk(
                "x",
                usage_metadata={
                    "input_tokens": n,
                    "output_tokens": 1,
                    "total_tokens": n + 1,
                },
            )
            handler.on_llm_new_token(
                "x", chunk=ChatGenerationChunk(message=chunk), run_id=run_id
            )
        merged = {"input_tokens": 95, "output_tokens": 2, "total_tokens": 97}
        end_run(handler, run_id, AIMessage("xx", usage_metadata=merged))
        assert handler.stats()["m"].rejected == {"inflated streamed usage": 1}
        assert handler.usage["m"]["input_tokens"] == 55

    def test_cumulative_usage_is_billed_as_reported_once(self, handler):
        """A cumulative stream is billed the call's own usage, not the merged sum."""
        llm = FakeUsageChatModel(stream_usage="cumulative", callbacks=[handler])
        last = None
        for chunk in llm.stream(PROMPT):
            last = chunk
        assert last is not None
        assert handler.usage["fake-claude"] == _usage_of(last)
        assert handler.usage["fake-claude"]["input_tokens"] == (
            llm.true_prompt_tokens(PROMPT)
        )

    def test_stream_without_usage_is_no_usage(self, handler):
        """A stream that reports no usage counts as 'no usage' and bills nothing."""
        llm = FakeUsageChatModel(stream_usage="none", callbacks=[handler])
        for _ in llm.stream(PROMPT):
            pass
        assert handler.stats()["fake-claude"].rejected == {"no usage": 1}
        assert handler.usage == {}
        assert handler.pending_runs == 0


class TestThreadsAndAsync:
    """The handler is called from the event loop and from executor threads."""

    def test_ainvoke_learns(self, handler):
        """An ainvoke fires the hooks and the prompt is learned."""
        llm = FakeUsageChatModel(callbacks=[handler])
        asyncio.run(llm.ainvoke(PROMPT))
        est = handler.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))
        assert handler.pending_runs == 0

    def test_async_hooks_run_on_the_event_loop_thread(self, recorder):
        """With run_inline, ainvoke calls the handler on the loop's thread, not an executor."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        asyncio.run(llm.ainvoke(PROMPT))
        assert recorder.end_threads == [threading.get_ident()]

    def test_abatch_learns_every_prompt(self, recorder):
        """An abatch makes one run per prompt and learns each."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        prompts = [[HumanMessage(f"Async question {i} on budgets.")] for i in range(5)]
        asyncio.run(llm.abatch(prompts))
        starts = {run for kind, run in recorder.events if kind == "chat_model_start"}
        assert len(starts) == 5
        for prompt in prompts:
            assert recorder.estimate(prompt, model="fake-claude").source == "exact"

    def test_astream_learns_final_usage(self, handler):
        """An astream with final-chunk usage is learned."""
        llm = FakeUsageChatModel(callbacks=[handler])

        async def consume() -> int:
            return len([chunk async for chunk in llm.astream(PROMPT)])

        assert asyncio.run(consume()) > 2
        est = handler.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))

    def test_astream_learns_cumulative_usage(self, handler):
        """An astream with cumulative usage is learned from its last chunk, like stream."""
        llm = FakeUsageChatModel(stream_usage="cumulative", callbacks=[handler])

        async def consume() -> None:
            async for _ in llm.astream(PROMPT):
                pass

        asyncio.run(consume())
        assert handler.stats()["fake-claude"].rejected == {}
        est = handler.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))

    def test_sync_batch_ends_in_pool_threads(self, recorder):
        """Sync batch calls the handler from pool threads; every run is learned."""
        llm = FakeUsageChatModel(callbacks=[recorder])
        prompts = [[HumanMessage(f"Threaded question {i}.")] for i in range(8)]
        replies = llm.batch(prompts, config={"max_concurrency": 4})
        assert threading.get_ident() not in set(recorder.end_threads)
        assert recorder.pending_runs == 0
        assert recorder.usage["fake-claude"]["input_tokens"] == sum(
            llm.true_prompt_tokens(p) for p in prompts
        )
        assert recorder.usage["fake-claude"]["output_tokens"] == sum(
            _usage_of(r)["output_tokens"] for r in replies
        )


class TestErrors:
    """Model errors, handler bugs and cancelled runs."""

    def test_model_error_pops_the_pending_run(self, recorder):
        """A failing model fires on_llm_error, which drops the run and counts it."""
        llm = FakeUsageChatModel(fail_with=ValueError, callbacks=[recorder])
        with pytest.raises(ValueError, match="told to fail"):
            llm.invoke(PROMPT)
        assert recorder.kinds() == ["chat_model_start", "llm_error"]
        assert recorder.pending_runs == 0
        assert recorder.stats()["fake-claude"].rejected == {"model error": 1}
        assert recorder.usage == {}

    def test_async_model_error_pops_the_pending_run(self, handler):
        """A failing ainvoke also drops the run."""
        llm = FakeUsageChatModel(fail_with=RuntimeError("boom"), callbacks=[handler])
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(llm.ainvoke(PROMPT))
        assert handler.pending_runs == 0
        assert handler.stats()["fake-claude"].rejected == {"model error": 1}

    def test_a_bad_report_is_logged_when_read(self, caplog):
        """With raise_error False, a reply that cannot be learned is logged at the next read."""
        quiet = TokenCalibrationHandler()
        with caplog.at_level(logging.ERROR):
            drive_run(quiet, SMALL_USAGE, metadata={"ls_model_name": "m"}, bad=True)
            assert quiet.usage == {"m": SMALL_USAGE}  # billed before it failed
        assert [r.exc_info is not None for r in caplog.records] == [True]

    def test_a_bad_report_surfaces_with_raise_error(self, handler):
        """With raise_error True the same failure reaches the reader (so tests see bugs)."""
        drive_run(handler, SMALL_USAGE, metadata={"ls_model_name": "m"}, bad=True)
        with pytest.raises(TypeError):
            handler.count_messages(PROMPT, model="m")

    def test_a_bad_report_loses_no_other_report(self):
        """Settling goes on past a reply that fails: the next run is still learned."""
        quiet = TokenCalibrationHandler()
        drive_run(quiet, SMALL_USAGE, metadata={"ls_model_name": "m"}, bad=True)
        drive_run(quiet, SMALL_USAGE, metadata={"ls_model_name": "m"})
        assert quiet.stats()["m"].observations == 1

    def test_cancelled_ainvoke_expires_by_ttl(self):
        """A cancelled ainvoke fires neither end nor error; its entry expires by TTL."""
        now = [0.0]
        handler = TokenCalibrationHandler(clock=lambda: now[0], pending_ttl=60.0)
        handler.raise_error = True
        llm = FakeUsageChatModel(latency=30.0, callbacks=[handler])

        async def cancel_one() -> None:
            task = asyncio.create_task(llm.ainvoke(PROMPT))
            for _ in range(10):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_one())
        assert handler.pending_runs == 1
        now[0] = 59.0
        assert handler.pending_runs == 1
        now[0] = 61.0
        assert handler.pending_runs == 0
        # The lost run is counted where stats and health show it.
        (stats,) = handler.stats().values()
        assert stats.rejected.get("never ended") == 1

    def test_pending_runs_are_bounded_by_size(self):
        """Many cancelled runs never hold more than pending_size entries."""
        handler = TokenCalibrationHandler(clock=lambda: 0.0, pending_size=8)
        handler.raise_error = True
        llm = FakeUsageChatModel(latency=30.0, callbacks=[handler])

        async def cancel_many() -> None:
            tasks = [
                asyncio.create_task(llm.ainvoke([HumanMessage(f"q{i}")]))
                for i in range(20)
            ]
            for _ in range(10):
                await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(cancel_many())
        assert handler.pending_runs == 8
        (stats,) = handler.stats().values()
        assert stats.rejected.get("never ended") == 12

    def test_late_end_is_billed_under_the_model_key(self):
        """An end whose start expired is billed under the configured model key."""
        now = [0.0]
        handler = TokenCalibrationHandler(clock=lambda: now[0], pending_ttl=60.0)
        handler.raise_error = True
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        run_id = start_run(
            handler, OTHER_PROMPT, metadata={"ls_model_name": "fake-claude"}
        )
        now[0] = 120.0
        reply = FakeUsageChatModel().invoke(OTHER_PROMPT)
        assert isinstance(reply, AIMessage)
        end_run(handler, run_id, reply)
        assert set(handler.usage) == {"fake-claude"}
        assert handler.stats()["fake-claude"].observations == 1


def _chunk_with_usage() -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk("t", usage_metadata=SMALL_USAGE))


# Each hook called with an unhashable run id: its internals fail on the first
# lookup of the pending runs (one run is in flight: an empty dict's pop would
# not hash the key).
MALFORMED_HOOK_CALLS = [
    pytest.param(
        lambda h: h.on_chat_model_start({}, [PROMPT], run_id=[]),
        id="on_chat_model_start",
    ),
    pytest.param(lambda h: h.on_llm_start({}, ["hi"], run_id=[]), id="on_llm_start"),
    pytest.param(
        lambda h: h.on_llm_new_token("t", chunk=_chunk_with_usage(), run_id=[]),
        id="on_llm_new_token",
    ),
    pytest.param(
        lambda h: (start_run(h), h.on_llm_end(LLMResult(generations=[]), run_id=[])),
        id="on_llm_end",
    ),
    pytest.param(
        lambda h: (start_run(h), h.on_llm_error(ValueError("boom"), run_id=[])),
        id="on_llm_error",
    ),
]


class TestHookGuard:
    """Every hook keeps a handler failure out of the model call."""

    @pytest.mark.parametrize("call", MALFORMED_HOOK_CALLS)
    def test_a_failing_hook_logs_and_returns(self, call, caplog):
        """With raise_error False, a hook whose internals fail logs the error and returns."""
        quiet = TokenCalibrationHandler()
        with caplog.at_level(logging.ERROR):
            call(quiet)
        assert [r.exc_info is not None for r in caplog.records] == [True]

    @pytest.mark.parametrize("call", MALFORMED_HOOK_CALLS)
    def test_a_failing_hook_raises_with_raise_error(self, call, handler):
        """With raise_error True, the same failure reaches the caller."""
        with pytest.raises(TypeError, match="unhashable"):
            call(handler)


def _sync_threads() -> int:
    return sum(t.name == "tokencal-sync" for t in threading.enumerate())


class TestMemoryStore:
    """An in-memory store: private by default, shared only when passed in."""

    @pytest.mark.parametrize(
        "store", [pytest.param(None, id="none"), pytest.param("memory://", id="url")]
    )
    def test_a_private_store_starts_no_sync_thread(self, store):
        """Neither store=None nor store='memory://' starts a tokencal-sync thread."""
        before = _sync_threads()
        handler = TokenCalibrationHandler(store=store)
        assert _sync_threads() == before
        handler.close()

    def test_memory_url_shares_nothing(self):
        """Two handlers given 'memory://' each learn alone."""
        first = TokenCalibrationHandler(store="memory://")
        second = TokenCalibrationHandler(store="memory://")
        FakeUsageChatModel(callbacks=[first]).invoke(PROMPT)
        first.flush()
        second.flush()
        assert second.models == []
        first.close()
        second.close()

    def test_a_memory_store_instance_is_shared(self):
        """A MemoryStore passed to two handlers carries what one learns to the other."""
        store = MemoryStore()
        first = TokenCalibrationHandler(store=store, sync_interval=3600)
        second = TokenCalibrationHandler(store=store, sync_interval=3600)
        llm = FakeUsageChatModel(callbacks=[first])
        llm.invoke(PROMPT)
        first.flush()
        second.flush()
        est = second.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))
        first.close()
        second.close()


class TestLLMCache:
    """LLM-cache hits fire start and end but cost nothing."""

    def test_cache_hit_learns_nothing(self, handler, llm_cache):
        """The second identical call is a cache hit and is rejected as such."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        llm.invoke(PROMPT)
        stats = handler.stats()["fake-claude"]
        assert stats.observations == 1
        assert stats.repeats == 0
        assert stats.rejected == {"llm cache hit": 1}

    def test_cache_hit_is_billed_zero(self, handler, llm_cache):
        """Only the first (real) call is billed; the cache hit adds nothing."""
        llm = FakeUsageChatModel(callbacks=[handler])
        first = llm.invoke(PROMPT)
        assert handler.usage["fake-claude"] == _usage_of(first)
        second = llm.invoke(PROMPT)
        assert _usage_of(second)["total_cost"] == 0
        assert handler.usage["fake-claude"] == _usage_of(first)

    def test_cache_hit_keeps_the_exact_count(self, handler, llm_cache):
        """After a cache hit the prompt is still counted exactly."""
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        llm.invoke(PROMPT)
        est = handler.estimate(PROMPT, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(PROMPT))


class TestNoUsage:
    """Runs that report no usage are 'no usage', never zeros."""

    def test_no_usage_is_counted_not_learned(self, handler):
        """report_usage=False runs count as 'no usage' and teach nothing."""
        llm = FakeUsageChatModel(report_usage=False, callbacks=[handler])
        llm.invoke(PROMPT)
        llm.invoke(OTHER_PROMPT)
        stats = handler.stats()["fake-claude"]
        assert stats.rejected == {"no usage": 2}
        assert stats.observations == 0
        assert handler.estimate(PROMPT, model="fake-claude").source == "local"

    def test_no_usage_is_not_billed(self, handler):
        """No usage means no bill entry, not an entry of zeros."""
        FakeUsageChatModel(report_usage=False, callbacks=[handler]).invoke(PROMPT)
        assert handler.usage == {}

    def test_zero_usage_is_no_usage(self, handler):
        """A usage of zero tokens is 'no usage', not a zero-token prompt."""
        usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        drive_run(handler, usage, metadata={"ls_model_name": "m"})
        assert handler.stats()["m"].rejected == {"no usage": 1}
        assert handler.estimate(PROMPT, model="m").source == "local"
        assert handler.usage == {}


class TestAttaching:
    """Where a handler applies: constructor, config, with_config."""

    def test_constructor_callbacks_apply_to_that_model_only(self, handler):
        """A handler given to one model's constructor never sees another model."""
        watched = FakeUsageChatModel(model="watched", callbacks=[handler])
        other = FakeUsageChatModel(model="other")
        watched.invoke(PROMPT)
        other.invoke(PROMPT)
        assert handler.models == ["watched"]

    def test_config_callbacks_are_inherited_by_a_chain(self, handler):
        """config={'callbacks': [h]} on prompt | llm reaches the model run."""
        prompt = ChatPromptTemplate.from_messages([("user", "Tell me about {topic}.")])
        llm = FakeUsageChatModel()
        (prompt | llm).invoke({"topic": "tides"}, config={"callbacks": [handler]})
        sent = prompt.invoke({"topic": "tides"}).to_messages()
        est = handler.estimate(sent, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(sent))

    def test_with_config_is_inherited(self, handler):
        """chain.with_config(callbacks=[h]) reaches the model run."""
        prompt = ChatPromptTemplate.from_messages([("user", "Explain {topic}.")])
        llm = FakeUsageChatModel()
        chain = (prompt | llm).with_config(callbacks=[handler])
        chain.invoke({"topic": "rainbows"})
        sent = prompt.invoke({"topic": "rainbows"}).to_messages()
        assert handler.estimate(sent, model="fake-claude").source == "exact"

    def test_same_handler_twice_is_billed_once(self, handler):
        """A handler on the constructor and in config is called once per run."""
        llm = FakeUsageChatModel(callbacks=[handler])
        reply = llm.invoke(PROMPT, config={"callbacks": [handler]})
        assert handler.usage["fake-claude"] == _usage_of(reply)


class TestPitfalls:
    """The traps listed in CALLBACKS.md."""

    @pytest.mark.parametrize("name", ["tap_output_iter", "tap_output_aiter"])
    def test_no_streaming_tap_methods(self, name):
        """The handler defines no tap methods that would turn invoke into stream."""
        assert not hasattr(TokenCalibrationHandler, name)

    def test_invoke_does_not_stream(self, recorder):
        """An invoke with the handler attached makes no token events (no stream)."""
        FakeUsageChatModel(callbacks=[recorder]).invoke(PROMPT)
        assert "llm_new_token" not in recorder.kinds()

    def test_serialized_is_not_mutated(self, handler):
        """The serialized dict LangChain passes is left exactly as it was."""
        serialized = {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "chat_models", "fake", "Fake"],
            "kwargs": {"model": "m", "extra": {"nested": [1, 2]}},
        }
        before = copy.deepcopy(serialized)
        drive_run(handler, SMALL_USAGE, serialized=serialized)
        assert handler.models == ["m"]
        assert serialized == before

    @pytest.mark.parametrize(
        "block",
        [
            pytest.param("image_url", id="openai-image-url"),
            pytest.param("image", id="langchain-image-block"),
        ],
    )
    @pytest.mark.parametrize("model", ["fake-claude", "gpt-4o"])
    def test_base64_image_is_not_counted_by_characters(self, handler, block, model):
        """A 200 KB base64 image costs far fewer tokens than its characters / 4."""
        data = base64.b64encode(bytes(range(256)) * 600).decode()
        assert len(data) > 200_000
        if block == "image_url":
            image = {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{data}"},
            }
        else:
            image = {"type": "image", "base64": data, "mime_type": "image/png"}
        message = HumanMessage(
            content=[{"type": "text", "text": "What is this?"}, image]
        )
        assert handler.count_messages([message], model=model) < 5_000

    @pytest.mark.parametrize(
        "block",
        [
            pytest.param("image_url", id="openai-image-url"),
            # LangChain rewrites this block to image_url before
            # on_chat_model_start; digests treat both forms alike.
            pytest.param("image", id="langchain-image-block"),
        ],
    )
    def test_image_prompt_is_learned_exactly(self, handler, block):
        """A prompt with an image is still known exactly after its call."""
        data = base64.b64encode(bytes(range(256)) * 600).decode()
        if block == "image_url":
            image = {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{data}"},
            }
        else:
            image = {"type": "image", "base64": data, "mime_type": "image/png"}
        prompt = [
            HumanMessage(content=[{"type": "text", "text": "Describe it."}, image])
        ]
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(prompt)
        est = handler.estimate(prompt, model="fake-claude")
        assert (est.source, est.tokens) == ("exact", llm.true_prompt_tokens(prompt))

    @pytest.mark.parametrize("conservative", [False, True])
    def test_trim_messages_keeps_the_budget(self, handler, conservative):
        """trim_messages with the handler's counter keeps the longest suffix within budget."""
        history: list[BaseMessage] = [SystemMessage("You are a careful assistant.")]
        for i in range(999):
            cls = HumanMessage if i % 2 == 0 else AIMessage
            history.append(
                cls(f"Turn {i}: " + "the river bends near the market " * (1 + i % 7))
            )
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(history[:40])
        counter = handler.counter("fake-claude", conservative=conservative)
        kept = trim_messages(
            history, max_tokens=5_000, token_counter=counter, strategy="last"
        )
        assert kept
        assert kept[-1] is history[-1]
        assert counter(kept) <= 5_000
        assert counter(history[-(len(kept) + 1) :]) > 5_000

    def test_counter_takes_the_whole_list(self, handler):
        """The counter's first parameter is not annotated BaseMessage, so trim_messages passes lists."""
        counter = handler.counter("fake-claude")
        (param, *_) = inspect.signature(counter).parameters.values()
        assert param.annotation is not BaseMessage
        assert not isinstance(param.annotation, str)
        seen: list[object] = []

        def spy(messages):
            seen.append(messages)
            return counter(messages)

        spy.__signature__ = inspect.signature(counter)  # type: ignore[attr-defined]
        trim_messages(PROMPT * 10, max_tokens=60, token_counter=spy, strategy="last")
        assert seen
        assert all(isinstance(batch, list) for batch in seen)

    def test_conservative_counter_counts_high(self, handler):
        """The conservative counter returns the interval's high end."""
        est = handler.estimate(PROMPT, model="fake-claude")
        assert handler.counter("fake-claude", conservative=True)(PROMPT) == est.high
        assert handler.counter("fake-claude")(PROMPT) == est.tokens
        assert est.high > est.tokens

    def test_counting_never_mutates_messages(self, handler):
        """Counting, estimating and trimming leave the messages unchanged."""
        history = [
            SystemMessage("Be brief."),
            HumanMessage(
                content=[{"type": "text", "text": "Weather?"}],
                name="bob",
                additional_kwargs={"k": [1]},
            ),
            AIMessage(
                "",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "Oslo"}, "id": "c9"}
                ],
            ),
            ToolMessage("rain", tool_call_id="c9"),
        ]
        before = copy.deepcopy(history)
        FakeUsageChatModel(callbacks=[handler]).invoke(history)
        handler.count_messages(history, model="fake-claude", tools=[get_weather])
        handler.estimate(history[1:], model="fake-claude")
        trim_messages(
            history, max_tokens=30, token_counter=handler.counter("fake-claude")
        )
        assert history == before
        assert [m.model_dump() for m in history] == [m.model_dump() for m in before]


class TestUsage:
    """handler.usage aggregates what the calls reported."""

    def test_usage_totals_equal_the_reports(self, handler):
        """Totals per model are the sums of the reported usage, details included."""
        llm = FakeUsageChatModel(
            reasoning_tokens=7, cache_read_tokens=5, callbacks=[handler]
        )
        replies = [
            llm.invoke([HumanMessage(f"Question {i} about the tides and the moon.")])
            for i in range(3)
        ]
        reports = [_usage_of(r) for r in replies]
        assert handler.usage == {
            "fake-claude": {
                "input_tokens": sum(r["input_tokens"] for r in reports),
                "output_tokens": sum(r["output_tokens"] for r in reports),
                "total_tokens": sum(r["total_tokens"] for r in reports),
                "input_token_details": {"cache_read": 15},
                "output_token_details": {"reasoning": 21},
            }
        }

    def test_usage_is_kept_per_model(self, handler):
        """Two models' usage is kept apart."""
        a = FakeUsageChatModel(model="model-a", callbacks=[handler]).invoke(PROMPT)
        b = FakeUsageChatModel.openai_like("gpt-4o", callbacks=[handler]).invoke(PROMPT)
        assert handler.usage == {"model-a": _usage_of(a), "gpt-4o": _usage_of(b)}

    def test_usage_is_a_snapshot(self, handler):
        """Mutating the returned mapping does not change the handler's totals."""
        FakeUsageChatModel(callbacks=[handler]).invoke(PROMPT)
        snapshot = handler.usage
        snapshot.clear()
        assert handler.usage


class TestObserve:
    """Feeding the handler without callbacks."""

    def test_observe_openai_chat_completion(self, handler):
        """A raw OpenAI chat completion dict is learned under the given model."""
        fake = FakeUsageChatModel.openai_like("gpt-4o")
        tokens = fake.true_prompt_tokens(PROMPT)
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Paris."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": tokens,
                "completion_tokens": 2,
                "total_tokens": tokens + 2,
            },
        }
        assert handler.observe(PROMPT, payload, model="gpt-4o") is None
        est = handler.estimate(PROMPT, model="gpt-4o-2024-08-06")
        assert (est.source, est.tokens) == ("exact", tokens)
        assert handler.usage["gpt-4o"]["input_tokens"] == tokens

    def test_observe_anthropic_message(self, handler):
        """A raw Anthropic message dict counts cache reads as input."""
        payload = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Paris."}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 12,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 20,
                "output_tokens": 3,
            },
        }
        reason = handler.observe(
            PROMPT, payload, model="claude-sonnet-4-5", provider="anthropic"
        )
        assert reason is None
        assert handler.count_messages(PROMPT, model="claude-sonnet-4-5") == 32

    def test_observe_ai_message(self, handler):
        """An AIMessage with usage_metadata is learned, and its reply cost too."""
        usage = {"input_tokens": 30, "output_tokens": 4, "total_tokens": 34}
        reply = AIMessage("Paris, on the Seine.", usage_metadata=usage)
        assert handler.observe(PROMPT, reply, model="m") is None
        assert handler.count_messages(PROMPT, model="m") == 30
        follow_up = [*PROMPT, reply, HumanMessage("And Lyon?")]
        assert handler.estimate(follow_up, model="m").known_messages == 3

    def test_observe_token_usage(self, handler):
        """A TokenUsage is learned as is."""
        usage = TokenUsage(input_tokens=31, output_tokens=2, total_tokens=33)
        assert handler.observe(PROMPT, usage, model="m") is None
        assert handler.count_messages(PROMPT, model="m") == 31

    @pytest.mark.parametrize(
        ("response", "reason"),
        [
            pytest.param(AIMessage("no usage"), "no usage", id="no-usage"),
            pytest.param(
                TokenUsage(31, 2, 33, flags=frozenset({"llm_cache_hit"})),
                "llm cache hit",
                id="cache-hit",
            ),
            pytest.param(
                TokenUsage(10**8, 2, 10**8 + 2), "implausible ratio", id="absurd"
            ),
        ],
    )
    def test_observe_returns_the_rejection_reason(self, handler, response, reason):
        """A report that is not learned returns why, and is counted by reason."""
        assert handler.observe(PROMPT, response, model="m") == reason
        assert handler.stats()["m"].rejected == {reason: 1}
        assert handler.estimate(PROMPT, model="m").source == "local"

    def test_observe_many_counts_outcomes(self, handler):
        """observe_many returns how many were learned and rejected by reason."""
        records = [
            (PROMPT, TokenUsage(31, 2, 33)),
            (
                OTHER_PROMPT,
                {"input_tokens": 18, "output_tokens": 1, "total_tokens": 19},
            ),
            (PROMPT, AIMessage("none")),
        ]
        assert handler.observe_many(records, model="m") == {"learned": 2, "no usage": 1}

    def test_aobserve_learns(self, handler):
        """The async aobserve learns like observe."""
        usage = TokenUsage(input_tokens=31, output_tokens=2, total_tokens=33)
        assert asyncio.run(handler.aobserve(PROMPT, usage, model="m")) is None
        assert handler.count_messages(PROMPT, model="m") == 31
