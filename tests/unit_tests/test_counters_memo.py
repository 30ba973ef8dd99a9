"""Tests for the per-message memo behind the local counters: keys, records, digests."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)

from langchain_tokencal import OpenAICounter, local_counter
from langchain_tokencal._counting import local as counter_module
from langchain_tokencal._counting import token_counts
from langchain_tokencal._counting.digests import memo_key, memo_lookup, message_digest
from langchain_tokencal._counting.parts import message_parts, plain_parts

CALL = {"name": "f", "args": {"q": "x", "n": 3}, "id": "c1"}
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
RAW_CALL = {
    "id": "r1",
    "type": "function",
    "function": {"name": "h", "arguments": '{"a": 1}'},
}


def shapes(text: str) -> list[BaseMessage]:
    """The same text in every message shape the memo keys differently."""
    return [
        HumanMessage(text),
        HumanMessage(text, name="al"),
        HumanMessage(text, additional_kwargs={"name": "bo"}),
        HumanMessage(text, additional_kwargs={"unrelated": 1}),
        HumanMessage([{"type": "text", "text": text}]),
        SystemMessage(text),
        SystemMessage(text, additional_kwargs={"__openai_role__": "developer"}),
        AIMessage(text),
        AIMessage(text, additional_kwargs={"refusal": None}),
        AIMessage(text, tool_calls=[CALL]),
        AIMessage(text, tool_calls=[{**CALL, "args": {"q": "x", "n": 3.0}}]),
        AIMessage(text, tool_calls=[{**CALL, "args": {"n": 3, "q": "x"}}]),
        AIMessage(text, tool_calls=[{**CALL, "args": {"q": ["x"], "n": True}}]),
        AIMessage(
            text,
            invalid_tool_calls=[
                {"name": "g", "args": "{", "id": "2", "error": None, "type": "x"}
            ],
        ),
        AIMessage(text, additional_kwargs={"tool_calls": [RAW_CALL]}),
        AIMessage(
            text, additional_kwargs={"function_call": {"name": "h", "arguments": ""}}
        ),
        AIMessageChunk(content=text),
        ToolMessage(text, tool_call_id="c1"),
        ToolMessage(text, tool_call_id="c2"),
        ChatMessage(text, role="critic"),
        FunctionMessage(text, name="fn"),
    ]


IRRELEVANT = {"unrelated": 1, "refusal": None}


def key_of(message: BaseMessage) -> int:
    """The key memo_lookup computes for one message."""
    looked = memo_lookup([message], lambda _: None)
    assert looked is not None
    return looked[0][0]


class TestMemoKeys:
    """Keys are cheap, consistent, and tell apart what counts differently."""

    @pytest.mark.parametrize("text", ["hi", "", "你好 123"])
    def test_lookup_keys_equal_memo_key(self, text):
        """The inlined keys of memo_lookup are memo_key's, for every shape."""
        for message in shapes(text):
            assert key_of(message) == memo_key(message), message

    def test_shapes_have_distinct_keys(self):
        """Every shape that counts differently has its own key."""
        counted = [
            m
            for m in shapes("hi")
            if not IRRELEVANT.keys() & m.additional_kwargs.keys()
        ]
        keys = [memo_key(m) for m in counted]
        assert len(set(keys)) == len(keys) == len(shapes("hi")) - 2

    def test_irrelevant_extras_share_the_key(self):
        """additional_kwargs a count does not read do not change the key."""
        for key, value in IRRELEVANT.items():
            assert memo_key(AIMessage("hi", additional_kwargs={key: value})) == (
                memo_key(AIMessage("hi"))
            )

    def test_equal_messages_share_a_key(self):
        """Copies with another id share a key."""
        for a, b in zip(shapes("hi"), shapes("hi"), strict=True):
            b.id = "another-id"
            assert memo_key(a) == memo_key(b)

    @pytest.mark.parametrize(
        "args",
        [
            pytest.param({"n": 1.0}, id="float"),
            pytest.param({"n": True}, id="bool"),
            pytest.param({"n": "1"}, id="string"),
            pytest.param({"n": [1]}, id="list"),
        ],
    )
    def test_argument_types_matter(self, args):
        """1, 1.0, True and "1" serialize differently, so they key differently."""
        base = AIMessage("", tool_calls=[{"name": "f", "args": {"n": 1}, "id": "1"}])
        other = AIMessage("", tool_calls=[{"name": "f", "args": args, "id": "1"}])
        assert memo_key(base) != memo_key(other)

    def test_non_messages_are_reported(self):
        """A list holding a non-message makes memo_lookup return None."""
        assert memo_lookup([HumanMessage("a"), ("user", "b")], lambda _: None) is None

    def test_lookup_returns_what_get_returns(self):
        """Each key is looked up with the given function, in order."""
        messages = [HumanMessage("a"), AIMessage("b")]
        looked = memo_lookup(messages, lambda key: key % 7)
        assert looked is not None
        keys, found = looked
        assert found == [key % 7 for key in keys]


class TestPlainParts:
    """The fast path for simple messages agrees with the general parser."""

    @pytest.mark.parametrize("text", ["hi", "", "héllo 你好"])
    def test_agrees_with_message_parts(self, text):
        """Where plain_parts answers, it says what message_parts says."""
        answered = 0
        for message in shapes(text):
            plain = plain_parts(message)
            if plain is None:
                continue
            answered += 1
            parts = message_parts(message)
            role, name, tool_call_id, content = plain
            assert (role, name, tool_call_id) == (
                parts.role,
                parts.name,
                parts.tool_call_id,
            )
            assert [content] == [t for t in parts.texts if t] or not content
            assert not parts.tool_calls
            assert not parts.images
        assert answered >= 8

    def test_declines_what_it_cannot_read(self):
        """Tool calls, block content, extras and dynamic roles take the general path."""
        declined = [
            AIMessage("x", tool_calls=[CALL]),
            HumanMessage([{"type": "text", "text": "x"}]),
            HumanMessage("x", additional_kwargs={"name": "bo"}),
            ChatMessage("x", role="critic"),
        ]
        assert [plain_parts(m) for m in declined] == [None] * 4


class TestDigests:
    """Digests are stable values: they key knowledge that is persisted."""

    PINNED = (
        (HumanMessage("héllo 你好", name="ann"), 10078283321295648740),
        (
            AIMessage("", tool_calls=[{**CALL, "args": {"b": 1, "a": [2]}}]),
            2687782881869525886,
        ),
        (ToolMessage("42", tool_call_id="c1"), 9314158708437430709),
        (SystemMessage("Be brief."), 12776886404903727634),
        (
            HumanMessage(
                [
                    {"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ]
            ),
            4481174492580535079,
        ),
    )

    @pytest.mark.parametrize(("message", "digest"), PINNED)
    def test_pinned_values(self, message, digest):
        """The digest of a message does not change between releases."""
        (features,) = local_counter("gpt-4o").message_features([message])
        assert features.digest == digest

    def test_fast_path_equals_general_path(self):
        """A plain message digests the same through either path."""
        counter = local_counter("gpt-4o")
        for message in shapes("some text"):
            (features,) = counter.message_features([message])
            assert features.digest == message_digest(message, message_parts(message))


class TokenizerSpy:
    """Counts tiktoken calls, and the threads that made them."""

    def __init__(self) -> None:
        """Start with no calls."""
        self.calls = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def record(self) -> None:
        """Count one call from the current thread."""
        with self.lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)


def spy_tokenizer(monkeypatch: pytest.MonkeyPatch) -> TokenizerSpy:
    """Spy on every ``tiktoken.Encoding.encode_ordinary`` call from here on."""
    spy = TokenizerSpy()
    encode = tiktoken.Encoding.encode_ordinary

    def spied(self: tiktoken.Encoding, text: str) -> list[int]:
        spy.record()
        return encode(self, text)

    monkeypatch.setattr(tiktoken.Encoding, "encode_ordinary", spied)
    return spy


def warm_counter() -> OpenAICounter:
    """A gpt-4o counter that has tokenized its role names (once per counter)."""
    counter = OpenAICounter("gpt-4o")
    counter([HumanMessage("warm"), AIMessage("up")])
    return counter


def history(n: int) -> list[BaseMessage]:
    """``n`` distinct messages of a few hundred characters each."""
    return [
        (HumanMessage if i % 2 else AIMessage)(f"message {i}: " + "lorem ipsum " * 40)
        for i in range(n)
    ]


class TestParallelTokenization:
    """Many new messages are tokenized on two threads; results do not change."""

    def test_token_counts_match_one_thread(self):
        """token_counts gives each text's token count, in order."""
        encoding = tiktoken.get_encoding("o200k_base")
        texts = [m.content for m in history(50)]
        expected = [len(encoding.encode_ordinary(t)) for t in texts]
        assert token_counts(encoding, texts) == expected
        assert token_counts(encoding, []) == []

    def test_token_counts_raise_what_the_helper_raised(self):
        """An error in the helper thread reaches the caller."""

        class Broken:
            def encode_ordinary(self, text: str) -> list[int]:
                if text == "bad":
                    msg = "broken encoding"
                    raise RuntimeError(msg)
                return [0]

        with pytest.raises(RuntimeError, match="broken encoding"):
            token_counts(Broken(), ["bad", "fine", "fine"])  # type: ignore[arg-type]

    def test_large_batches_use_a_helper_thread(self, monkeypatch):
        """Above the threshold a second thread tokenizes, with the same features."""
        messages = history(40)
        sequential = OpenAICounter("gpt-4o").message_features(messages)
        monkeypatch.setattr(counter_module, "PARALLEL_CHARS", 1000)
        monkeypatch.setattr(counter_module, "CPUS", 2)
        counter = warm_counter()
        tokenizer = spy_tokenizer(monkeypatch)
        assert counter.message_features(messages) == sequential
        assert tokenizer.calls == len(messages)
        assert "tokencal-tokenize" in tokenizer.threads

    def test_one_cpu_stays_on_one_thread(self, monkeypatch):
        """With one CPU everything is tokenized by the caller."""
        monkeypatch.setattr(counter_module, "PARALLEL_CHARS", 1000)
        monkeypatch.setattr(counter_module, "CPUS", 1)
        counter = warm_counter()
        tokenizer = spy_tokenizer(monkeypatch)
        counter(history(40))
        assert tokenizer.threads == {threading.current_thread().name}


class TestSeenAndNew:
    """Seen messages are never tokenized again, whichever entry point."""

    def test_feature_batch_reuses_the_memo(self, monkeypatch):
        """feature_batch after message_features tokenizes nothing."""
        messages = history(10)
        counter = OpenAICounter("gpt-4o")
        counter.message_features(messages)
        tokenizer = spy_tokenizer(monkeypatch)
        batch = counter.feature_batch(list(reversed(messages)))
        assert tokenizer.calls == 0
        assert batch.digests[::-1] == counter.feature_batch(messages).digests

    def test_repeats_in_one_list_count_once(self, monkeypatch):
        """A message repeated in one list is tokenized once and counted twice."""
        counter = warm_counter()
        tokenizer = spy_tokenizer(monkeypatch)
        message = HumanMessage("twice")
        once = counter([message])
        assert counter([message, HumanMessage("twice")]) == 2 * once - counter.framing
        assert tokenizer.calls == 1

    def test_seen_messages_are_not_tokenized(self, monkeypatch):
        """Counting and trimming messages counted before never calls the tokenizer."""
        messages = history(8)
        counter = warm_counter()
        counter(messages)
        tokenizer = spy_tokenizer(monkeypatch)
        assert counter(list(reversed(messages))) > 0
        trim_messages(messages, max_tokens=40, token_counter=counter, strategy="last")
        assert tokenizer.calls == 0
        counter([HumanMessage("something new")])
        assert tokenizer.calls > 0

    def test_tool_features_memoized(self, monkeypatch):
        """A tool set seen before (an equal dict) is not tokenized again."""
        counter = warm_counter()
        first = counter.tool_features([TOOL])
        tokenizer = spy_tokenizer(monkeypatch)
        assert counter.tool_features([dict(TOOL)]) == first
        assert tokenizer.calls == 0

    @settings(max_examples=30, deadline=None)
    @given(
        texts=st.lists(st.text(max_size=40), min_size=1, max_size=6),
        order=st.randoms(use_true_random=False),
    )
    def test_counts_do_not_depend_on_the_memo(self, texts, order):
        """A warm counter counts any list exactly as a fresh one does."""
        messages: list[Any] = [HumanMessage(t) for t in texts]
        warm = OpenAICounter("gpt-4o")
        warm(messages)
        order.shuffle(messages)
        fresh = OpenAICounter("gpt-4o")
        assert warm.message_features(messages) == fresh.message_features(messages)
        assert warm(messages) == fresh(messages)
