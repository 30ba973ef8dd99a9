"""Tests for the offline fake chat model in `langchain_tokencal.testing`.

Expected counts restate the documented template (the package docstring) with
tiktoken and the documented canonical JSON; they never call the fake's helpers.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

import langchain_tokencal.testing as testing_package
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

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

    def ended_with(self) -> BaseMessage:
        """The message of the first run's result."""
        return self.ends[0].generations[0][0].message


@pytest.fixture
def recorder() -> Recorder:
    """A fresh recording handler."""
    return Recorder()


def merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """Merge chunks the way LangChain does after a stream."""
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    return merged


def astream_chunks(llm: Any, prompt: list[BaseMessage]) -> list[AIMessageChunk]:
    """Collect an astream's chunks."""

    async def collect() -> list[AIMessageChunk]:
        return [chunk async for chunk in llm.astream(prompt)]

    return asyncio.run(collect())


def usage(message: BaseMessage) -> UsageMetadata:
    """The message's usage, which must be there."""
    assert isinstance(message, AIMessage)
    assert message.usage_metadata is not None
    return message.usage_metadata


def tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Count tokens with a tiktoken encoding (cl100k_base is the default tokenizer)."""
    return len(tiktoken.get_encoding(encoding).encode_ordinary(text))


def canonical(value: Any) -> str:
    """The documented canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_tokens(tools: list[Any], encoding: str = "cl100k_base") -> int:
    """Tokens of the bound tools' OpenAI-format JSON schemas."""
    return sum(tokens(canonical(convert_to_openai_tool(t)), encoding) for t in tools)


def true_usage(**fields: Any) -> UsageMetadata:
    """The usage a fresh model (with these fields) reports on invoke of PROMPT."""
    return usage(FakeUsageChatModel(**fields).invoke(PROMPT))


class TestInvoke:
    """Behaviour of invoke: usage, metadata and replies."""

    def test_input_tokens_equal_true_prompt_tokens(self):
        """The reported input is exactly the hidden template's count."""
        llm = FakeUsageChatModel()
        assert usage(llm.invoke(PROMPT))["input_tokens"] == llm.true_prompt_tokens(
            PROMPT
        )

    def test_output_tokens_are_the_reply_tokens(self):
        """The reported output is the hidden tokenizer's count of the reply text."""
        reply = FakeUsageChatModel().invoke(PROMPT)
        assert usage(reply)["output_tokens"] == tokens(reply.text)

    def test_total_is_input_plus_output(self):
        """The total is the sum of input and output."""
        reported = true_usage()
        assert reported["total_tokens"] == (
            reported["input_tokens"] + reported["output_tokens"]
        )

    def test_no_details_when_zero(self):
        """Without reasoning or cache reads, no detail dicts are reported."""
        assert set(true_usage()) == {"input_tokens", "output_tokens", "total_tokens"}

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
        assert usage(reply)["output_tokens"] == tokens("alpha beta ")

    @settings(max_examples=60, deadline=None)
    @given(question=st.text(max_size=200))
    def test_default_replies_are_10_to_400_tokens(self, question):
        """Generated replies stay within 10 to 400 tokens whatever the prompt."""
        reply = FakeUsageChatModel().invoke([HumanMessage(question)])
        assert 10 <= usage(reply)["output_tokens"] <= 400

    def test_default_replies_vary_in_kind(self):
        """Over many prompts, replies include code, JSON, CJK and varied lengths."""
        llm = FakeUsageChatModel()
        replies = [llm.invoke([HumanMessage(f"question {i}")]) for i in range(120)]
        texts = [reply.text for reply in replies]
        assert any("```python" in text for text in texts)
        assert any("```json" in text for text in texts)
        assert any(any("\u3040" <= ch <= "\u9fff" for ch in text) for text in texts)
        lengths = {usage(reply)["output_tokens"] for reply in replies}
        assert min(lengths) < 50
        assert max(lengths) > 200

    def test_report_usage_false_gives_no_usage(self):
        """With report_usage=False the reply carries no usage_metadata."""
        reply = FakeUsageChatModel(report_usage=False).invoke(PROMPT)
        assert reply.usage_metadata is None

    def test_reply_reaches_on_llm_end(self, recorder):
        """The handler sees the same usage the caller gets."""
        reply = FakeUsageChatModel(callbacks=[recorder]).invoke(PROMPT)
        assert usage(recorder.ended_with()) == usage(reply)


class TestTemplate:
    """The hidden chat template behind input_tokens, as the package documents it."""

    def test_single_message_rule(self):
        """One message costs framing + per-message + role + content tokens."""
        llm = FakeUsageChatModel(tokenizer="charclass")
        # charclass: "user" is 1 token, "hello" 2 (one per 4 letters).
        assert llm.true_prompt_tokens([HumanMessage("hello")]) == 7 + 5 + 1 + 2

    @pytest.mark.parametrize(
        ("message", "texts", "constant"),
        [
            pytest.param(
                HumanMessage("hi", name="alice"),
                ("user", "hi", "alice"),
                1,
                id="name-costs-its-tokens-plus-one",
            ),
            pytest.param(
                AIMessage(
                    "",
                    tool_calls=[
                        {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}
                    ],
                ),
                ("assistant", "", "get_weather", '{"city":"Paris"}'),
                3,
                id="tool-call-costs-name-args-and-three",
            ),
            pytest.param(
                ToolMessage("ok", tool_call_id="call_abc"),
                ("tool", "ok", "call_abc"),
                0,
                id="tool-message-costs-its-call-id",
            ),
        ],
    )
    def test_message_cost(self, message, texts, constant):
        """A message costs per-message + role + content + its documented extras."""
        expected = 7 + 5 + sum(map(tokens, texts)) + constant
        assert FakeUsageChatModel().true_prompt_tokens([message]) == expected

    @pytest.mark.parametrize(
        ("block", "texts", "constant"),
        [
            pytest.param(
                {"type": "image", "base64": "A" * 10, "mime_type": "image/png"},
                (),
                258,
                id="small-image-is-flat",
            ),
            pytest.param(
                {
                    "type": "image_url",
                    "image_url": {"url": "data:;base64," + "A" * 9999},
                },
                (),
                258,
                id="large-image-is-flat",
            ),
            pytest.param(
                {"type": "thinking", "thinking": "Let me think."},
                ("Let me think.",),
                0,
                id="thinking-counts-its-text",
            ),
            pytest.param(
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}},
                (),
                0,
                id="tool-use-counts-nothing",
            ),
            pytest.param(
                {"type": "citation", "source": "a.txt"},
                ('{"source":"a.txt","type":"citation"}',),
                0,
                id="other-block-counts-its-json",
            ),
            pytest.param("raw text", ("raw text",), 0, id="str-block-is-text"),
        ],
    )
    def test_content_block_cost(self, block, texts, constant):
        """Each kind of content block costs what the template says."""
        message = HumanMessage(content=[{"type": "text", "text": "x"}, block])
        base = 7 + 5 + tokens("user") + tokens("x")
        expected = base + sum(map(tokens, texts)) + constant
        assert FakeUsageChatModel().true_prompt_tokens([message]) == expected

    def test_tools_add_preamble_and_schemas(self):
        """Bound tools add the preamble once and each schema's JSON tokens."""
        llm = FakeUsageChatModel()
        tools = [get_weather, get_time]
        delta = llm.true_prompt_tokens(PROMPT, tools) - llm.true_prompt_tokens(PROMPT)
        assert delta == 300 + schema_tokens(tools)

    def test_response_format_adds_its_json(self):
        """A response_format schema adds its canonical JSON's tokens."""
        llm = FakeUsageChatModel()
        schema = Person.model_json_schema()
        delta = llm.true_prompt_tokens(
            PROMPT, response_format=schema
        ) - llm.true_prompt_tokens(PROMPT)
        assert delta == tokens(canonical(schema))

    def test_response_format_is_counted_on_invoke(self):
        """A bound response_format is counted and answered with matching JSON."""
        llm = FakeUsageChatModel()
        schema = Person.model_json_schema()
        reply = llm.invoke(PROMPT, response_format=schema)
        assert usage(reply)["input_tokens"] == llm.true_prompt_tokens(
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
        assert llm.true_prompt_tokens(messages) - before >= 5 + tokens("user")

    def test_num_tokens_from_messages_is_the_true_count(self):
        """The model is its own exact counter for LangChain's message helper."""
        llm = FakeUsageChatModel()
        assert llm.get_num_tokens_from_messages(list(PROMPT)) == llm.true_prompt_tokens(
            PROMPT
        )

    def test_num_tokens_is_the_hidden_tokenizer(self):
        """get_num_tokens counts a text with the hidden tokenizer."""
        assert FakeUsageChatModel().get_num_tokens("hello world") == tokens(
            "hello world"
        )

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
        assert [usage(r)["input_tokens"] for r in replies] == [
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
        assert usage(merged) == true_usage()
        assert usage(merged)["input_tokens"] == llm.true_prompt_tokens(PROMPT)

    @settings(max_examples=100, deadline=None)
    @given(text=st.text(max_size=120))
    def test_stream_pieces_join_back_exactly(self, text):
        """The streamed pieces of any reply join back to exactly that reply."""
        llm = FakeUsageChatModel(responses=[text], tokenizer="charclass")
        assert "".join(str(chunk.content) for chunk in llm.stream(PROMPT)) == text

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
        assert len(chunks) > 1
        assert usage(merge(chunks))["input_tokens"] == len(
            chunks
        ) * llm.true_prompt_tokens(PROMPT)

    def test_cumulative_last_chunk_is_the_truth(self):
        """With stream_usage="cumulative", the last chunk alone is the true usage."""
        chunks = list(FakeUsageChatModel(stream_usage="cumulative").stream(PROMPT))
        assert usage(chunks[-1]) == true_usage()

    def test_cumulative_output_never_decreases(self):
        """With stream_usage="cumulative", the running output grows chunk by chunk."""
        chunks = list(FakeUsageChatModel(stream_usage="cumulative").stream(PROMPT))
        outputs = [usage(chunk)["output_tokens"] for chunk in chunks]
        assert outputs == sorted(outputs)

    def test_cumulative_inflation_reaches_on_llm_end(self, recorder):
        """The handler's merged message after stream() carries the inflated sum."""
        llm = FakeUsageChatModel(stream_usage="cumulative", callbacks=[recorder])
        chunks = list(llm.stream(PROMPT))
        assert usage(recorder.ended_with())["input_tokens"] == len(
            chunks
        ) * llm.true_prompt_tokens(PROMPT)

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({"stream_usage": "none"}, id="stream-usage-none"),
            pytest.param(
                {"report_usage": False, "stream_usage": "cumulative"},
                id="report-usage-false",
            ),
        ],
    )
    def test_no_usage_when_disabled(self, fields):
        """Streams carry no usage when usage is off."""
        merged = merge(list(FakeUsageChatModel(**fields).stream(PROMPT)))
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
        assert usage(asyncio.run(FakeUsageChatModel().ainvoke(PROMPT))) == true_usage()

    def test_abatch_reports_each_prompt(self):
        """Each prompt in abatch gets its true input count."""
        llm = FakeUsageChatModel()
        prompts = [[HumanMessage(f"q{i} " * i)] for i in range(1, 6)]
        replies = asyncio.run(llm.abatch(prompts))
        assert [usage(r)["input_tokens"] for r in replies] == [
            llm.true_prompt_tokens(p) for p in prompts
        ]

    def test_astream_final_merged_usage_is_true(self):
        """An astream with "final" merges to the true usage."""
        merged = merge(astream_chunks(FakeUsageChatModel(), PROMPT))
        assert usage(merged) == true_usage()

    def test_astream_cumulative_is_inflated(self):
        """An astream with "cumulative" merges to k times the true input."""
        llm = FakeUsageChatModel(stream_usage="cumulative")
        chunks = astream_chunks(llm, PROMPT)
        assert usage(merge(chunks))["input_tokens"] == len(
            chunks
        ) * llm.true_prompt_tokens(PROMPT)

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

    @pytest.fixture
    def agent_turns(self) -> tuple[AIMessage, AIMessage, list[BaseMessage]]:
        """Two turns of an agent loop: a tool call, then an answer to its result."""
        llm = FakeUsageChatModel(tool_calls_every=1).bind_tools([get_weather])
        first = llm.invoke(PROMPT)
        history = [
            *PROMPT,
            first,
            ToolMessage("sunny", tool_call_id=first.tool_calls[0]["id"]),
        ]
        return first, llm.invoke(history), history

    def test_bound_tools_reach_invocation_params(self, recorder):
        """bind_tools puts OpenAI-format tools into invocation_params."""
        llm = FakeUsageChatModel(callbacks=[recorder]).bind_tools([get_weather])
        llm.invoke(PROMPT)
        tools = recorder.starts[0]["invocation_params"]["tools"]
        assert tools == [convert_to_openai_tool(get_weather)]

    def test_bound_tools_grow_input(self):
        """Binding tools grows the reported input by the preamble and schemas."""
        llm = FakeUsageChatModel()
        plain = usage(llm.invoke(PROMPT))
        bound = usage(llm.bind_tools([get_weather]).invoke(PROMPT))
        assert bound["input_tokens"] - plain["input_tokens"] == 300 + schema_tokens(
            [get_weather]
        )

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
        expected = tokens(call["name"]) + tokens(canonical(call["args"])) + 3
        assert usage(reply)["output_tokens"] == expected

    def test_agent_loop_ends_after_tool_result(self, agent_turns):
        """After a tool result the model answers in text, so agent loops end."""
        first, second, _ = agent_turns
        assert first.tool_calls
        assert not second.tool_calls
        assert second.text

    def test_agent_loop_input_counts_history(self, agent_turns):
        """The second turn of an agent loop reports the true count of the history."""
        _, second, history = agent_turns
        assert usage(second)["input_tokens"] == FakeUsageChatModel().true_prompt_tokens(
            history, [get_weather]
        )

    @pytest.mark.parametrize(
        ("tool_choice", "name"),
        [
            pytest.param("any", "get_weather", id="any"),
            pytest.param("required", "get_weather", id="required"),
            pytest.param(True, "get_weather", id="true"),
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

    def test_metadata_reaches_on_chat_model_start(self, recorder):
        """on_chat_model_start metadata carries provider, configured name and type."""
        FakeUsageChatModel(model="fake-claude", callbacks=[recorder]).invoke(PROMPT)
        metadata = recorder.starts[0]["metadata"]
        assert metadata["ls_provider"] == "anthropic"
        assert metadata["ls_model_name"] == "fake-claude"
        assert metadata["ls_model_type"] == "chat"

    def test_temperature_stop_and_per_call_model(self, recorder):
        """Temperature and stop appear when set; a per-call model name wins."""
        llm = FakeUsageChatModel(temperature=0.2, callbacks=[recorder])
        llm.invoke(PROMPT, stop=["x"], model="other")
        metadata = recorder.starts[0]["metadata"]
        assert metadata["ls_temperature"] == 0.2
        assert metadata["ls_stop"] == ["x"]
        assert metadata["ls_model_name"] == "other"

    def test_identifying_params_include_model(self, recorder):
        """The invocation params name the model and the model type."""
        FakeUsageChatModel(model="fake-x", callbacks=[recorder]).invoke(PROMPT)
        params = recorder.starts[0]["invocation_params"]
        assert params["model"] == "fake-x"
        assert params["_type"] == "fake-usage-chat-model"


class TestUsageDetails:
    """Reasoning and cache-read details."""

    def test_reasoning_is_reported_and_included(self):
        """Reasoning tokens appear in the details and inside output_tokens."""
        reported = true_usage(reasoning_tokens=40)
        assert reported["output_token_details"] == {"reasoning": 40}
        assert reported["output_tokens"] == true_usage()["output_tokens"] + 40

    def test_cache_read_is_a_subset_of_input(self):
        """Cache reads are reported as a detail without changing input_tokens."""
        reported = true_usage(cache_read_tokens=10)
        assert reported["input_token_details"] == {"cache_read": 10}
        assert reported["input_tokens"] == true_usage()["input_tokens"]

    def test_cache_read_is_capped_at_input(self):
        """Cache reads never exceed the prompt."""
        reported = true_usage(cache_read_tokens=10**6)
        assert reported["input_token_details"] == {
            "cache_read": reported["input_tokens"]
        }


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

    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(lambda llm: llm.invoke(PROMPT), id="invoke"),
            pytest.param(lambda llm: list(llm.stream(PROMPT)), id="stream"),
        ],
    )
    def test_on_llm_error_fires(self, recorder, call):
        """The failure reaches on_llm_error and on_llm_end does not fire."""
        llm = FakeUsageChatModel(fail_with=RuntimeError, callbacks=[recorder])
        with pytest.raises(RuntimeError):
            call(llm)
        assert [type(e) for e in recorder.errors] == [RuntimeError]
        assert recorder.ends == []

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
        """Simulate a machine where tiktoken cannot download or find encodings.

        Goes through the documented offline seam of the tokenizers module:
        ``load_encoding`` raises, and no tokenizer is loaded yet.
        """
        from langchain_tokencal.testing import _tokenizers  # noqa: PLC0415 - the seam

        def refuse(name: str) -> tiktoken.Encoding:
            msg = f"cannot download {name}"
            raise OSError(msg)

        monkeypatch.setattr(_tokenizers, "load_encoding", refuse)
        monkeypatch.setattr(_tokenizers, "TOKENIZERS", {})

    def test_model_still_works(self, offline):
        """Offline, the model answers and counts with the character-class rule."""
        reply = FakeUsageChatModel().invoke([HumanMessage("hello")])
        charclass = FakeUsageChatModel(tokenizer="charclass")
        assert usage(reply)["input_tokens"] == 7 + 5 + 1 + 2
        assert usage(reply)["output_tokens"] == charclass.get_num_tokens(reply.text)

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
        ("text", "count"),
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
    def test_charclass_rule(self, text, count):
        """The character-class tokenizer follows its documented rule."""
        assert FakeUsageChatModel(tokenizer="charclass").get_num_tokens(text) == count


class TestOpenAILike:
    """The OpenAI-like preset."""

    def test_provider_and_snapshot(self):
        """The preset reports provider openai and an OpenAI-style snapshot."""
        metadata = FakeUsageChatModel.openai_like("gpt-4o").invoke(PROMPT)
        assert metadata.response_metadata["model_provider"] == "openai"
        assert metadata.response_metadata["model_name"] == "gpt-4o-2025-01-01"

    def test_openai_accounting(self):
        """Input is 3 per message + role + content (+1 + name) + 3 priming, in o200k."""

        def o200k(text: str) -> int:
            return tokens(text, "o200k_base")

        messages = [SystemMessage("Be brief."), HumanMessage("Hi there", name="bob")]
        expected = 3 + (3 + o200k("system") + o200k("Be brief."))
        expected += 3 + o200k("user") + o200k("Hi there") + 1 + o200k("bob")
        llm = FakeUsageChatModel.openai_like()
        assert usage(llm.invoke(messages))["input_tokens"] == expected

    def test_tools_cost_json_plus_12_each(self):
        """Each bound tool costs its schema's JSON tokens plus 12, with no preamble."""
        llm = FakeUsageChatModel.openai_like()
        tools = [get_weather, get_time]
        assert llm.true_prompt_tokens(PROMPT, tools) - llm.true_prompt_tokens(
            PROMPT
        ) == schema_tokens(tools, "o200k_base") + 12 * len(tools)

    def test_overrides_win(self):
        """Keyword arguments override the preset's fields."""
        llm = FakeUsageChatModel.openai_like(
            "gpt-4.1", snapshot="gpt-4.1-2025-04-14", reasoning_tokens=5
        )
        assert llm.snapshot == "gpt-4.1-2025-04-14"
        assert llm.reasoning_tokens == 5


class TestConfig:
    """Validation of the fields."""

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            pytest.param({"tokenizer": "nope"}, "charclass", id="unknown-tokenizer"),
            pytest.param({"responses": []}, "responses", id="empty-responses"),
            pytest.param(
                {"tokens_per_message": -1}, "tokens_per_message", id="negative-overhead"
            ),
        ],
    )
    def test_invalid_fields_are_rejected(self, fields, match):
        """Invalid fields fail at construction and name what is wrong."""
        with pytest.raises(ValidationError, match=match):
            FakeUsageChatModel(**fields)

    def test_llm_cache_tells_configurations_apart(self, recorder):
        """Differently configured fakes report different invocation params."""
        FakeUsageChatModel(callbacks=[recorder]).invoke(PROMPT)
        FakeUsageChatModel(tokens_per_message=4, callbacks=[recorder]).invoke(PROMPT)
        first, second = (start["invocation_params"] for start in recorder.starts)
        assert first != second


def package_imports(path: Path) -> set[str]:
    """Every `langchain_tokencal` module a source file imports (absolute imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {
        alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for alias in n.names
    }
    found |= {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    return {name for name in found if name.split(".")[0] == "langchain_tokencal"}


class TestIndependence:
    """The fake model is a ground truth, independent of the code it tests."""

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param(path, id=path.name)
            for path in sorted(Path(testing_package.__file__).parent.glob("*.py"))
        ],
    )
    def test_imports_no_counting_code(self, path):
        """No module of the fake imports the package's counting, features or calibration."""
        forbidden = ("_counting", "_features", "_calibration")
        imported = package_imports(path)
        assert not {
            name for name in imported if any(f".{part}" in name for part in forbidden)
        }
