"""Tests for `langchain_tokencal._usage`: one normalized record from any payload."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
import types
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, NoReturn

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    Generation,
    LLMResult,
)

from langchain_tokencal import (
    SUPPORTED_PROVIDERS,
    TokenUsage,
    explain_usage,
    parse_usage,
)
from langchain_tokencal._usage import USAGE_CONTAINERS, USAGE_FIELDS
from langchain_tokencal._usage import usage_metadata as metadata_from_totals
from langchain_tokencal.errors import UnknownProviderError, UsageError
from tests.unit_tests.conftest import DATA_DIR

USAGE_DIR = DATA_DIR / "usage"


def load_cases() -> list[dict[str, Any]]:
    """Every recorded payload case, from every JSON file under data/usage."""
    cases = []
    for path in sorted(USAGE_DIR.glob("*.json")):
        cases.extend(json.loads(path.read_text(encoding="utf-8"))["cases"])
    return cases


CASES = load_cases()


def usage_metadata(
    inp: int = 100, out: int = 20, total: int | None = None, **extra: Any
) -> dict[str, Any]:
    """A LangChain usage_metadata dict."""
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out if total is None else total,
        **extra,
    }


def counts(usage: TokenUsage | None) -> tuple[int, int, int]:
    """Input, output and total tokens of a record that must exist."""
    assert usage is not None
    return usage.input_tokens, usage.output_tokens, usage.total_tokens


def check(usage: TokenUsage | None, expected: Mapping[str, Any]) -> None:
    """Compare a record with an expectation; absent keys mean their defaults."""
    assert usage is not None
    assert usage.input_tokens == expected["input_tokens"]
    assert usage.output_tokens == expected["output_tokens"]
    assert usage.total_tokens == expected["total_tokens"]
    assert usage.cache_read == expected.get("cache_read", 0)
    assert usage.cache_creation == expected.get("cache_creation", 0)
    assert usage.reasoning == expected.get("reasoning", 0)
    assert usage.provider == expected.get("provider")
    assert usage.model == expected.get("model")
    assert usage.flags == frozenset(expected.get("flags", []))
    if "extras" in expected:
        assert dict(usage.extras) == expected["extras"]


class TestRecordedPayloads:
    """Recorded provider payloads under tests/unit_tests/data/usage."""

    @pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
    def test_payload(self, case: dict[str, Any]) -> None:
        """Each recorded payload normalizes as its provider's rule says."""
        usage = parse_usage(case["payload"], case.get("provider"))
        if case["expected"] is None:
            assert usage is None
            assert explain_usage(case["payload"], case.get("provider")).startswith(
                case["reason"]
            )
        else:
            check(usage, case["expected"])
            assert explain_usage(case["payload"], case.get("provider")).startswith(
                "ok: "
            )

    def test_cases_cover_every_provider(self) -> None:
        """Every supported provider has at least one recorded valid payload."""
        seen = {c["expected"].get("provider") for c in CASES if c["expected"]}
        assert set(SUPPORTED_PROVIDERS) <= seen

    def test_case_ids_are_unique(self) -> None:
        """Case ids are unique, so a failure names one payload."""
        ids = [c["id"] for c in CASES]
        assert len(ids) == len(set(ids))


class TestAIMessage:
    """`AIMessage` and `AIMessageChunk`, the callback's usual payload."""

    def test_usage_metadata_is_read_as_is(self) -> None:
        """Input already includes cache reads: they are never added again."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(
                1200, 30, input_token_details={"cache_read": 1000}
            ),
        )
        usage = parse_usage(message)
        assert usage is not None
        assert (usage.input_tokens, usage.cache_read) == (1200, 1000)

    @pytest.mark.parametrize(
        ("response_metadata", "model", "provider"),
        [
            pytest.param(
                {"model_name": "gpt-4o-2024-08-06", "model_provider": "openai"},
                "gpt-4o-2024-08-06",
                "openai",
                id="model-name-and-provider",
            ),
            pytest.param(
                {"model": "llama3.2", "model_provider": "ollama"},
                "llama3.2",
                "ollama",
                id="model-key-fallback",
            ),
            pytest.param(
                {"model_provider": "google_genai"},
                None,
                "google",
                id="alias-is-canonical",
            ),
            pytest.param(
                {"model_provider": "my-gateway"},
                None,
                "my-gateway",
                id="unknown-provider-kept",
            ),
            pytest.param(
                {"ls_provider": "anthropic"},
                None,
                "anthropic",
                id="ls-provider",
            ),
        ],
    )
    def test_labels_come_from_response_metadata(
        self,
        response_metadata: dict[str, Any],
        model: str | None,
        provider: str | None,
    ) -> None:
        """The model and provider in response_metadata label the record."""
        message = AIMessage(
            "hi", usage_metadata=usage_metadata(), response_metadata=response_metadata
        )
        usage = parse_usage(message)
        assert usage is not None
        assert (usage.model, usage.provider) == (model, provider)

    @pytest.mark.parametrize(
        ("provider", "expected"),
        [
            pytest.param("xAI", "openai", id="alias"),
            pytest.param("Groq", "groq", id="other-provider"),
        ],
    )
    def test_explicit_provider_wins(self, provider: str, expected: str) -> None:
        """provider= overrides what the payload says."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(),
            response_metadata={"model_provider": "openai"},
        )
        usage = parse_usage(message, provider)
        assert usage is not None
        assert usage.provider == expected

    def test_falls_back_to_response_metadata_token_usage(self) -> None:
        """Without usage_metadata the raw token_usage is read."""
        message = AIMessage(
            "hi",
            response_metadata={
                "token_usage": {
                    "prompt_tokens": 40,
                    "completion_tokens": 2,
                    "total_tokens": 42,
                },
                "model_name": "gpt-4o-mini",
            },
        )
        usage = parse_usage(message)
        assert usage is not None
        assert (usage.input_tokens, usage.provider, usage.model) == (
            40,
            "openai",
            "gpt-4o-mini",
        )

    def test_no_usage_metadata_is_no_usage(self) -> None:
        """A message without usage is "no usage", never zeros."""
        message = AIMessage("hi")
        assert parse_usage(message) is None
        assert explain_usage(message) == "no usage: usage_metadata is None"

    def test_zero_usage_is_no_usage(self) -> None:
        """input_tokens and output_tokens both 0 is no usage."""
        message = AIMessage("hi", usage_metadata=usage_metadata(0, 0))
        assert parse_usage(message) is None
        assert explain_usage(message).startswith("no usage: input_tokens and")

    def test_output_only_usage_is_kept(self) -> None:
        """Input 0 with output > 0 is a real (if odd) report and is kept."""
        usage = parse_usage(AIMessage("hi", usage_metadata=usage_metadata(0, 5)))
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens) == (0, 5)

    def test_human_message_has_no_usage(self) -> None:
        """Messages that cannot carry usage are no usage."""
        assert parse_usage(HumanMessage("hi")) is None

    def test_anthropic_server_tool_use_is_flagged(self) -> None:
        """langchain-anthropic's raw usage with server_tool_use flags the input."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(10682, 510),
            response_metadata={
                "model_provider": "anthropic",
                "usage": {
                    "input_tokens": 10682,
                    "output_tokens": 510,
                    "server_tool_use": {"web_search_requests": 2},
                },
            },
        )
        usage = parse_usage(message)
        assert usage is not None
        assert usage.flags == {"server_tool_input"}

    @pytest.mark.parametrize(
        "block",
        [
            pytest.param(
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01",
                    "name": "web_search",
                    "input": {"query": "port"},
                },
                id="anthropic-server-tool-use",
            ),
            pytest.param(
                {"type": "mcp_tool_use", "id": "mcptoolu_01", "name": "x", "input": {}},
                id="anthropic-mcp-tool-use",
            ),
            pytest.param(
                {
                    "type": "server_tool_call",
                    "id": "s1",
                    "name": "web_search",
                    "args": {},
                },
                id="standard-server-tool-call",
            ),
        ],
    )
    def test_streamed_server_tool_blocks_are_flagged(
        self, block: dict[str, Any]
    ) -> None:
        """A streamed reply has no raw usage; its server tool blocks flag the input."""
        message = AIMessageChunk(
            content=[block, {"type": "text", "text": "Open.", "index": 2}],
            usage_metadata=usage_metadata(2410, 40),
            response_metadata={
                "model_provider": "anthropic",
                "stop_reason": "end_turn",
            },
        )
        usage = parse_usage(message)
        assert usage is not None
        assert usage.flags == {"server_tool_input"}
        assert (usage.input_tokens, usage.output_tokens) == (2410, 40)

    def test_client_tool_use_blocks_are_not_flagged(self) -> None:
        """A tool the client runs adds nothing to this request's input."""
        message = AIMessage(
            content=[{"type": "tool_use", "id": "toolu_01", "name": "f", "input": {}}],
            usage_metadata=usage_metadata(),
        )
        usage = parse_usage(message)
        assert usage is not None
        assert usage.flags == frozenset()

    def test_zero_server_tool_use_is_not_flagged(self) -> None:
        """server_tool_use with zero requests leaves the input trusted."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(),
            response_metadata={
                "usage": {"server_tool_use": {"web_search_requests": 0}},
            },
        )
        usage = parse_usage(message)
        assert usage is not None
        assert usage.flags == frozenset()

    def test_merged_chunks_are_read_as_merged(self) -> None:
        """A chunk merged with `+` is read as LangChain summed it."""
        merged = AIMessageChunk(
            "a", usage_metadata=usage_metadata(100, 0)
        ) + AIMessageChunk("b", usage_metadata=usage_metadata(0, 25))
        usage = parse_usage(merged)
        assert counts(usage) == (100, 25, 125)

    @pytest.mark.parametrize(
        ("meta", "reason"),
        [
            pytest.param(
                usage_metadata(10, 5, input_token_details={"cache_read": 11}),
                "rejected: cache_read (11) + cache_creation (0) > input_tokens (10)",
                id="cache-read-above-input",
            ),
            pytest.param(
                usage_metadata(
                    10,
                    5,
                    input_token_details={"cache_read": 6, "cache_creation": 5},
                ),
                "rejected: cache_read (6) + cache_creation (5) > input_tokens (10)",
                id="cache-sum-above-input",
            ),
            pytest.param(
                usage_metadata(10, 5, output_token_details={"reasoning": 6}),
                "rejected: reasoning (6) > output_tokens (5)",
                id="reasoning-above-output",
            ),
            pytest.param(
                usage_metadata(10, 5, total=14),
                "rejected: total_tokens (14) < input_tokens (10) + output_tokens (5)",
                id="total-below-sum",
            ),
            pytest.param(
                usage_metadata(-1, 5, total=5),
                "rejected: input_tokens (-1) is negative",
                id="negative-input",
            ),
            pytest.param(
                usage_metadata(10**9 + 1, 0),
                "rejected: input_tokens (1000000001) exceeds 1000000000",
                id="huge-input",
            ),
        ],
    )
    def test_inconsistent_usage_metadata_is_rejected(
        self, meta: dict[str, Any], reason: str
    ) -> None:
        """Counts that contradict each other are rejected with the broken rule."""
        message = AIMessage("hi", usage_metadata=meta)
        assert parse_usage(message) is None
        assert explain_usage(message) == reason

    def test_langchain_anthropic_cache_details(self) -> None:
        """Ephemeral write keys win over a zeroed cache_creation."""
        details = {
            "cache_read": 0,
            "cache_creation": 0,
            "ephemeral_5m_input_tokens": 0,
            "ephemeral_1h_input_tokens": 1500,
        }
        message = AIMessage(
            "hi", usage_metadata=usage_metadata(1510, 3, input_token_details=details)
        )
        usage = parse_usage(message)
        assert usage is not None
        assert usage.cache_creation == 1500


class TestChunkStreams:
    """Lists and iterables of LangChain chunks."""

    def test_cumulative_chunks_take_the_last(self) -> None:
        """Chunks that all repeat the input are cumulative: the last is taken."""
        chunks = [
            AIMessageChunk("a", usage_metadata=usage_metadata(50, 1)),
            AIMessageChunk("b", usage_metadata=usage_metadata(50, 7)),
            AIMessageChunk("c", usage_metadata=usage_metadata(50, 12)),
        ]
        usage = parse_usage(chunks)
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens) == (50, 12)
        assert usage.flags == {"cumulative_stream"}

    def test_split_chunks_are_summed(self) -> None:
        """Input on one chunk and output on another are summed as LangChain does."""
        chunks = [
            AIMessageChunk("", usage_metadata=usage_metadata(300, 1)),
            AIMessageChunk("x"),
            AIMessageChunk("", usage_metadata=usage_metadata(0, 80)),
        ]
        usage = parse_usage(chunks)
        assert counts(usage) == (300, 81, 381)
        assert usage is not None
        assert usage.flags == frozenset()

    def test_generator_of_generation_chunks(self) -> None:
        """Any iterable works, including a generator of ChatGenerationChunk."""

        def produce() -> Iterator[ChatGenerationChunk]:
            yield ChatGenerationChunk(message=AIMessageChunk("a"))
            yield ChatGenerationChunk(
                message=AIMessageChunk("b", usage_metadata=usage_metadata(9, 4))
            )

        usage = parse_usage(produce())
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens) == (9, 4)

    def test_chunks_without_usage_are_no_usage(self) -> None:
        """Streaming without stream_usage reports no usage."""
        chunks = [AIMessageChunk("a"), AIMessageChunk("b")]
        assert parse_usage(chunks) is None
        assert explain_usage(chunks) == "no usage: no chunk carries usage_metadata"

    def test_a_rejected_chunk_rejects_the_stream(self) -> None:
        """One corrupt chunk makes the whole stream untrusted."""
        chunks = [
            AIMessageChunk("a", usage_metadata=usage_metadata(10, 1)),
            AIMessageChunk(
                "b",
                usage_metadata=usage_metadata(
                    10, 5, input_token_details={"cache_read": -1}
                ),
            ),
        ]
        assert explain_usage(chunks).startswith("rejected: ")


class TestGenerationsAndResults:
    """`ChatGeneration`, `Generation` and `LLMResult` as `on_llm_end` gets them."""

    def test_chat_generation(self) -> None:
        """A ChatGeneration is read through its message."""
        generation = ChatGeneration(
            message=AIMessage("hi", usage_metadata=usage_metadata(7, 3))
        )
        usage = parse_usage(generation)
        assert usage is not None
        assert usage.total_tokens == 10

    def test_llm_result_reads_the_first_candidate_only(self) -> None:
        """With n > 1 every candidate repeats the usage: it is never summed."""
        candidates = [
            ChatGeneration(message=AIMessage(t, usage_metadata=usage_metadata(20, 9)))
            for t in ("a", "b", "c")
        ]
        usage = parse_usage(LLMResult(generations=[candidates]))
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens) == (20, 9)

    def test_llm_result_falls_back_to_llm_output(self) -> None:
        """Without message usage, llm_output['token_usage'] is read."""
        result = LLMResult(
            generations=[[ChatGeneration(message=AIMessage("hi"))]],
            llm_output={
                "token_usage": {"prompt_tokens": 11, "completion_tokens": 2},
                "model_name": "gpt-4o-mini",
            },
        )
        usage = parse_usage(result)
        assert usage is not None
        assert (usage.input_tokens, usage.model) == (11, "gpt-4o-mini")

    def test_llm_result_takes_model_from_llm_output(self) -> None:
        """A message without model_name is labelled from llm_output."""
        result = LLMResult(
            generations=[
                [
                    ChatGeneration(
                        message=AIMessage("x", usage_metadata=usage_metadata())
                    )
                ]
            ],
            llm_output={"model_name": "claude-sonnet-4-5"},
        )
        usage = parse_usage(result)
        assert usage is not None
        assert usage.model == "claude-sonnet-4-5"

    def test_completion_llm_result_uses_llm_output(self) -> None:
        """Completion models put usage in llm_output only."""
        result = LLMResult(
            generations=[[Generation(text="hi")]],
            llm_output={"token_usage": {"prompt_tokens": 5, "completion_tokens": 1}},
        )
        usage = parse_usage(result)
        assert usage is not None
        assert usage.total_tokens == 6

    def test_generation_info_usage(self) -> None:
        """A plain Generation can carry Ollama counters in generation_info."""
        generation = Generation(
            text="hi",
            generation_info={"done": True, "prompt_eval_count": 8, "eval_count": 2},
        )
        usage = parse_usage(generation)
        assert usage is not None
        assert (usage.input_tokens, usage.provider) == (8, "ollama")

    def test_empty_llm_result_explains_why(self) -> None:
        """An LLMResult without usage anywhere says where it looked."""
        result = LLMResult(generations=[[ChatGeneration(message=AIMessage("x"))]])
        assert explain_usage(result) == "no usage: usage_metadata is None"


class TestLLMCache:
    """LangChain's LLM cache replays the original usage with total_cost 0."""

    def test_cache_hit_is_flagged(self) -> None:
        """The second, cached call is flagged llm_cache_hit; the first is not."""

        class Recorder(BaseCallbackHandler):
            raise_error = True

            def __init__(self) -> None:
                self.seen: list[TokenUsage | None] = []

            def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
                # Parse inside the callback: the cache mutates stored objects later.
                self.seen.append(parse_usage(response))

        recorder = Recorder()
        reply = AIMessage("a", usage_metadata=usage_metadata(10, 3))
        model = GenericFakeChatModel(
            messages=iter([reply, reply]), cache=InMemoryCache(), callbacks=[recorder]
        )
        model.invoke("hello")
        model.invoke("hello")
        first, second = recorder.seen
        assert first is not None
        assert second is not None
        assert "llm_cache_hit" not in first.flags
        assert "llm_cache_hit" in second.flags
        assert second.input_tokens == 10


class TestSdkObjects:
    """Objects are converted to dicts (model_dump, to_dict, attributes)."""

    def test_openai_sdk_chat_completion(self) -> None:
        """A real openai SDK ChatCompletion is read via model_dump()."""
        chat = pytest.importorskip("openai.types.chat")
        case = next(c for c in CASES if c["id"] == "openai-chat-cache-read")
        completion = chat.ChatCompletion.model_validate(case["payload"])
        check(parse_usage(completion), case["expected"])

    def test_openai_sdk_stream_chunks(self) -> None:
        """A list of openai SDK ChatCompletionChunk objects is a stream."""
        chat = pytest.importorskip("openai.types.chat")
        case = next(c for c in CASES if c["id"] == "openai-stream-include-usage")
        chunks = [chat.ChatCompletionChunk.model_validate(c) for c in case["payload"]]
        check(parse_usage(chunks), case["expected"])

    def test_attribute_object(self) -> None:
        """Plain objects are read through their attributes."""
        response = types.SimpleNamespace(
            model="claude-3-haiku-20240307",
            type="message",
            usage=types.SimpleNamespace(
                input_tokens=5, output_tokens=6, cache_read_input_tokens=100
            ),
        )
        usage = parse_usage(response)
        assert usage is not None
        assert (usage.input_tokens, usage.provider) == (105, "anthropic")

    def test_dataclass_object(self) -> None:
        """Dataclass instances (slotted or not) are read field by field."""

        @dataclasses.dataclass(slots=True)
        class Usage:
            inputTokens: int  # noqa: N815 - the Bedrock field name
            outputTokens: int  # noqa: N815 - the Bedrock field name

        @dataclasses.dataclass(slots=True)
        class Response:
            usage: Usage

        usage = parse_usage(Response(Usage(4, 2)))
        assert usage is not None
        assert (usage.total_tokens, usage.provider) == (6, "bedrock")

    def test_to_dict_object(self) -> None:
        """Objects with to_dict() are converted with it."""

        class Response:
            def to_dict(self) -> dict[str, Any]:
                return {
                    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}
                }

        usage = parse_usage(Response())
        assert usage is not None
        assert usage.provider == "google"

    def test_failing_model_dump_is_no_usage(self) -> None:
        """A model_dump() that raises is treated as no fields, not an error."""

        class Broken:
            def model_dump(self) -> dict[str, Any]:
                msg = "boom"
                raise RuntimeError(msg)

        assert parse_usage(Broken()) is None


class TestProviderArgument:
    """The provider= argument: canonical names, aliases, unknown names."""

    def test_supported_providers_are_sorted_and_canonical(self) -> None:
        """SUPPORTED_PROVIDERS is a sorted tuple of the canonical names."""
        assert list(SUPPORTED_PROVIDERS) == sorted(SUPPORTED_PROVIDERS)
        assert set(SUPPORTED_PROVIDERS) == {
            "anthropic",
            "bedrock",
            "cohere",
            "deepseek",
            "google",
            "groq",
            "mistral",
            "ollama",
            "openai",
            "vllm",
        }

    @pytest.mark.parametrize(
        ("alias", "canonical"),
        [
            ("gemini", "google"),
            ("google_genai", "google"),
            ("vertexai", "google"),
            ("azure", "openai"),
            ("azure_openai", "openai"),
            ("xai", "openai"),
            ("fireworks", "openai"),
            ("together", "openai"),
            ("deepinfra", "openai"),
            ("amazon_bedrock", "bedrock"),
            ("bedrock_converse", "bedrock"),
            ("ANTHROPIC", "anthropic"),
            (" Amazon-Bedrock ", "bedrock"),
        ],
    )
    def test_aliases(self, alias: str, canonical: str) -> None:
        """Aliases are case-insensitive and map to a canonical provider."""
        usage = parse_usage(usage_metadata(), alias)
        assert usage is not None
        assert usage.provider == canonical

    def test_unknown_provider_raises_with_the_choices(self) -> None:
        """An unknown name is a programming error: it raises and lists the names."""
        with pytest.raises(UnknownProviderError, match="anthropic, bedrock"):
            parse_usage(usage_metadata(), "openia")

    def test_unknown_provider_raises_even_for_bad_payloads(self) -> None:
        """The name is checked before the payload, whatever the payload."""
        with pytest.raises(UnknownProviderError):
            parse_usage(None, "nope")
        with pytest.raises(UnknownProviderError):
            explain_usage({}, "nope")

    def test_non_string_provider_raises(self) -> None:
        """A provider that is not a string is rejected the same way."""
        with pytest.raises(UnknownProviderError):
            parse_usage(usage_metadata(), 3)  # type: ignore[arg-type]


class TestStrict:
    """strict=True raises instead of returning None."""

    def test_strict_raises_usage_error_with_the_reason(self) -> None:
        """The UsageError says why the payload was rejected."""
        with pytest.raises(UsageError, match=r"total_tokens \(5\) < input_tokens"):
            parse_usage(
                {"usage": {"prompt_tokens": 10, "total_tokens": 5}}, strict=True
            )

    def test_strict_raises_on_no_usage(self) -> None:
        """No usage is an error under strict parsing too."""
        with pytest.raises(UsageError, match="no usage: usage_metadata is None"):
            parse_usage(AIMessage("x"), strict=True)

    def test_strict_returns_good_records(self) -> None:
        """strict=True returns the record when the payload is sound."""
        assert parse_usage(usage_metadata(), strict=True) is not None


class _Index:
    """An integer-like (numpy-style) value with __index__."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class _ExplodingMapping(Mapping[str, Any]):
    """A mapping whose every read fails."""

    def __getitem__(self, key: str) -> Any:
        msg = "no"
        raise RuntimeError(msg)

    def __iter__(self) -> Iterator[str]:
        msg = "no"
        raise RuntimeError(msg)

    def __len__(self) -> int:
        return 1


class TestValidation:
    """Counts that cannot be trusted are rejected with a reason, never raised."""

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            pytest.param(math.nan, "is not an integer", id="nan"),
            pytest.param(math.inf, "is not an integer", id="inf"),
            pytest.param(-math.inf, "is not an integer", id="-inf"),
            pytest.param(12.5, "is not an integer", id="fraction"),
            pytest.param(True, "is a boolean", id="true"),
            pytest.param(False, "is a boolean", id="false"),
            pytest.param("12", "is a str", id="numeric-string"),
            pytest.param(b"12", "is a bytes", id="bytes"),
            pytest.param(Decimal(12), "is a Decimal", id="decimal"),
            pytest.param([12], "is a list", id="list"),
            pytest.param(-1, "is negative", id="negative"),
            pytest.param(10**9 + 1, "exceeds 1000000000", id="too-large"),
            pytest.param(10**5000, "more than 19 digits", id="huge"),
        ],
    )
    def test_bad_counts_are_rejected(self, value: Any, reason: str) -> None:
        """Each kind of bad count is rejected with a reason naming the field."""
        payload = {"usage": {"prompt_tokens": value, "completion_tokens": 1}}
        assert parse_usage(payload) is None
        explanation = explain_usage(payload)
        assert explanation.startswith("rejected: prompt_tokens")
        assert reason in explanation

    def test_integral_float_is_accepted(self) -> None:
        """12.0 counts as 12."""
        usage = parse_usage({"usage": {"prompt_tokens": 12.0, "completion_tokens": 1}})
        assert usage is not None
        assert usage.input_tokens == 12
        assert type(usage.input_tokens) is int

    def test_index_like_integers_are_accepted(self) -> None:
        """numpy-style integers (with __index__) count as ints."""
        usage = parse_usage(
            {"usage": {"prompt_tokens": _Index(7), "completion_tokens": 1}}
        )
        assert usage is not None
        assert usage.input_tokens == 7

    def test_malformed_extras_are_dropped(self) -> None:
        """A malformed extra (audio tokens) is dropped, not fatal."""
        payload = {
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 1,
                "prompt_tokens_details": {"audio_tokens": "lots"},
            }
        }
        usage = parse_usage(payload)
        assert usage is not None
        assert "input_audio" not in usage.extras

    def test_audio_larger_than_input_is_rejected(self) -> None:
        """Audio tokens are a subset of their parent."""
        payload = usage_metadata(10, 1, input_token_details={"audio": 11})
        assert explain_usage(payload).startswith("rejected: audio tokens")

    def test_summed_chunks_above_the_limit_are_rejected(self) -> None:
        """A sum of plausible chunks can still exceed the plausible total."""
        chunks = [
            AIMessageChunk("a", usage_metadata=usage_metadata(10**9 - i, 0))
            for i in range(2)
        ]
        assert explain_usage(chunks).startswith("rejected: input_tokens")

    def test_deep_nesting_does_not_recurse_forever(self) -> None:
        """A payload nested 100,000 deep is no usage, with no RecursionError."""
        payload: dict[str, Any] = {}
        for _ in range(100_000):
            payload = {"usage": payload, "response": payload}
        assert parse_usage(payload) is None

    def test_cyclic_dict(self) -> None:
        """A dict that contains itself is no usage."""
        payload: dict[str, Any] = {"model": "x"}
        payload["response"] = payload
        payload["usage"] = payload
        assert explain_usage(payload).startswith("no usage")

    def test_shared_references_stay_cheap(self) -> None:
        """A dict whose every envelope key points back to itself is cut off fast."""
        payload: dict[str, Any] = {}
        for key in USAGE_CONTAINERS:
            payload[key] = payload
        start = time.perf_counter()
        assert explain_usage(payload).startswith("no usage: payload too complex")
        # Without a visit budget this search is 14**7 calls (hours) for the 14 keys.
        assert time.perf_counter() - start < 1.0

    def test_cyclic_object(self) -> None:
        """An object graph with a cycle is no usage."""
        node = types.SimpleNamespace()
        node.response = node
        node.message = node
        assert parse_usage(node) is None

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param(None, id="none"),
            pytest.param("usage", id="str"),
            pytest.param(b"usage", id="bytes"),
            pytest.param(42, id="int"),
            pytest.param(4.2, id="float"),
            pytest.param(object(), id="object"),
            pytest.param(object, id="class"),
            pytest.param(math, id="module"),
            pytest.param(lambda: None, id="function"),
            pytest.param({1, 2}, id="set"),
            pytest.param([[[]]], id="nested-lists"),
            pytest.param([None, 1, "x"], id="junk-stream"),
            pytest.param([{"type": []}, {"type": {}}], id="unhashable-event-types"),
            pytest.param({1: 2, (3,): None}, id="non-str-keys"),
            pytest.param(_ExplodingMapping(), id="exploding-mapping"),
        ],
    )
    def test_weird_payloads_never_raise(self, payload: Any) -> None:
        """Junk is no usage (or rejected), never an exception."""
        assert parse_usage(payload) is None
        assert explain_usage(payload).startswith(("no usage", "rejected"))

    def test_overlong_streams_are_rejected(self) -> None:
        """An endless iterator is cut off instead of consumed forever."""

        def endless() -> Iterator[dict[str, Any]]:
            while True:
                yield {}

        assert explain_usage(endless()).startswith("rejected: stream has more than")


class TestTokenUsage:
    """The frozen record and its conversion to LangChain's UsageMetadata."""

    def test_to_usage_metadata_fills_only_nonzero_details(self) -> None:
        """Details appear only when nonzero, with LangChain's key names."""
        usage = TokenUsage(
            100,
            50,
            150,
            cache_read=80,
            reasoning=20,
            extras={"input_audio": 5, "output_audio": 0},
        )
        assert usage.to_usage_metadata() == {
            "input_tokens": 100,
            "output_tokens": 50,
            "total_tokens": 150,
            "input_token_details": {"cache_read": 80, "audio": 5},
            "output_token_details": {"reasoning": 20},
        }

    def test_to_usage_metadata_without_details(self) -> None:
        """A record without details converts to the three counts only."""
        meta = TokenUsage(3, 4, 7).to_usage_metadata()
        assert meta == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}

    def test_round_trip_through_usage_metadata(self) -> None:
        """Parsing the converted UsageMetadata gives the same counts back."""
        usage = TokenUsage(100, 50, 150, cache_read=10, cache_creation=20, reasoning=5)
        again = parse_usage(usage.to_usage_metadata())
        assert again is not None
        assert (again.cache_read, again.cache_creation, again.reasoning) == (10, 20, 5)

    def test_record_is_frozen(self) -> None:
        """Fields cannot be reassigned."""
        usage = TokenUsage(1, 2, 3)
        with pytest.raises(dataclasses.FrozenInstanceError):
            usage.input_tokens = 5  # type: ignore[misc]

    def test_extras_are_read_only(self) -> None:
        """A plain dict given as extras is frozen into a read-only mapping."""
        source = {"input_audio": 4}
        usage = TokenUsage(10, 2, 12, extras=source)
        source["input_audio"] = 99
        assert usage.extras == {"input_audio": 4}
        with pytest.raises(TypeError):
            usage.extras["input_audio"] = 1  # type: ignore[index]

    def test_record_is_hashable(self) -> None:
        """Records hash (extras are left out) and compare by value."""
        first = TokenUsage(1, 2, 3, extras={"a": 1}, flags=frozenset({"x"}))
        second = TokenUsage(1, 2, 3, extras={"a": 1}, flags=frozenset({"x"}))
        assert first == second
        assert hash(first) == hash(second)
        assert len({first, second}) == 1

    def test_raw_keys_name_the_usage_keys(self) -> None:
        """raw_keys are the keys of the usage object that was read."""
        usage = parse_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 1}})
        assert usage is not None
        assert usage.raw_keys == {"prompt_tokens", "completion_tokens"}


class TestUsageMetadataFromTotals:
    """usage_metadata(totals): per-model sums in USAGE_FIELDS order to UsageMetadata."""

    def test_fields_are_in_the_documented_order(self) -> None:
        """USAGE_FIELDS names the three counts, then cache, reasoning and audio."""
        assert USAGE_FIELDS == (
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cache_read",
            "cache_creation",
            "reasoning",
            "input_audio",
            "output_audio",
        )

    @pytest.mark.parametrize(
        ("totals", "expected"),
        [
            pytest.param(
                (10, 2, 12, 0, 0, 0, 0, 0),
                {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
                id="no-details",
            ),
            pytest.param(
                (100, 50, 150, 3, 4, 5, 6, 7),
                {
                    "input_tokens": 100,
                    "output_tokens": 50,
                    "total_tokens": 150,
                    "input_token_details": {
                        "cache_read": 3,
                        "cache_creation": 4,
                        "audio": 6,
                    },
                    "output_token_details": {"reasoning": 5, "audio": 7},
                },
                id="every-detail",
            ),
            pytest.param(
                [100, 50, 150, 0, 40, 0, 0, 9],
                {
                    "input_tokens": 100,
                    "output_tokens": 50,
                    "total_tokens": 150,
                    "input_token_details": {"cache_creation": 40},
                    "output_token_details": {"audio": 9},
                },
                id="list-some-details",
            ),
        ],
    )
    def test_details_only_when_nonzero(
        self, totals: list[int] | tuple[int, ...], expected: dict[str, Any]
    ) -> None:
        """Each detail is placed under its LangChain key, only when nonzero."""
        assert metadata_from_totals(totals) == expected


class TestExplainUsage:
    """explain_usage says what parse_usage makes of a payload."""

    def test_ok_line_lists_the_counts(self) -> None:
        """An accepted payload gives an ok line with its counts and labels."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(
                100, 20, input_token_details={"cache_read": 60}, total_cost=0
            ),
            response_metadata={"model_name": "m", "model_provider": "openai"},
        )
        assert explain_usage(message) == (
            "ok: input_tokens=100 output_tokens=20 total_tokens=120 cache_read=60 "
            "provider=openai model=m flags=llm_cache_hit"
        )

    def test_rejection_reason(self) -> None:
        """A rejected payload names the broken rule."""
        assert explain_usage({"usage": {"prompt_tokens": 10, "total_tokens": 5}}) == (
            "rejected: total_tokens (5) < input_tokens (10) + output_tokens (0)"
        )


def _forbidden(what: str) -> NoReturn:
    msg = f"parse_usage must not call {what}"
    raise AssertionError(msg)


class _Tripwire(AIMessage):
    """An AIMessage that fails the test if anything dumps or copies it."""

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        _forbidden("model_dump")

    def model_dump_json(self, *args: Any, **kwargs: Any) -> str:
        _forbidden("model_dump_json")

    def model_copy(self, *args: Any, **kwargs: Any) -> _Tripwire:
        _forbidden("model_copy")

    def __copy__(self) -> _Tripwire:
        _forbidden("copy")

    def __deepcopy__(self, memo: Any) -> _Tripwire:
        _forbidden("deepcopy")


class TestHotPath:
    """parse_usage(AIMessage) runs in every callback: attributes only."""

    @pytest.mark.parametrize(
        "meta",
        [
            pytest.param(usage_metadata(), id="plain"),
            pytest.param(
                usage_metadata(
                    120,
                    30,
                    input_token_details={"cache_read": 100},
                    output_token_details={"reasoning": 10},
                ),
                id="details",
            ),
            pytest.param(
                usage_metadata(120, 30, input_token_details={"audio": 5}),
                id="general-path",
            ),
        ],
    )
    def test_no_dump_and_no_copy(
        self, meta: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Neither a dump nor a deep copy happens, on the fast or general path."""
        message = _Tripwire(
            "hi", usage_metadata=meta, response_metadata={"model_name": "m"}
        )

        def forbidden(*args: Any, **kwargs: Any) -> Any:
            _forbidden("copy.deepcopy or json.dumps")

        monkeypatch.setattr(copy, "deepcopy", forbidden)
        monkeypatch.setattr(json, "dumps", forbidden)
        usage = parse_usage(message)
        assert usage is not None
        assert usage.model == "m"

    @pytest.mark.parametrize(
        "case",
        [
            pytest.param(c, id=c["id"])
            for c in CASES
            if c["id"].startswith("usage-metadata-")
        ],
    )
    def test_recorded_usage_metadata_on_a_message(self, case: dict[str, Any]) -> None:
        """A recorded usage_metadata dict on an AIMessage parses as the dict does."""
        usage = parse_usage(AIMessage("hi", usage_metadata=case["payload"]))
        check(usage, case["expected"])

    def test_usage_metadata_is_not_mutated(self) -> None:
        """The message's usage_metadata is left exactly as it was."""
        meta = usage_metadata(10, 2, input_token_details={"audio": 1}, total_cost=0)
        message = AIMessage("hi", usage_metadata=meta)
        before = copy.deepcopy(message.usage_metadata)
        parse_usage(message)
        assert message.usage_metadata == before

    def test_is_cheap(self) -> None:
        """Parsing a typical AIMessage stays far below 100 microseconds."""
        message = AIMessage(
            "hi",
            usage_metadata=usage_metadata(
                120, 30, input_token_details={"cache_read": 100}
            ),
            response_metadata={"model_name": "gpt-4o", "model_provider": "openai"},
        )
        runs = 2000
        start = time.perf_counter()
        for _ in range(runs):
            parse_usage(message)
        elapsed = time.perf_counter() - start
        # Measured at ~4 us; the bound leaves room for slow, shared CI machines.
        assert elapsed / runs < 100e-6


class TestGrounding:
    """A grounded Gemini reply's input holds the search results: not the prompt."""

    def test_grounding_metadata_flags_server_tool_input(self) -> None:
        """grounding_metadata with queries flags it; an empty one does not."""
        from langchain_core.messages import AIMessage  # noqa: PLC0415

        meta = usage_metadata(340, 20)
        grounded = AIMessage(
            "Rotterdam ...",
            usage_metadata=meta,
            response_metadata={
                "model_provider": "google_genai",
                "grounding_metadata": {"web_search_queries": ["rotterdam port"]},
            },
        )
        usage = parse_usage(grounded)
        assert usage is not None
        assert "server_tool_input" in usage.flags
        plain = AIMessage(
            "Hi",
            usage_metadata=meta,
            response_metadata={"grounding_metadata": {"web_search_queries": []}},
        )
        assert "server_tool_input" not in parse_usage(plain).flags
