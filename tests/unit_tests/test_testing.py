"""Tests for the offline fake chat models in `langchain_tokencal.testing`."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from pydantic import BaseModel, ValidationError

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel
from langchain_tokencal.testing import _model as testing

PROMPT = [
    SystemMessage("You are a terse assistant."),
    HumanMessage("How many tokens does this question cost?"),
]


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


def get_time(zone: str) -> str:
    """Get the current time in a time zone."""
    return f"noon in {zone}"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


class Recorder(BaseCallbackHandler):
    """Records what LangChain tells a handler; raises its own errors."""

    raise_error = True

    def __init__(self) -> None:
        """Start with nothing recorded."""
        self.starts: list[dict[str, Any]] = []
        self.ends: list[Any] = []
        self.errors: list[BaseException] = []

    def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
        """Record the start kwargs (metadata, invocation_params...)."""
        self.starts.append(kwargs)

    def on_llm_end(self, response, *, run_id, **kwargs):
        """Record the result."""
        self.ends.append(response)

    def on_llm_error(self, error, *, run_id, **kwargs):
        """Record the error."""
        self.errors.append(error)


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """Merge chunks the way LangChain does after a stream."""
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    return merged


def cl100k(text: str) -> int:
    """Count tokens with cl100k_base, the default hidden tokenizer."""
    return len(tiktoken.get_encoding("cl100k_base").encode_ordinary(text))


class TestInvoke:
    """Behaviour of invoke: usage, metadata and replies."""

    def test_input_tokens_equal_true_prompt_tokens(self):
        """The reported input is exactly the hidden template's count."""
        llm = FakeUsageChatModel()
        reply = llm.invoke(PROMPT)
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["input_tokens"] == llm.true_prompt_tokens(PROMPT)

    def test_output_tokens_are_the_reply_tokens(self):
        """The reported output is the hidden tokenizer's count of the reply text."""
        reply = FakeUsageChatModel().invoke(PROMPT)
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["output_tokens"] == cl100k(reply.text)

    def test_total_is_input_plus_output(self):
        """The total is the sum of input and output."""
        usage = FakeUsageChatModel().invoke(PROMPT).usage_metadata
        assert usage is not None
        assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]

    def test_no_details_when_zero(self):
        """Without reasoning or cache reads, no detail dicts are reported."""
        usage = FakeUsageChatModel().invoke(PROMPT).usage_metadata
        assert usage is not None
        assert "input_token_details" not in usage
        assert "output_token_details" not in usage

    def test_response_metadata_reports_default_snapshot(self):
        """The reply names a dated snapshot, the provider and the finish reason."""
        reply = FakeUsageChatModel(model="fake-claude").invoke(PROMPT)
        assert reply.response_metadata == {
            "model_name": "fake-claude-20250101",
            "model_provider": "anthropic",
            "finish_reason": "stop",
        }

    def test_response_metadata_reports_given_snapshot(self):
        """An explicit snapshot is what the reply reports as its model name."""
        llm = FakeUsageChatModel(model="m", snapshot="m-20250929")
        assert llm.invoke(PROMPT).response_metadata["model_name"] == "m-20250929"

    def test_every_reply_has_a_fresh_id(self):
        """Each call's message has its own id, like a provider's."""
        llm = FakeUsageChatModel()
        first, second = llm.invoke(PROMPT), llm.invoke(PROMPT)
        assert first.id
        assert second.id
        assert first.id != second.id

    def test_responses_cycle(self):
        """Given responses are returned in order and then repeat."""
        llm = FakeUsageChatModel(responses=["one", "two"])
        assert [llm.invoke(PROMPT).text for _ in range(3)] == ["one", "two", "one"]

    def test_stop_truncates_reply(self):
        """A stop sequence cuts the reply before it, and the output count follows."""
        llm = FakeUsageChatModel(responses=["alpha beta STOP gamma"])
        reply = llm.invoke(PROMPT, stop=["STOP"])
        assert reply.text == "alpha beta "
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["output_tokens"] == cl100k("alpha beta ")

    @settings(max_examples=60, deadline=None)
    @given(question=st.text(max_size=200))
    def test_default_replies_are_10_to_400_tokens(self, question):
        """Generated replies stay within 10 to 400 tokens whatever the prompt."""
        reply = FakeUsageChatModel().invoke([HumanMessage(question)])
        assert reply.usage_metadata is not None
        assert 10 <= reply.usage_metadata["output_tokens"] <= 400

    def test_default_replies_vary_in_kind(self):
        """Over many prompts, replies include code, JSON, CJK and varied lengths."""
        llm = FakeUsageChatModel()
        replies = [llm.invoke([HumanMessage(f"question {i}")]) for i in range(120)]
        texts = [reply.text for reply in replies]
        assert any("```python" in text for text in texts)
        assert any("```json" in text for text in texts)
        assert any(any("\u3040" <= ch <= "\u9fff" for ch in text) for text in texts)
        lengths = {reply.usage_metadata["output_tokens"] for reply in replies}  # type: ignore[index]
        assert min(lengths) < 50
        assert max(lengths) > 200

    def test_report_usage_false_gives_no_usage(self):
        """With report_usage=False the reply carries no usage_metadata."""
        assert (
            FakeUsageChatModel(report_usage=False).invoke(PROMPT).usage_metadata is None
        )

    def test_reply_reaches_on_llm_end(self):
        """The handler sees the same usage the caller gets."""
        recorder = Recorder()
        reply = FakeUsageChatModel(callbacks=[recorder]).invoke(PROMPT)
        message = recorder.ends[0].generations[0][0].message
        assert message.usage_metadata == reply.usage_metadata


class TestTemplate:
    """The hidden chat template behind input_tokens."""

    def test_single_message_rule(self):
        """One message costs framing + per-message + role + content tokens."""
        llm = FakeUsageChatModel(tokenizer="charclass")
        # charclass: "user" is 1 token, "hello" 2 (one per 4 letters).
        assert llm.true_prompt_tokens([HumanMessage("hello")]) == 7 + 5 + 1 + 2

    def test_name_costs_its_tokens_plus_one(self):
        """A message name adds its tokens plus one."""
        llm = FakeUsageChatModel()
        plain = llm.true_prompt_tokens([HumanMessage("hi")])
        named = llm.true_prompt_tokens([HumanMessage("hi", name="alice")])
        assert named - plain == cl100k("alice") + 1

    def test_tool_calls_cost_name_args_and_three(self):
        """Each tool call adds its name's and JSON arguments' tokens plus 3."""
        llm = FakeUsageChatModel()
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}
        plain = llm.true_prompt_tokens([AIMessage("")])
        with_call = llm.true_prompt_tokens([AIMessage("", tool_calls=[call])])
        expected = cl100k("get_weather") + cl100k('{"city":"Paris"}') + 3
        assert with_call - plain == expected

    def test_tool_message_costs_its_call_id(self):
        """A tool message adds the tokens of its tool_call_id."""
        llm = FakeUsageChatModel()
        cost = llm.true_prompt_tokens([ToolMessage("ok", tool_call_id="call_abc")])
        assert cost == 7 + 5 + cl100k("tool") + cl100k("ok") + cl100k("call_abc")

    def test_image_is_flat_whatever_its_size(self):
        """An image block costs image_tokens, never its base64 length."""
        llm = FakeUsageChatModel()
        small = {"type": "image", "base64": "A" * 10, "mime_type": "image/png"}
        large = {
            "type": "image_url",
            "image_url": {"url": "data:;base64," + "A" * 9999},
        }
        costs = {
            llm.true_prompt_tokens(
                [HumanMessage(content=[{"type": "text", "text": "x"}, block])]
            )
            for block in (small, large)
        }
        assert costs == {7 + 5 + cl100k("user") + cl100k("x") + 258}

    def test_tools_add_preamble_and_schemas(self):
        """Bound tools add the preamble once and each schema's JSON tokens."""
        llm = FakeUsageChatModel()
        tools = testing._as_openai_tools([get_weather, get_time])
        schema_tokens = sum(cl100k(testing._canonical_json(tool)) for tool in tools)
        delta = llm.true_prompt_tokens(
            PROMPT, [get_weather, get_time]
        ) - llm.true_prompt_tokens(PROMPT)
        assert delta == 300 + schema_tokens

    def test_response_format_adds_its_json(self):
        """A response_format schema adds its canonical JSON's tokens."""
        llm = FakeUsageChatModel()
        schema = Person.model_json_schema()
        delta = llm.true_prompt_tokens(
            PROMPT, response_format=schema
        ) - llm.true_prompt_tokens(PROMPT)
        assert delta == cl100k(testing._canonical_json(schema))

    def test_response_format_is_counted_on_invoke(self):
        """A bound response_format is counted and answered with matching JSON."""
        llm = FakeUsageChatModel()
        schema = Person.model_json_schema()
        reply = llm.invoke(PROMPT, response_format=schema)
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["input_tokens"] == llm.true_prompt_tokens(
            PROMPT, response_format=schema
        )
        Person.model_validate_json(reply.text)

    @settings(max_examples=50, deadline=None)
    @given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=6))
    def test_each_message_costs_at_least_its_overhead(self, texts):
        """Appending a message raises the count by at least tokens_per_message + role."""
        llm = FakeUsageChatModel()
        messages: list[BaseMessage] = [HumanMessage(text) for text in texts]
        before = llm.true_prompt_tokens(messages[:-1])
        assert llm.true_prompt_tokens(messages) - before >= 5 + cl100k("user")

    def test_num_tokens_from_messages_is_the_true_count(self):
        """The model is its own exact counter for LangChain's helpers."""
        llm = FakeUsageChatModel()
        assert llm.get_num_tokens_from_messages(list(PROMPT)) == llm.true_prompt_tokens(
            PROMPT
        )
        assert llm.get_num_tokens("hello world") == cl100k("hello world")

    def test_trim_messages_with_the_model_fits_the_budget(self):
        """trim_messages(token_counter=llm) keeps a suffix within the true budget."""
        llm = FakeUsageChatModel()
        history = [HumanMessage(f"message number {i} " * 5) for i in range(30)]
        kept = trim_messages(
            history, max_tokens=200, token_counter=llm, strategy="last"
        )
        assert 0 < len(kept) < len(history)
        assert llm.true_prompt_tokens(kept) <= 200


class TestBatch:
    """Behaviour of batch, including thread safety of the call counter."""

    def test_batch_reports_each_prompt(self):
        """Each batched prompt gets its own true input count."""
        llm = FakeUsageChatModel()
        prompts = [
            [HumanMessage("short")],
            [HumanMessage("a much longer question " * 9)],
        ]
        replies = llm.batch(prompts)
        assert [r.usage_metadata["input_tokens"] for r in replies] == [  # type: ignore[index]
            llm.true_prompt_tokens(p) for p in prompts
        ]

    def test_concurrent_batch_uses_each_response_once(self):
        """The response counter is safe under a thread-pool batch."""
        responses = [f"reply {i}" for i in range(40)]
        llm = FakeUsageChatModel(responses=responses)
        replies = llm.batch([PROMPT] * 40, config={"max_concurrency": 8})
        assert sorted(r.text for r in replies) == sorted(responses)


class TestStream:
    """Streaming usage in the final, cumulative and none modes."""

    def test_final_merged_usage_equals_true_usage(self):
        """With stream_usage="final", LangChain's merged usage is the true usage."""
        llm = FakeUsageChatModel()
        merged = merge(list(llm.stream(PROMPT)))
        expected = FakeUsageChatModel().invoke(PROMPT).usage_metadata
        assert merged.usage_metadata == expected
        assert merged.usage_metadata["input_tokens"] == llm.true_prompt_tokens(PROMPT)  # type: ignore[index]

    @settings(max_examples=100, deadline=None)
    @given(text=st.text(max_size=120))
    def test_stream_pieces_join_back_exactly(self, text):
        """The stream pieces of any text join back to exactly that text."""
        assert "".join(testing._split_words(text)) == text

    def test_final_only_last_chunk_has_usage(self):
        """With stream_usage="final", only the last chunk carries usage."""
        chunks = list(FakeUsageChatModel().stream(PROMPT))
        assert len(chunks) > 2
        assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
        assert chunks[-1].usage_metadata is not None

    def test_stream_text_equals_invoke_text(self):
        """Streaming splits the same reply invoke returns."""
        streamed = merge(list(FakeUsageChatModel().stream(PROMPT)))
        assert streamed.text == FakeUsageChatModel().invoke(PROMPT).text

    def test_merged_metadata_has_snapshot_once(self):
        """The merged message names the snapshot once, not concatenated."""
        merged = merge(list(FakeUsageChatModel().stream(PROMPT)))
        assert merged.response_metadata["model_name"] == "fake-claude-20250101"

    def test_cumulative_merged_input_is_a_multiple(self):
        """With stream_usage="cumulative", the merged input is k times the truth."""
        llm = FakeUsageChatModel(stream_usage="cumulative")
        chunks = list(llm.stream(PROMPT))
        merged = merge(chunks)
        true_input = llm.true_prompt_tokens(PROMPT)
        assert merged.usage_metadata is not None
        assert merged.usage_metadata["input_tokens"] == len(chunks) * true_input
        assert len(chunks) > 1

    def test_cumulative_last_chunk_is_the_truth(self):
        """With stream_usage="cumulative", the last chunk alone is the true usage."""
        llm = FakeUsageChatModel(stream_usage="cumulative")
        chunks = list(llm.stream(PROMPT))
        assert (
            chunks[-1].usage_metadata
            == FakeUsageChatModel().invoke(PROMPT).usage_metadata
        )
        outputs = [c.usage_metadata["output_tokens"] for c in chunks]  # type: ignore[index]
        assert outputs == sorted(outputs)

    def test_cumulative_inflation_reaches_on_llm_end(self):
        """The handler's merged message after stream() carries the inflated sum."""
        recorder = Recorder()
        llm = FakeUsageChatModel(stream_usage="cumulative", callbacks=[recorder])
        chunks = list(llm.stream(PROMPT))
        message = recorder.ends[0].generations[0][0].message
        assert message.usage_metadata["input_tokens"] == len(
            chunks
        ) * llm.true_prompt_tokens(PROMPT)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"stream_usage": "none"}, id="stream-usage-none"),
            pytest.param(
                {"report_usage": False, "stream_usage": "cumulative"},
                id="report-usage-false",
            ),
        ],
    )
    def test_no_usage_when_disabled(self, kwargs):
        """Streams carry no usage when usage is off."""
        merged = merge(list(FakeUsageChatModel(**kwargs).stream(PROMPT)))
        assert merged.usage_metadata is None

    def test_tool_call_streams_as_chunks(self):
        """A streamed tool call merges into the message's tool_calls."""
        llm = FakeUsageChatModel().bind_tools([get_weather], tool_choice="any")
        merged = merge(list(llm.stream(PROMPT)))
        assert [call["name"] for call in merged.tool_calls] == ["get_weather"]
        assert merged.response_metadata["finish_reason"] == "tool_calls"


class TestAsync:
    """Behaviour of ainvoke, abatch, astream and latency."""

    def test_ainvoke_reports_true_usage(self):
        """An ainvoke reports the same usage as invoke."""
        reply = asyncio.run(FakeUsageChatModel().ainvoke(PROMPT))
        assert (
            reply.usage_metadata == FakeUsageChatModel().invoke(PROMPT).usage_metadata
        )

    def test_abatch_reports_each_prompt(self):
        """Each prompt in abatch gets its true input count."""
        llm = FakeUsageChatModel()
        prompts = [[HumanMessage(f"q{i} " * i)] for i in range(1, 6)]
        replies = asyncio.run(llm.abatch(prompts))
        assert [r.usage_metadata["input_tokens"] for r in replies] == [  # type: ignore[index]
            llm.true_prompt_tokens(p) for p in prompts
        ]

    def test_astream_final_merged_usage_is_true(self):
        """An astream with "final" merges to the true usage."""

        async def collect() -> list[AIMessageChunk]:
            return [chunk async for chunk in FakeUsageChatModel().astream(PROMPT)]

        merged = merge(asyncio.run(collect()))
        assert (
            merged.usage_metadata == FakeUsageChatModel().invoke(PROMPT).usage_metadata
        )

    def test_astream_cumulative_is_inflated(self):
        """An astream with "cumulative" merges to k times the true input."""
        llm = FakeUsageChatModel(stream_usage="cumulative")

        async def collect() -> list[AIMessageChunk]:
            return [chunk async for chunk in llm.astream(PROMPT)]

        chunks = asyncio.run(collect())
        assert merge(chunks).usage_metadata["input_tokens"] == len(
            chunks
        ) * llm.true_prompt_tokens(PROMPT)  # type: ignore[index]

    def test_latency_awaits_asyncio_sleep(self, monkeypatch):
        """The latency is awaited through asyncio.sleep on the async paths only."""
        slept: list[float] = []
        real_sleep = asyncio.sleep

        async def fake_sleep(delay: float, *args: Any) -> None:
            if delay:
                slept.append(delay)
            await real_sleep(0)

        llm = FakeUsageChatModel(latency=0.25)

        async def run() -> None:
            await llm.ainvoke(PROMPT)
            _ = [chunk async for chunk in llm.astream(PROMPT)]

        monkeypatch.setattr(asyncio, "sleep", fake_sleep)
        llm.invoke(PROMPT)
        asyncio.run(run())
        assert slept == [0.25, 0.25]


class TestTools:
    """Behaviour of bind_tools, tool calls and structured output."""

    def test_bound_tools_reach_invocation_params(self):
        """bind_tools puts OpenAI-format tools into invocation_params."""
        recorder = Recorder()
        llm = FakeUsageChatModel(callbacks=[recorder]).bind_tools([get_weather])
        llm.invoke(PROMPT)
        tools = recorder.starts[0]["invocation_params"]["tools"]
        assert tools[0]["type"] == "function"
        assert tools[0]["function"]["name"] == "get_weather"

    def test_bound_tools_grow_input(self):
        """Binding tools grows the reported input by the preamble and schemas."""
        llm = FakeUsageChatModel()
        plain = llm.invoke(PROMPT).usage_metadata
        bound = llm.bind_tools([get_weather]).invoke(PROMPT).usage_metadata
        schema = testing._canonical_json(testing._as_openai_tools([get_weather])[0])
        assert bound["input_tokens"] - plain["input_tokens"] == 300 + cl100k(schema)  # type: ignore[index]

    def test_tool_calls_every_second_call(self):
        """tool_calls_every=2 calls the first tool on every second call."""
        llm = FakeUsageChatModel(tool_calls_every=2).bind_tools([get_weather, get_time])
        replies = [llm.invoke(PROMPT) for _ in range(4)]
        assert [[c["name"] for c in r.tool_calls] for r in replies] == [
            [],
            ["get_weather"],
            [],
            ["get_weather"],
        ]

    def test_tool_call_usage_counts_the_call(self):
        """A tool-call reply's output counts the call's name and JSON arguments."""
        reply = (
            FakeUsageChatModel()
            .bind_tools([get_weather], tool_choice="any")
            .invoke(PROMPT)
        )
        call = reply.tool_calls[0]
        expected = (
            cl100k(call["name"]) + cl100k(testing._canonical_json(call["args"])) + 3
        )
        assert reply.usage_metadata["output_tokens"] == expected  # type: ignore[index]

    def test_agent_loop_ends_after_tool_result(self):
        """After a tool result the model answers in text, so agent loops end."""
        llm = FakeUsageChatModel(tool_calls_every=1).bind_tools([get_weather])
        first = llm.invoke(PROMPT)
        history = [
            *PROMPT,
            first,
            ToolMessage("sunny", tool_call_id=first.tool_calls[0]["id"]),
        ]
        second = llm.invoke(history)
        assert first.tool_calls
        assert not second.tool_calls
        assert second.text

    def test_agent_loop_input_counts_history(self):
        """The second turn of an agent loop reports the true count of the history."""
        model = FakeUsageChatModel(tool_calls_every=1)
        llm = model.bind_tools([get_weather])
        first = llm.invoke(PROMPT)
        history = [
            *PROMPT,
            first,
            ToolMessage("sunny", tool_call_id=first.tool_calls[0]["id"]),
        ]
        second = llm.invoke(history)
        assert second.usage_metadata["input_tokens"] == model.true_prompt_tokens(
            history, [get_weather]
        )  # type: ignore[index]

    @pytest.mark.parametrize(
        ("tool_choice", "name"),
        [
            pytest.param("any", "get_weather", id="any"),
            pytest.param("required", "get_weather", id="required"),
            pytest.param("get_time", "get_time", id="by-name"),
            pytest.param(
                {"type": "function", "function": {"name": "get_time"}},
                "get_time",
                id="openai-dict",
            ),
            pytest.param(
                {"type": "tool", "name": "get_time"}, "get_time", id="anthropic-dict"
            ),
        ],
    )
    def test_tool_choice_forces_a_call(self, tool_choice, name):
        """A forcing tool_choice makes the reply call that tool."""
        llm = FakeUsageChatModel().bind_tools(
            [get_weather, get_time], tool_choice=tool_choice
        )
        assert [call["name"] for call in llm.invoke(PROMPT).tool_calls] == [name]

    def test_unknown_tool_choice_raises(self):
        """A tool_choice naming no bound tool raises a ConfigError naming the tools."""
        llm = FakeUsageChatModel().bind_tools([get_weather], tool_choice="nope")
        with pytest.raises(ConfigError, match="get_weather"):
            llm.invoke(PROMPT)

    def test_tool_choice_none_never_calls(self):
        """tool_choice="none" suppresses tool calls even when one is due."""
        llm = FakeUsageChatModel(tool_calls_every=1).bind_tools(
            [get_weather], tool_choice="none"
        )
        assert not llm.invoke(PROMPT).tool_calls

    def test_with_structured_output_parses(self):
        """with_structured_output gets arguments that validate against the schema."""
        result = FakeUsageChatModel().with_structured_output(Person).invoke(PROMPT)
        assert isinstance(result, Person)


class TestLangSmithParams:
    """What LangChain reports to handlers at the start of a run."""

    def test_ls_params(self):
        """The model reports provider, configured name and type."""
        assert FakeUsageChatModel(model="fake-claude")._get_ls_params() == {
            "ls_provider": "anthropic",
            "ls_model_name": "fake-claude",
            "ls_model_type": "chat",
        }

    def test_ls_params_temperature_and_stop(self):
        """Temperature and stop appear when set; a per-call model name wins."""
        params = FakeUsageChatModel(temperature=0.2)._get_ls_params(
            stop=["x"], model="other"
        )
        assert params["ls_temperature"] == 0.2
        assert params["ls_stop"] == ["x"]
        assert params["ls_model_name"] == "other"

    def test_metadata_reaches_on_chat_model_start(self):
        """on_chat_model_start metadata carries the LangSmith params."""
        recorder = Recorder()
        FakeUsageChatModel(model="fake-claude", callbacks=[recorder]).invoke(PROMPT)
        metadata = recorder.starts[0]["metadata"]
        assert metadata["ls_provider"] == "anthropic"
        assert metadata["ls_model_name"] == "fake-claude"
        assert metadata["ls_model_type"] == "chat"

    def test_identifying_params_include_model(self):
        """The identifying params name the model (and so do invocation params)."""
        recorder = Recorder()
        FakeUsageChatModel(model="fake-x", callbacks=[recorder]).invoke(PROMPT)
        assert recorder.starts[0]["invocation_params"]["model"] == "fake-x"
        assert (
            recorder.starts[0]["invocation_params"]["_type"] == "fake-usage-chat-model"
        )


class TestUsageDetails:
    """Reasoning and cache-read details."""

    def test_reasoning_is_reported_and_included(self):
        """Reasoning tokens appear in the details and inside output_tokens."""
        plain = FakeUsageChatModel().invoke(PROMPT).usage_metadata
        usage = FakeUsageChatModel(reasoning_tokens=40).invoke(PROMPT).usage_metadata
        assert usage["output_token_details"] == {"reasoning": 40}  # type: ignore[index]
        assert usage["output_tokens"] == plain["output_tokens"] + 40  # type: ignore[index]

    def test_cache_read_is_a_subset_of_input(self):
        """Cache reads are reported as a detail without changing input_tokens."""
        plain = FakeUsageChatModel().invoke(PROMPT).usage_metadata
        usage = FakeUsageChatModel(cache_read_tokens=10).invoke(PROMPT).usage_metadata
        assert usage["input_token_details"] == {"cache_read": 10}  # type: ignore[index]
        assert usage["input_tokens"] == plain["input_tokens"]  # type: ignore[index]

    def test_cache_read_is_capped_at_input(self):
        """Cache reads never exceed the prompt."""
        llm = FakeUsageChatModel(cache_read_tokens=10**6)
        usage = llm.invoke(PROMPT).usage_metadata
        assert usage["input_token_details"]["cache_read"] == llm.true_prompt_tokens(
            PROMPT
        )  # type: ignore[index]


class TestFailWith:
    """Failures and on_llm_error."""

    def test_invoke_raises(self):
        """fail_with makes invoke raise that exception type."""
        with pytest.raises(TimeoutError, match="told to fail"):
            FakeUsageChatModel(fail_with=TimeoutError).invoke(PROMPT)

    def test_instance_is_raised(self):
        """A fail_with instance is raised as is."""
        error = ConnectionError("rate limited")
        with pytest.raises(ConnectionError) as caught:
            FakeUsageChatModel(fail_with=error).invoke(PROMPT)
        assert caught.value is error

    def test_on_llm_error_fires(self):
        """The failure reaches on_llm_error and on_llm_end does not fire."""
        recorder = Recorder()
        llm = FakeUsageChatModel(fail_with=RuntimeError, callbacks=[recorder])
        with pytest.raises(RuntimeError):
            llm.invoke(PROMPT)
        assert [type(e) for e in recorder.errors] == [RuntimeError]
        assert recorder.ends == []

    def test_stream_fires_on_llm_error(self):
        """A failing stream reaches on_llm_error too."""
        recorder = Recorder()
        llm = FakeUsageChatModel(fail_with=RuntimeError, callbacks=[recorder])
        with pytest.raises(RuntimeError):
            list(llm.stream(PROMPT))
        assert [type(e) for e in recorder.errors] == [RuntimeError]

    def test_ainvoke_raises(self):
        """fail_with raises through ainvoke."""
        with pytest.raises(ValueError, match="told to fail"):
            asyncio.run(FakeUsageChatModel(fail_with=ValueError).ainvoke(PROMPT))


class TestDeterminism:
    """Same prompt, same answer."""

    def test_fresh_instances_agree(self):
        """Two fresh instances give the same reply and counts for the same prompt."""
        first = FakeUsageChatModel().invoke(PROMPT)
        second = FakeUsageChatModel().invoke(PROMPT)
        assert first.text == second.text
        assert first.usage_metadata == second.usage_metadata

    def test_tool_calls_are_deterministic(self):
        """Tool-call arguments and ids repeat across fresh instances."""
        calls = [
            FakeUsageChatModel()
            .bind_tools([get_weather], tool_choice="any")
            .invoke(PROMPT)
            .tool_calls
            for _ in range(2)
        ]
        assert calls[0] == calls[1]

    def test_different_prompts_differ(self):
        """Different prompts get different replies."""
        llm = FakeUsageChatModel()
        assert (
            llm.invoke([HumanMessage("a")]).text != llm.invoke([HumanMessage("b")]).text
        )

    def test_global_random_state_is_untouched(self):
        """Replies neither use nor disturb the global random generator."""
        random.seed(1234)
        expected = random.random()
        random.seed(1234)
        FakeUsageChatModel().invoke(PROMPT)
        assert random.random() == expected


class TestFallbackTokenizer:
    """The character-class tokenizer used when tiktoken cannot load."""

    @pytest.fixture
    def offline(self, monkeypatch):
        """Simulate a machine where tiktoken cannot download or find encodings."""

        def refuse(name: str) -> tiktoken.Encoding:
            msg = f"cannot download {name}"
            raise OSError(msg)

        monkeypatch.setattr(testing, "_load_encoding", refuse)
        monkeypatch.setattr(testing, "_TOKENIZERS", {})

    def test_model_still_works(self, offline):
        """Offline, the model answers and counts with the character-class rule."""
        llm = FakeUsageChatModel()
        reply = llm.invoke([HumanMessage("hello")])
        assert reply.usage_metadata["input_tokens"] == 7 + 5 + 1 + 2  # type: ignore[index]
        assert reply.usage_metadata["output_tokens"] == testing._charclass_tokens(
            reply.text
        )  # type: ignore[index]

    def test_warns_once_per_encoding(self, offline, caplog):
        """The fallback logs one warning per encoding, not one per call."""
        with caplog.at_level(logging.WARNING, logger="langchain_tokencal.testing"):
            llm = FakeUsageChatModel()
            llm.invoke(PROMPT)
            llm.invoke(PROMPT)
        warnings = [r for r in caplog.records if "TIKTOKEN_CACHE_DIR" in r.getMessage()]
        assert len(warnings) == 1

    def test_charclass_is_selectable_without_warning(self, caplog):
        """tokenizer="charclass" uses the fallback on purpose, silently."""
        with caplog.at_level(logging.WARNING, logger="langchain_tokencal.testing"):
            llm = FakeUsageChatModel(tokenizer="charclass")
            assert llm.get_num_tokens("abcdefgh 123456 東京") == 2 + 2 + 2
        assert caplog.records == []

    @pytest.mark.parametrize(
        ("text", "tokens"),
        [
            pytest.param("", 0, id="empty"),
            pytest.param("word", 1, id="latin-run"),
            pytest.param("words", 2, id="latin-run-over-4"),
            pytest.param("1234", 2, id="digits-per-3"),
            pytest.param("東京", 2, id="cjk-per-char"),
            pytest.param("привет", 3, id="other-script-per-2"),
            pytest.param("a  b\n", 4, id="long-whitespace-costs-one"),
            pytest.param('{"a":1}', 7, id="json-symbols"),
        ],
    )
    def test_charclass_rule(self, text, tokens):
        """The character-class tokenizer follows its documented rule."""
        assert testing._charclass_tokens(text) == tokens


class TestOpenAILike:
    """The OpenAI-like preset."""

    def test_provider_and_snapshot(self):
        """The preset reports provider openai and an OpenAI-style snapshot."""
        llm = FakeUsageChatModel.openai_like("gpt-4o")
        assert llm._get_ls_params()["ls_provider"] == "openai"
        assert llm.invoke(PROMPT).response_metadata["model_name"] == "gpt-4o-2025-01-01"

    def test_openai_accounting(self):
        """Input is 3 per message + role + content (+1 + name) + 3 priming, in o200k."""
        enc = tiktoken.get_encoding("o200k_base")

        def o200k(text: str) -> int:
            return len(enc.encode_ordinary(text))

        messages = [SystemMessage("Be brief."), HumanMessage("Hi there", name="bob")]
        expected = 3 + (3 + o200k("system") + o200k("Be brief."))
        expected += 3 + o200k("user") + o200k("Hi there") + 1 + o200k("bob")
        llm = FakeUsageChatModel.openai_like()
        assert llm.invoke(messages).usage_metadata["input_tokens"] == expected  # type: ignore[index]

    def test_tools_cost_json_plus_12_each(self):
        """Each bound tool costs its schema's JSON tokens plus 12, with no preamble."""
        llm = FakeUsageChatModel.openai_like()
        enc = tiktoken.get_encoding("o200k_base")
        tools = testing._as_openai_tools([get_weather, get_time])
        expected = sum(
            len(enc.encode_ordinary(testing._canonical_json(t))) + 12 for t in tools
        )
        assert (
            llm.true_prompt_tokens(PROMPT, tools) - llm.true_prompt_tokens(PROMPT)
            == expected
        )

    def test_overrides_win(self):
        """Keyword arguments override the preset's fields."""
        llm = FakeUsageChatModel.openai_like(
            "gpt-4.1", snapshot="gpt-4.1-2025-04-14", reasoning_tokens=5
        )
        assert llm.snapshot == "gpt-4.1-2025-04-14"
        assert llm.reasoning_tokens == 5


class TestConfig:
    """Validation of the fields."""

    def test_unknown_tokenizer_is_rejected(self):
        """An unknown encoding name fails at construction and lists the choices."""
        with pytest.raises(ValidationError, match="charclass"):
            FakeUsageChatModel(tokenizer="nope")

    def test_empty_responses_are_rejected(self):
        """An empty responses list is a configuration error."""
        with pytest.raises(ValidationError):
            FakeUsageChatModel(responses=[])

    def test_negative_overheads_are_rejected(self):
        """Template constants cannot be negative."""
        with pytest.raises(ValidationError):
            FakeUsageChatModel(tokens_per_message=-1)

    def test_llm_cache_tells_configurations_apart(self):
        """Differently configured fakes have different identifying params."""
        first = FakeUsageChatModel()._identifying_params
        second = FakeUsageChatModel(tokens_per_message=4)._identifying_params
        assert first != second
