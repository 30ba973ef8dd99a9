"""Tests for the local counters of `langchain_tokencal._counting`."""

from __future__ import annotations

import base64
import inspect
import logging
import struct
import sys
import zlib
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_tokencal import (
    ApproximateCounter,
    CounterInfo,
    LocalCounter,
    OpenAICounter,
    TokenCounter,
    local_counter,
)
from langchain_tokencal._counting import as_messages, encoding_for_model
from langchain_tokencal._counting import encodings as loaded_encodings
from langchain_tokencal._counting.openai_rules import (
    DEFAULT_IMAGE_TOKENS,
    LOW_DETAIL_IMAGE_TOKENS,
    tile_tokens,
)
from langchain_tokencal._features import FEATURE_IMAGE, NO_TOOLS
from langchain_tokencal.errors import (
    ConfigError,
    EncodingUnavailableError,
    TokenCalError,
    UnknownModelError,
)
from tests.unit_tests.test_counters_openai_parity import WEATHER_TOOL

HISTORY: list[BaseMessage] = [
    SystemMessage("You are a helpful assistant. Answer in one sentence."),
    HumanMessage("What is the capital of France?", name="alice"),
    AIMessage("The capital of France is Paris."),
    HumanMessage("And of Japan? 日本の首都は？"),  # noqa: RUF001 - fullwidth on purpose
    AIMessage("Tokyo (東京) is the capital of Japan."),
    HumanMessage('Print {"a": [1, 2, 3]} as YAML, please.'),
    AIMessage("a:\n  - 1\n  - 2\n  - 3"),
    HumanMessage("Thanks! Now in Russian: спасибо."),
]


def png_url(width: int, height: int) -> str:
    """A data URL whose PNG header declares the given size (no pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64
    return "data:image/png;base64," + base64.b64encode(data).decode()


def image_message(url: str, detail: str | None = None) -> HumanMessage:
    """A user message with a text part and an image part."""
    image_url: dict[str, Any] = {"url": url}
    if detail:
        image_url["detail"] = detail
    return HumanMessage(
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": image_url},
        ]
    )


class TestEncodingForModel:
    """Model names map to tiktoken encodings."""

    @pytest.mark.parametrize(
        ("model", "encoding"),
        [
            ("gpt-4o", "o200k_base"),
            ("gpt-4o-mini-2024-07-18", "o200k_base"),
            ("chatgpt-4o-latest", "o200k_base"),
            ("gpt-4.1-nano", "o200k_base"),
            ("gpt-4.5-preview", "o200k_base"),
            ("gpt-5-mini", "o200k_base"),
            ("o1-preview", "o200k_base"),
            ("o3", "o200k_base"),
            ("o4-mini", "o200k_base"),
            ("gpt-oss-120b", "o200k_base"),
            ("gpt-4", "cl100k_base"),
            ("gpt-4-turbo-2024-04-09", "cl100k_base"),
            ("gpt-4-32k", "cl100k_base"),
            ("gpt-3.5-turbo-0125", "cl100k_base"),
            ("gpt-35-turbo", "cl100k_base"),
            ("text-embedding-3-small", "cl100k_base"),
            ("openai/gpt-4o", "o200k_base"),
            ("OpenAI/GPT-4", "cl100k_base"),
            ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "o200k_base"),
            ("prod-gpt-4o-eastus", "o200k_base"),
            ("my-gpt-35-turbo-deployment", "cl100k_base"),
        ],
    )
    def test_known_models(self, model, encoding):
        """Known names, dated snapshots, prefixes and deployment names resolve."""
        assert encoding_for_model(model) == encoding

    @pytest.mark.parametrize(
        "model", ["claude-sonnet-4-5", "gemini-2.5-pro", "llama3", ""]
    )
    def test_unknown_model_raises_with_known_prefixes(self, model):
        """An unknown name is an UnknownModelError listing what is known."""
        with pytest.raises(
            UnknownModelError, match=r"known OpenAI model prefixes: .*gpt-4o"
        ):
            encoding_for_model(model)


class TestLocalCounterFactory:
    """The factory picks the counter by provider and model."""

    def test_openai_model(self):
        """An OpenAI model without provider gets the exact counter."""
        counter = local_counter("gpt-4o-mini")
        assert isinstance(counter, OpenAICounter)
        assert counter.info == CounterInfo(
            model="gpt-4o-mini",
            provider=None,
            kind="exact",
            encoding="o200k_base",
            fallback=False,
            reason=None,
        )

    def test_cl100k_model(self):
        """gpt-4 counts with cl100k_base."""
        assert local_counter("gpt-4", "openai").info.encoding == "cl100k_base"

    @pytest.mark.parametrize("provider", ["anthropic", "google_genai", "ollama"])
    def test_other_provider_is_approximate(self, provider):
        """Any other provider gets the approximate counter, whatever the name."""
        counter = local_counter("gpt-4o", provider)
        assert isinstance(counter, ApproximateCounter)
        assert counter.info.kind == "approximate"
        assert counter.info.encoding == "o200k_base"
        assert counter.info.provider == provider

    def test_unknown_model_without_provider_is_approximate(self):
        """An unknown model with no provider is approximated, not an error."""
        counter = local_counter("claude-sonnet-4-5")
        assert isinstance(counter, ApproximateCounter)
        assert counter.info.reason

    def test_unknown_azure_deployment_assumes_o200k(self):
        """An Azure deployment with an unknown name counts with o200k_base, approximately."""
        counter = local_counter("my-deployment", "Azure")
        assert isinstance(counter, OpenAICounter)
        assert counter.info.kind == "approximate"
        assert counter.info.provider == "azure"
        assert "assumed o200k_base" in (counter.info.reason or "")

    def test_bad_memo_size(self):
        """A memo size below 1 is a ConfigError."""
        with pytest.raises(ConfigError, match="max_size"):
            local_counter("gpt-4o", memo_size=0)

    def test_repr(self):
        """The repr names the model, the kind and the encoding."""
        assert repr(local_counter("gpt-4")) == (
            "OpenAICounter(model='gpt-4', kind='exact', encoding='cl100k_base')"
        )


class CounterContract:
    """What every local counter promises; subclasses provide `counter`."""

    @pytest.fixture
    def counter(self) -> LocalCounter:
        """The counter under test."""
        raise NotImplementedError

    def test_is_a_token_counter(self, counter):
        """The counter satisfies the TokenCounter protocol."""
        assert isinstance(counter, TokenCounter)

    def test_empty_prompt_is_framing(self, counter):
        """No messages cost the framing tokens only."""
        assert counter([]) == counter.framing == 3

    def test_returns_int(self, counter):
        """A count is an int."""
        assert type(counter(HISTORY)) is int

    def test_each_message_adds_tokens(self, counter):
        """Every longer prefix of a history costs more."""
        counts = [counter(HISTORY[:i]) for i in range(len(HISTORY) + 1)]
        assert counts == sorted(set(counts))

    def test_total_is_framing_plus_message_locals(self, counter):
        """The count is framing plus the sum of the messages' local tokens."""
        features = counter.message_features(HISTORY)
        assert counter(HISTORY) == counter.framing + sum(f.local for f in features)

    def test_feature_batch_agrees_with_message_features(self, counter):
        """The column view holds the same features as the list of records."""
        features = counter.message_features(HISTORY)
        batch = counter.feature_batch(HISTORY)
        assert list(batch) == features
        assert batch.local_total == counter(HISTORY) - counter.framing

    def test_accepts_message_likes(self, counter):
        """Tuples, dicts and strings count like the messages they stand for."""
        likes = [("system", "Be brief."), {"role": "user", "content": "Hi!"}, "Bye"]
        messages = [
            SystemMessage("Be brief."),
            HumanMessage("Hi!"),
            HumanMessage("Bye"),
        ]
        assert counter(likes) == counter(messages)

    def test_never_mutates_messages(self, counter):
        """Counting leaves every message as it was."""
        history = [*HISTORY, image_message(png_url(800, 600))]
        before = [m.model_dump() for m in history]
        counter(history, tools=[WEATHER_TOOL])
        counter(history)
        assert [m.model_dump() for m in history] == before

    def test_list_annotation_for_trim_messages(self, counter):
        """The first parameter is annotated as a sequence, so trim_messages passes lists."""
        first = next(iter(inspect.signature(counter).parameters.values()))
        assert first.annotation is not BaseMessage
        assert not isinstance(first.annotation, str)

    @pytest.mark.parametrize("strategy", ["last", "first"])
    def test_trim_messages(self, counter, strategy):
        """trim_messages with the counter returns a history that fits the budget."""
        budget = counter(HISTORY) // 2
        trimmed = trim_messages(
            HISTORY, max_tokens=budget, token_counter=counter, strategy=strategy
        )
        assert 0 < len(trimmed) < len(HISTORY)
        assert counter(trimmed) <= budget
        if strategy == "last":
            assert trimmed == HISTORY[-len(trimmed) :]

    def test_tools_add_tokens(self, counter):
        """Binding a tool adds its tool-set tokens."""
        tools_local = counter.tool_features([WEATHER_TOOL]).local
        assert tools_local > 0
        assert counter(HISTORY, tools=[WEATHER_TOOL]) == counter(HISTORY) + tools_local

    def test_no_tools(self, counter):
        """None and [] are NO_TOOLS."""
        assert counter.tool_features(None) == counter.tool_features([]) == NO_TOOLS


class TestOpenAIO200kContract(CounterContract):
    """The exact counter on an o200k_base model."""

    @pytest.fixture
    def counter(self):
        """The counter under test."""
        return OpenAICounter("gpt-4o")


class TestOpenAICl100kContract(CounterContract):
    """The exact counter on a cl100k_base model."""

    @pytest.fixture
    def counter(self):
        """The counter under test."""
        return OpenAICounter("gpt-4")


class TestApproximateContract(CounterContract):
    """The approximate counter with the reference encoding."""

    @pytest.fixture
    def counter(self):
        """The counter under test."""
        return ApproximateCounter("claude-sonnet-4-5", provider="anthropic")


def go_offline(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Make tiktoken see an empty cache, no loaded encodings and no network."""

    def no_network(blobpath: str) -> bytes:
        msg = f"no network in tests: {blobpath}"
        raise ConnectionError(msg)

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    # Encodings load once per process: forget the loads (and failures) so far.
    monkeypatch.setattr(loaded_encodings, "_encodings", {})
    monkeypatch.setattr(loaded_encodings, "_load_errors", {})


@pytest.fixture
def offline_tiktoken(monkeypatch, tmp_path):
    """Run the test as if offline with no tiktoken cache."""
    go_offline(monkeypatch, tmp_path)


class TestFallbackContract(CounterContract):
    """The approximate counter with no encoding (offline, no cache)."""

    @pytest.fixture
    def counter(self, offline_tiktoken):
        """The counter under test."""
        return ApproximateCounter("claude-sonnet-4-5")


class TestFallback:
    """Counting degrades when an encoding cannot load."""

    def test_info_reports_fallback(self, offline_tiktoken):
        """A counter whose encoding cannot load says so in its info."""
        info = local_counter("gpt-4o").info
        assert info.fallback is True
        assert info.kind == "approximate"
        assert info.encoding is None
        assert "o200k_base" in (info.reason or "")
        assert "ConnectionError" in (info.reason or "")

    def test_one_warning_per_process(self, offline_tiktoken, caplog):
        """Many counters on missing encodings log one warning naming the fix."""
        with caplog.at_level(logging.WARNING, logger="langchain_tokencal"):
            for _ in range(3):
                local_counter("gpt-4o")(HISTORY)
                local_counter("claude-x", "anthropic")(HISTORY)
            local_counter("gpt-4")(HISTORY)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # o200k_base; cl100k_base then at INFO
        assert "tokencal encodings" in warnings[0].getMessage()

    def test_fallback_close_to_exact(self, monkeypatch, tmp_path):
        """Counting without an encoding lands within 25% of the exact count."""
        exact = local_counter("gpt-4o")
        assert exact.info.kind == "exact"
        go_offline(monkeypatch, tmp_path)
        fallback = local_counter("gpt-4o")
        assert fallback.info.fallback
        assert fallback(HISTORY) == pytest.approx(exact(HISTORY), rel=0.25)


class TestMemo:
    """The per-message and per-tool-set memos."""

    def test_equal_messages_share_entries(self):
        """A copy of a message (another object, another id) is a memo hit."""
        counter = OpenAICounter("gpt-4o")
        counter([HumanMessage("hello", id="1")])
        counter([HumanMessage("hello", id="2")])
        stats = counter.memo_stats()
        assert (stats.hits, stats.misses, stats.size) == (1, 1, 1)

    def test_changed_fields_miss(self):
        """Messages that differ in a counted field are different entries."""
        counter = OpenAICounter("gpt-4o")
        variants = [
            HumanMessage("hi"),
            HumanMessage("hi", name="al"),
            HumanMessage("hi", additional_kwargs={"name": "bo"}),
            SystemMessage("hi"),
            SystemMessage("hi", additional_kwargs={"__openai_role__": "developer"}),
            ChatMessage("hi", role="critic"),
            AIMessage("hi"),
            AIMessage("hi", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "1"}]),
            AIMessage("hi", tool_calls=[{"name": "f", "args": {"x": 2}, "id": "1"}]),
            ToolMessage("hi", tool_call_id="1"),
            ToolMessage("hi", tool_call_id="2"),
            HumanMessage(["hi"]),
        ]
        counter(variants)
        assert counter.memo_stats().size == len(variants)

    def test_lru_bound(self):
        """The memo holds at most memo_size messages and counts evictions."""
        counter = OpenAICounter("gpt-4o", memo_size=3)
        counter([HumanMessage(f"message {i}") for i in range(5)])
        stats = counter.memo_stats()
        assert (stats.size, stats.max_size, stats.evictions) == (3, 3, 2)

    def test_memo_does_not_keep_contents_alive(self):
        """Counting a message keeps no reference to its text, and records hold none."""
        counter = OpenAICounter("gpt-4o")
        text = "".join(["a rather unique text "] * 10)
        before = sys.getrefcount(text)
        (features,) = counter.message_features([HumanMessage(text)])
        assert sys.getrefcount(text) == before
        assert b"unique" not in features.record


class Weather(BaseModel):
    """Get the current weather in a given location."""

    location: str = Field(description="The city and state, e.g. San Francisco, CA")


class TestToolFeatures:
    """Tool schemas by OpenAI's cookbook rules."""

    def test_cookbook_function_rules(self):
        """The weather tool costs what the cookbook's rules give for gpt-4o."""
        features = OpenAICounter("gpt-4o").tool_features([WEATHER_TOOL])
        enc = tiktoken.get_encoding("o200k_base")

        def n(text: str) -> int:
            return len(enc.encode_ordinary(text))

        expected = (
            7
            + n("get_current_weather:Get the current weather in a given location")
            + 3
            + 3
            + n("location:string:The city and state, e.g. San Francisco, CA")
            + 3
            - 3
            + 3
            + n("celsius")
            + 3
            + n("fahrenheit")
            + n("unit:string:The unit of temperature to return")
            + 12
        )
        assert features.local == expected
        assert features.count == 1
        assert features.fingerprint != 0

    def test_cl100k_family_constants(self):
        """gpt-4 uses func_init 10 instead of 7."""
        gpt4 = OpenAICounter("gpt-4").tool_features([WEATHER_TOOL])
        enc = tiktoken.get_encoding("cl100k_base")
        assert gpt4.schema_tokens > 0
        name_line = "get_current_weather:Get the current weather in a given location"
        assert gpt4.local > 10 + len(enc.encode_ordinary(name_line))

    def test_anthropic_format_equals_openai_format(self):
        """An Anthropic tool dict counts like the same tool in OpenAI format."""
        fn = WEATHER_TOOL["function"]
        anthropic = {
            "name": fn["name"],
            "description": fn["description"],
            "input_schema": fn["parameters"],
        }
        counter = OpenAICounter("gpt-4o")
        assert counter.tool_features([anthropic]) == counter.tool_features(
            [WEATHER_TOOL]
        )

    def test_pydantic_function_and_base_tool(self):
        """Pydantic classes, functions and BaseTools are converted and counted."""

        def get_time(city: str) -> str:
            """Get the local time in a city."""
            return city

        @tool
        def lookup(query: str) -> str:
            """Look something up."""
            return query

        counter = OpenAICounter("gpt-4o")
        features = counter.tool_features([Weather, get_time, lookup])
        assert features.count == 3
        assert features.local > 3 * 7 + 12
        assert counter.tool_features([Weather, get_time, lookup]) == features

    def test_fingerprint_changes_with_schema(self):
        """Another description is another fingerprint."""
        changed = {
            "type": "function",
            "function": {**WEATHER_TOOL["function"], "description": "Weather now."},
        }
        counter = OpenAICounter("gpt-4o")
        assert (
            counter.tool_features([changed]).fingerprint
            != counter.tool_features([WEATHER_TOOL]).fingerprint
        )

    def test_fingerprint_same_across_counters(self):
        """The fingerprint depends on the tools only."""
        a = OpenAICounter("gpt-4o").tool_features([WEATHER_TOOL])
        b = ApproximateCounter("claude-x").tool_features([WEATHER_TOOL])
        assert a.fingerprint == b.fingerprint

    def test_nested_properties_count(self):
        """Properties of nested objects and arrays of objects add tokens."""
        flat = {
            "type": "function",
            "function": {
                "name": "book",
                "description": "Book a trip.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "trip": {"type": "object", "description": "The trip"}
                    },
                },
            },
        }
        nested = {
            "type": "function",
            "function": {
                "name": "book",
                "description": "Book a trip.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "trip": {
                            "type": "object",
                            "description": "The trip",
                            "properties": {
                                "legs": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {"city": {"type": "string"}},
                                    },
                                }
                            },
                        }
                    },
                },
            },
        }
        counter = OpenAICounter("gpt-4o")
        assert (
            counter.tool_features([nested]).local > counter.tool_features([flat]).local
        )

    def test_builtin_tool_counts_its_json(self):
        """A built-in tool (not a function) costs the tokens of its JSON."""
        counter = OpenAICounter("gpt-4o")
        features = counter.tool_features([{"type": "web_search_preview"}])
        assert features.local == 12 + len(
            tiktoken.get_encoding("o200k_base").encode_ordinary(
                '{"type": "web_search_preview"}'
            )
        )

    def test_approximate_is_schema_plus_overheads(self):
        """The approximate counter charges schema tokens + 7 per tool + 12 per set."""
        features = ApproximateCounter("claude-x").tool_features([WEATHER_TOOL, Weather])
        assert features.local == int(features.schema_tokens + 2 * 7 + 12 + 0.5)

    def test_unconvertible_tool_is_config_error(self):
        """A value that is no tool is a ConfigError saying what to pass."""
        with pytest.raises(ConfigError, match="Pass an OpenAI"):
            OpenAICounter("gpt-4o").tool_features([42])


class TestToolCallsAndToolMessages:
    """Tool calls, tool results and legacy function calls."""

    def test_tool_call_counts_name_and_arguments(self):
        """A tool call costs its name and its JSON arguments (langchain-openai's rule)."""
        enc = tiktoken.get_encoding("o200k_base")
        call = AIMessage(
            "",
            tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}],
        )
        (features,) = OpenAICounter("gpt-4o").message_features([call])
        expected = 3 + 1 + len(enc.encode_ordinary("get_weather"))
        expected += len(enc.encode_ordinary('{"city": "Paris"}'))
        assert features.local == expected

    def test_tool_message_costs_three_for_its_id(self):
        """A tool message's id costs a flat 3 tokens, whatever its length."""
        counter = OpenAICounter("gpt-4o")
        short, long = counter.message_features(
            [
                ToolMessage("18C", tool_call_id="c1"),
                ToolMessage("18C", tool_call_id="call_" + "x" * 40),
            ]
        )
        assert short.local == long.local == 3 + 1 + 3 + 2

    def test_tool_message_name_not_counted(self):
        """OpenAI receives no name on a tool message, so none is counted."""
        counter = OpenAICounter("gpt-4o")
        named, plain = counter.message_features(
            [
                ToolMessage("18C", tool_call_id="c1", name="weather"),
                ToolMessage("18C", tool_call_id="c1"),
            ]
        )
        assert named.local == plain.local

    def test_legacy_function_call_counts_name_and_arguments(self):
        """A legacy function_call counts its name and arguments.

        langchain-openai encodes ``str(dict)`` of the function_call (Python repr
        with quotes and braces); we count the two strings OpenAI receives.
        """
        enc = tiktoken.get_encoding("o200k_base")
        msg = AIMessage(
            "",
            additional_kwargs={"function_call": {"name": "f", "arguments": '{"x": 1}'}},
        )
        (features,) = OpenAICounter("gpt-4o").message_features([msg])
        assert features.local == 3 + 1 + len(enc.encode_ordinary("f")) + len(
            enc.encode_ordinary('{"x": 1}')
        )

    def test_anthropic_tool_use_blocks_not_double_counted(self):
        """tool_use blocks duplicate the parsed tool calls and are skipped."""
        call = {"name": "f", "args": {"x": 1}, "id": "t1"}
        with_block = AIMessage(
            [{"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}],
            tool_calls=[call],
        )
        without = AIMessage("", tool_calls=[call])
        counter = OpenAICounter("gpt-4o")
        a, b = counter.message_features([with_block, without])
        assert a.local == b.local

    def test_function_message(self):
        """A function message counts role "function" and its name."""
        enc = tiktoken.get_encoding("o200k_base")
        (features,) = OpenAICounter("gpt-4o").message_features(
            [FunctionMessage("42", name="calc")]
        )
        n = len(enc.encode_ordinary("function")) + len(enc.encode_ordinary("42"))
        assert features.local == 3 + n + len(enc.encode_ordinary("calc")) + 1

    def test_tool_result_blocks_count_their_text(self):
        """Anthropic tool_result blocks count their content's text."""
        counter = OpenAICounter("gpt-4o")
        block, plain = counter.message_features(
            [
                HumanMessage(
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": "sunny, 18C",
                        }
                    ]
                ),
                HumanMessage("sunny, 18C"),
            ]
        )
        assert block.local == plain.local


class TestImages:
    """Image parts by OpenAI's tile rule, never fetched."""

    @pytest.mark.parametrize(
        ("size", "tokens"),
        [
            ((1024, 1024), 765),
            ((512, 512), 255),
            ((4096, 2048), 1105),
            ((100, 3000), 765),
            ((2048, 4096), 1105),
        ],
    )
    def test_tile_rule(self, size, tokens):
        """Images scale to fit 2048, then to a 768 shortest side; 170 per tile + 85."""
        assert tile_tokens(*size) == tokens

    def test_low_detail(self):
        """An image with detail low costs 85 whatever the size."""
        counter = OpenAICounter("gpt-4o")
        low, text = counter.message_features(
            [image_message(png_url(4096, 4096), "low"), HumanMessage("What is this?")]
        )
        assert low.local - text.local == LOW_DETAIL_IMAGE_TOKENS
        assert low.vector[FEATURE_IMAGE] == 85.0

    def test_png_size_from_header(self):
        """The size of inline PNG data is read from its header."""
        counter = OpenAICounter("gpt-4o")
        img, text = counter.message_features(
            [image_message(png_url(4096, 2048)), HumanMessage("What is this?")]
        )
        assert img.local - text.local == 1105

    @pytest.mark.parametrize(
        "header",
        [
            pytest.param(b"GIF89a" + struct.pack("<HH", 1024, 1024), id="gif"),
            pytest.param(
                b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
                b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 1024, 1024) + b"\x03" * 12,
                id="jpeg",
            ),
            pytest.param(
                b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
                + (1023).to_bytes(3, "little")
                + (1023).to_bytes(3, "little")
                + b"\x00" * 8,
                id="webp",
            ),
        ],
    )
    def test_other_formats(self, header):
        """GIF, JPEG and WebP headers give the size too (1024x1024: 765)."""
        url = "data:image/x;base64," + base64.b64encode(header).decode()
        counter = OpenAICounter("gpt-4o")
        img, text = counter.message_features(
            [image_message(url), HumanMessage("What is this?")]
        )
        assert img.local - text.local == 765

    def test_url_is_never_fetched(self):
        """An image URL costs the default without any network access.

        langchain-openai downloads the image to measure it (and counts nothing
        when it cannot); we never fetch on a counting path.
        """
        counter = OpenAICounter("gpt-4o")
        img, text = counter.message_features(
            [
                image_message("https://example.com/cat.png"),
                HumanMessage("What is this?"),
            ]
        )
        assert img.local - text.local == DEFAULT_IMAGE_TOKENS

    def test_standard_and_anthropic_blocks(self):
        """LangChain standard and Anthropic image blocks are read like image_url."""
        b64 = png_url(512, 512).split(",", 1)[1]
        blocks = [
            {"type": "image", "base64": b64, "mime_type": "image/png"},
            {
                "type": "image",
                "source_type": "base64",
                "data": b64,
                "mime_type": "image/png",
            },
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": b64},
            },
        ]
        counter = OpenAICounter("gpt-4o")
        base = counter.message_features(
            [HumanMessage([{"type": "text", "text": "x"}])]
        )[0].local
        for block in blocks:
            (f,) = counter.message_features(
                [HumanMessage([{"type": "text", "text": "x"}, block])]
            )
            assert f.local - base == 255

    def test_base64_characters_are_not_tokens(self):
        """A huge inline image costs its tiles, not its base64 length."""
        url = png_url(1024, 1024) + "A" * 400_000
        counter = OpenAICounter("gpt-4o")
        (f,) = counter.message_features([image_message(url)])
        assert f.local < 800


class TestSpecialText:
    """Inputs langchain-openai cannot count."""

    def test_special_token_text_is_ordinary(self):
        """Text containing <|endoftext|> counts as ordinary text instead of raising.

        langchain-openai's encode() raises on special-token text.
        """
        counter = OpenAICounter("gpt-4o")
        assert counter([HumanMessage("a <|endoftext|> b")]) > 10

    def test_unknown_block_with_text_counts_text(self):
        """An unknown block that carries text counts that text (langchain-openai raises)."""
        counter = OpenAICounter("gpt-4o")
        odd, plain = counter.message_features(
            [
                HumanMessage([{"type": "text-plain", "text": "hello"}]),
                HumanMessage([{"type": "text", "text": "hello"}]),
            ]
        )
        assert odd.local == plain.local

    def test_as_messages_other_inputs(self):
        """A string, a prompt value and an iterator are accepted too."""
        prompt = ChatPromptTemplate.from_messages([("system", "s"), ("human", "{q}")])
        assert as_messages("hi") == [HumanMessage("hi")]
        assert as_messages(prompt.invoke({"q": "x"})) == [
            SystemMessage("s"),
            HumanMessage("x"),
        ]
        assert as_messages(iter(HISTORY)) == HISTORY

    def test_as_messages_fast_path(self):
        """A list of messages is returned as is; message-likes are converted."""
        assert as_messages(HISTORY) is HISTORY
        (converted,) = as_messages([("ai", "hi")])
        assert isinstance(converted, AIMessage)


class TestStrict:
    """``local_counter(..., strict=True)`` refuses to approximate silently."""

    def test_strict_raises_without_encoding(self, offline_tiktoken):
        """Offline with no cache, a strict counter names the encoding and the fix."""
        with pytest.raises(EncodingUnavailableError, match="o200k_base") as raised:
            local_counter("gpt-4o", strict=True)
        assert "TIKTOKEN_CACHE_DIR" in str(raised.value)
        assert isinstance(raised.value, TokenCalError)

    def test_strict_raises_for_approximate_counters_too(self, offline_tiktoken):
        """Approximate counters need the reference encoding for their classes."""
        with pytest.raises(EncodingUnavailableError):
            local_counter("claude-sonnet-4-5", "anthropic", strict=True)

    def test_default_still_approximates(self, offline_tiktoken):
        """Without strict the same request counts approximately."""
        assert local_counter("gpt-4o")(HISTORY) > 0

    def test_strict_with_encoding_counts(self):
        """With the encoding available strict changes nothing."""
        strict = local_counter("gpt-4o", strict=True)
        assert strict.info.kind == "exact"
        assert strict(HISTORY) == local_counter("gpt-4o")(HISTORY)
