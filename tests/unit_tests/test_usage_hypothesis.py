"""Property tests for `langchain_tokencal._usage`: junk never raises, records hold."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage

from langchain_tokencal import TokenUsage, explain_usage, parse_usage
from langchain_tokencal._usage import USAGE_CONTAINERS
from tests.unit_tests.conftest import DATA_DIR

FLAGS = frozenset(
    {"llm_cache_hit", "server_tool_input", "cumulative_stream", "count_only"}
)

# Key names the parsers look for, so random dicts reach every branch.
KNOWN_KEYS = (
    *USAGE_CONTAINERS,
    "type",
    "object",
    "model",
    "model_name",
    "model_provider",
    "done",
    "created_at",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "audio_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "queue_time",
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
    "input_token_details",
    "output_token_details",
    "cache_read",
    "cache_creation",
    "reasoning",
    "audio",
    "total_cost",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "server_tool_use",
    "web_search_requests",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
    "promptTokensDetails",
    "modality",
    "tokenCount",
    "prompt_token_count",
    "candidates_token_count",
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "cacheReadInputTokenCount",
    "prompt_eval_count",
    "eval_count",
    "tokens",
    "billed_units",
)
TYPES = ("message", "message_start", "message_delta", "response.completed", "response")

edge_numbers = st.sampled_from(
    [0, 1, -1, 10**9, 10**9 + 1, 2**63, 10**30, 12.0, 12.5, -0.0, math.nan, math.inf]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=0, max_value=5000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | edge_numbers
    | st.text(max_size=6)
    | st.sampled_from(TYPES)
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=6)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=30,
)


def assert_invariants(usage: TokenUsage) -> None:
    """What every record promises, whatever the payload was."""
    counts = [f.name for f in dataclasses.fields(usage) if f.type == "int"]
    assert len(counts) == 6
    for name in counts:
        value = getattr(usage, name)
        assert type(value) is int, name
        assert value >= 0, name
    assert usage.cache_read + usage.cache_creation <= usage.input_tokens
    assert usage.reasoning <= usage.output_tokens
    assert usage.total_tokens >= usage.input_tokens + usage.output_tokens
    assert usage.input_tokens + usage.output_tokens > 0
    assert isinstance(usage.extras, MappingProxyType)
    assert all(type(v) is int and v > 0 for v in usage.extras.values())
    assert usage.flags <= FLAGS
    assert all(isinstance(k, str) for k in usage.raw_keys)
    assert usage.provider is None or isinstance(usage.provider, str)
    assert usage.model is None or isinstance(usage.model, str)


def assert_well_behaved(payload: Any) -> None:
    """parse_usage and explain_usage agree, never raise, never hit a bug."""
    usage = parse_usage(payload)
    explanation = explain_usage(payload)
    # "could not be read" is the safety net for foreign objects; on plain
    # JSON it would mean a bug in the parser itself.
    assert "could not be read" not in explanation
    if usage is None:
        assert explanation.startswith(("no usage: ", "rejected: "))
    else:
        assert explanation.startswith("ok: ")
        assert_invariants(usage)


def load_valid_payloads() -> list[Any]:
    """The recorded payloads that parse to a record."""
    payloads = []
    for path in sorted((DATA_DIR / "usage").glob("*.json")):
        cases = json.loads(path.read_text(encoding="utf-8"))["cases"]
        payloads.extend(c["payload"] for c in cases if c["expected"] is not None)
    return payloads


VALID = load_valid_payloads()


def slots_of(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) position inside a JSON value."""
    found: list[tuple[Any, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for key, value in current.items():
                found.append((current, key))
                stack.append(value)
        elif isinstance(current, list):
            for index, value in enumerate(current):
                found.append((current, index))
                stack.append(value)
    return found


@st.composite
def mutated_payloads(draw: st.DrawFn) -> Any:
    """A recorded valid payload with 1-4 values replaced, deleted or inserted."""
    payload = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = slots_of(payload)
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        operation = draw(st.sampled_from(("replace", "replace", "delete", "insert")))
        if operation == "replace":
            parent[key] = draw(json_values)
        elif operation == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(json_values)
        else:
            parent.insert(key, draw(json_values))
    return payload


def to_objects(value: Any) -> Any:
    """JSON with every dict turned into an attribute object, like an SDK's."""
    if isinstance(value, dict):
        return types.SimpleNamespace(
            **{k: to_objects(v) for k, v in value.items() if k.isidentifier()}
        )
    if isinstance(value, list):
        return [to_objects(v) for v in value]
    return value


class TestArbitraryJson:
    """Arbitrary JSON, with the parsers' own key names mixed in."""

    @settings(max_examples=1000, deadline=None)
    @given(json_values)
    def test_never_raises_and_records_hold(self, payload: Any) -> None:
        """Any JSON value parses to a sound record or to None with a reason."""
        assert_well_behaved(payload)

    @settings(max_examples=200, deadline=None)
    @given(json_values)
    def test_attribute_objects_never_raise(self, payload: Any) -> None:
        """The same junk as attribute objects is handled the same way."""
        assert_well_behaved(to_objects(payload))


class TestMutatedPayloads:
    """Recorded valid payloads with random values replaced, deleted or inserted."""

    @settings(
        max_examples=1000,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(mutated_payloads())
    def test_never_raises_and_records_hold(self, payload: Any) -> None:
        """A damaged payload parses to a sound record or to None with a reason."""
        assert_well_behaved(payload)

    @settings(max_examples=100, deadline=None)
    @given(st.sampled_from(VALID))
    def test_valid_payloads_parse(self, payload: Any) -> None:
        """Every recorded valid payload gives a sound record."""
        usage = parse_usage(payload)
        assert usage is not None
        assert_invariants(usage)


PERTURBATIONS = (
    "none",
    "total_below",
    "total_above",
    "read_above",
    "write_above",
    "reasoning_above",
    "negative_detail",
    "negative_input",
    "huge_input",
    "zero_zero",
    "audio",
    "service_tier",
    "cache_hit",
    "float_total",
)


@st.composite
def usage_metadata_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A sound LangChain usage_metadata dict, then at most one perturbation.

    The sound base uses every detail spelling the fast path knows (including
    langchain-anthropic's ephemeral keys, zeroed or duplicated); the
    perturbation lands right on a consistency boundary.
    """
    inp = draw(st.integers(min_value=0, max_value=200))
    out = draw(st.integers(min_value=0, max_value=200))
    read = draw(st.integers(min_value=0, max_value=inp))
    write = draw(st.integers(min_value=0, max_value=inp - read))
    reasoning = draw(st.integers(min_value=0, max_value=out))
    five = draw(st.integers(min_value=0, max_value=write))
    spelling = draw(st.sampled_from(("plain", "ephemeral_zeroed", "ephemeral_dup")))
    inputs: dict[str, Any] = {"cache_read": read, "cache_creation": write}
    if spelling != "plain":
        inputs["ephemeral_5m_input_tokens"] = five
        inputs["ephemeral_1h_input_tokens"] = write - five
        if spelling == "ephemeral_zeroed":
            inputs["cache_creation"] = 0
    meta: dict[str, Any] = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "input_token_details": inputs,
        "output_token_details": {"reasoning": reasoning},
    }
    step = draw(st.integers(min_value=1, max_value=3))
    change = draw(st.sampled_from(PERTURBATIONS))
    if change == "total_below":
        meta["total_tokens"] -= step
    elif change == "total_above":
        meta["total_tokens"] += step
    elif change == "read_above":
        inputs["cache_read"] = inp - write + step
    elif change == "write_above":
        key = draw(st.sampled_from(sorted(inputs)))
        inputs[key] += inp + step
    elif change == "reasoning_above":
        meta["output_token_details"]["reasoning"] = out + step
    elif change == "negative_detail":
        inputs[draw(st.sampled_from(sorted(inputs)))] = -step
    elif change == "negative_input":
        meta["input_tokens"] = -step
    elif change == "huge_input":
        meta["input_tokens"] = 10**9 + step
        meta["total_tokens"] = 10**9 + step + out
    elif change == "zero_zero":
        meta.update(input_tokens=0, output_tokens=0, total_tokens=0)
        meta.pop("input_token_details")
        meta.pop("output_token_details")
    elif change == "audio":
        inputs["audio"] = draw(st.integers(min_value=0, max_value=inp + 1))
    elif change == "service_tier":
        inputs["priority_cache_read"] = inputs.pop("cache_read")
    elif change == "cache_hit":
        meta["total_cost"] = 0
    elif change == "float_total":
        meta["total_tokens"] = float(meta["total_tokens"])
    return meta


class TestFastPath:
    """An AIMessage (the callback hot path) parses as its serialized form does."""

    @settings(max_examples=500, deadline=None)
    @given(usage_metadata_dicts(), st.sampled_from([None, "openai", "anthropic"]))
    def test_message_agrees_with_its_dict(
        self, meta: dict[str, Any], provider: str | None
    ) -> None:
        """parse_usage(message) equals parse_usage of the same message as a dict."""
        message = AIMessage(
            "hi",
            usage_metadata=meta,
            response_metadata={"model_name": "m", "model_provider": "google_genai"},
        )
        serialized = {
            "usage_metadata": message.usage_metadata,
            "response_metadata": message.response_metadata,
        }
        usage = parse_usage(message, provider)
        expected = parse_usage(serialized, provider)
        assert usage == expected
        if usage is not None and expected is not None:
            assert usage.extras == expected.extras
            assert_invariants(usage)
