"""Exact counts for Mistral models with mistral-common's request encoder.

Each conversation is written once as plain data and built twice: as LangChain
messages for the package, and as mistral-common request messages directly (the
independent truth, never through the package's converter).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting import local_counter
from langchain_tokencal._counting.mistral import MistralCounter, mistral_variant

pytest.importorskip("mistral_common")
pytest.importorskip("sentencepiece")

from mistral_common.protocol.instruct import messages as mm
from mistral_common.protocol.instruct.request import (
    ChatCompletionRequest,
)
from mistral_common.protocol.instruct.tool_calls import (
    Function,
    FunctionCall,
    Tool,
    ToolCall,
)
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web; returns the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to search for"},
                "limit": {"type": "integer", "minimum": 1},
            },
            "required": ["query"],
        },
    },
}

# (role, content, calls) with calls as (name, args, id); a tool turn's calls
# hold its answered id.
Turn = tuple[str, str, tuple[tuple[str, dict[str, Any], str], ...]]


def _t(role: str, content: str, *calls: tuple[str, dict[str, Any], str]) -> Turn:
    return (role, content, calls)


CONVERSATIONS: list[list[Turn]] = [
    [_t("user", "Hello")],
    [_t("system", "Be brief."), _t("user", "What is 2 + 2?")],
    [_t("user", "你好，今天天气怎么样？")],  # noqa: RUF001 - Chinese punctuation
    [_t("system", "你是一个乐于助人的助手。"), _t("user", "写一首关于春天的诗")],
    [_t("user", "Fix:\n```python\ndef f(x):\n    return x+1\n```")],
    [_t("system", "One."), _t("system", "Two."), _t("user", "Three?")],
    [_t("user", "hi"), _t("assistant", "Hello! How can I help?"), _t("user", "bye")],
    [
        _t("user", "Weather in Paris?"),
        _t("assistant", "", ("get_weather", {"city": "Paris"}, "abc123XYZ")),
        _t("tool", '{"temp": 21, "sky": "clear"}', ("", {}, "abc123XYZ")),
    ],
    [
        _t("system", "Use tools when needed."),
        _t("user", "Weather in 北京 and Rome?"),
        _t(
            "assistant",
            "",
            ("get_weather", {"city": "北京"}, "A00000001"),
            ("get_weather", {"city": "Rome"}, "B00000002"),
        ),
        _t("tool", "晴, 25°C", ("", {}, "A00000001")),
        _t("tool", "rain, 12C", ("", {}, "B00000002")),
        _t("assistant", "Beijing is sunny, Rome rainy."),
        _t("user", "Thanks"),
    ],
    [_t("user", "  leading and trailing spaces  ")],
    [_t("user", "Literal control text [INST] and </s> inside")],
    [_t("user", '{"json": [1, 2, 3], "nested": {"a": null}}')],
    [_t("user", "emoji 🎉🚀 and accents: café naïve")],
    [_t("user", "a" * 500)],
    [_t("user", "SELECT * FROM users WHERE id = 1;\n-- sql")],
    [
        _t("system", "Reply in JSON."),
        _t("user", "List three colors."),
        _t("assistant", '{"colors": ["red", "green", "blue"]}'),
        _t("user", "And three animals in 中文."),
    ],
    [_t("user", "line1\n\n\nline4\ttab")],
    [_t("user", "1234567890 3.14159 -42 1e10")],
    [
        _t("user", "multi turn"),
        _t("assistant", "one"),
        _t("user", "two"),
        _t("assistant", "three"),
        _t("user", "four"),
    ],
    [_t("user", "Русский текст и 日本語のテキスト")],
    [_t("user", "<html><body><p>Hi</p></body></html>")],
    [
        _t("system", "You search."),
        _t("user", "Find rust async books"),
        _t(
            "assistant",
            "",
            ("search", {"query": "rust async", "limit": 3}, "s1s1s1s1s"),
        ),
        _t(
            "tool",
            "1. Async Rust\n2. Tokio book\n3. Rust in Action",
            ("", {}, "s1s1s1s1s"),
        ),
        _t("user", "And Python?"),
    ],
]
MODELS = [
    "mistral-large-latest",  # v7 SentencePiece
    "open-mistral-nemo",  # v3 Tekken
    "codestral-2405",  # v3 SentencePiece
]
TOOLED = [i for i, c in enumerate(CONVERSATIONS) if any(t[2] for t in c)]


def _langchain(conversation: list[Turn]) -> list[BaseMessage]:
    """The conversation as LangChain messages."""
    out: list[BaseMessage] = []
    for role, content, calls in conversation:
        if role == "system":
            out.append(SystemMessage(content))
        elif role == "user":
            out.append(HumanMessage(content))
        elif role == "assistant":
            out.append(
                AIMessage(
                    content,
                    tool_calls=[
                        {"name": name, "args": args, "id": cid}
                        for name, args, cid in calls
                    ],
                )
            )
        else:
            out.append(ToolMessage(content, tool_call_id=calls[0][2]))
    return out


def _truth_count(
    tokenizer: Any, conversation: list[Turn], tools: list[dict[str, Any]] | None
) -> int:
    """mistral-common directly: the request built by hand and encoded."""
    messages: list[Any] = []
    for role, content, calls in conversation:
        if role == "system":
            messages.append(mm.SystemMessage(content=content))
        elif role == "user":
            messages.append(mm.UserMessage(content=content))
        elif role == "assistant":
            messages.append(
                mm.AssistantMessage(
                    content=content or None,
                    tool_calls=[
                        ToolCall(
                            id=cid,
                            function=FunctionCall(
                                name=name,
                                arguments=json.dumps(args, ensure_ascii=False),
                            ),
                        )
                        for name, args, cid in calls
                    ]
                    or None,
                )
            )
        else:
            messages.append(mm.ToolMessage(content=content, tool_call_id=calls[0][2]))
    specs = [Tool(function=Function(**tool["function"])) for tool in tools or ()]
    request = ChatCompletionRequest(messages=messages, tools=specs or None)
    return len(tokenizer.encode_chat_completion(request).tokens)


_TOKENIZERS = {
    "mistral-large-latest": MistralTokenizer.v7,
    "open-mistral-nemo": lambda: MistralTokenizer.v3(is_tekken=True),
    "codestral-2405": MistralTokenizer.v3,
}


@pytest.fixture(scope="module")
def truth() -> dict[str, Any]:
    """The official tokenizer of each tested model, loaded once."""
    return {model: make() for model, make in _TOKENIZERS.items()}


class TestFamilies:
    """Model names pick the tokenizer mistral-common uses for their family."""

    @pytest.mark.parametrize(
        ("model", "variant"),
        [
            ("mistral-large-2411", "v7"),
            ("mistral-large-latest", "v7"),
            ("mistral-large-2407", "v3"),
            ("mistral-small-2402", "v2"),
            ("mistral-small-2409", "v3-tekken"),
            ("mistral-small-latest", "v3-tekken"),
            ("mistral-medium-2312", "v1"),
            ("open-mistral-nemo", "v3-tekken"),
            ("open-mixtral-8x22b", "v3"),
            ("open-mixtral-8x7b", "v2"),
            ("codestral-2405", "v3"),
            ("codestral-latest", "v3-tekken"),
            ("ministral-8b-latest", "v3-tekken"),
            ("pixtral-12b-2409", "v3-tekken-mm"),
            ("pixtral-large-latest", "v7-mm"),
            ("magistral-medium-latest", "v3-tekken"),
            ("devstral-small-2505", "v3-tekken"),
            ("mistralai/Mistral-Large-2411", "v7"),
            ("ministral:8b", "v3-tekken"),
            ("gpt-4o", None),
            ("meta-llama/Llama-3.1-8B-Instruct", None),
        ],
    )
    def test_variant(self, model: str, variant: str | None) -> None:
        """The family table, dated names first."""
        assert mistral_variant(model) == variant

    def test_counter_is_exact(self) -> None:
        """A Mistral name gets the mistral-common counter, marked exact."""
        counter = local_counter("mistral-large-latest")
        assert isinstance(counter, MistralCounter)
        info = counter.info
        assert (info.kind, info.fallback, info.tokenizer) == (
            "exact",
            False,
            "mistral-common:v7",
        )

    def test_switch_off(self) -> None:
        """own_tokenizers=False counts a Mistral name as before."""
        counter = local_counter("mistral-large-latest", own_tokenizers=False)
        assert counter.info.kind == "approximate"


class TestExact:
    """Counts equal encode_chat_completion."""

    @pytest.mark.parametrize("model", MODELS)
    @pytest.mark.parametrize(
        "index",
        range(len(CONVERSATIONS)),
        ids=[str(i) for i in range(len(CONVERSATIONS))],
    )
    def test_fresh_handler_without_tools(
        self, truth: dict[str, Any], model: str, index: int
    ) -> None:
        """count_messages on a fresh handler equals the official encoding."""
        conversation = CONVERSATIONS[index]
        handler = TokenCalibrationHandler()
        expected = _truth_count(truth[model], conversation, None)
        assert handler.count_messages(_langchain(conversation), model=model) == expected

    @pytest.mark.parametrize("model", MODELS)
    @pytest.mark.parametrize("index", [0, 1, 5, *TOOLED])
    def test_with_tools(self, truth: dict[str, Any], model: str, index: int) -> None:
        """With tools bound the count is within 1% of the official encoding."""
        conversation = CONVERSATIONS[index]
        handler = TokenCalibrationHandler()
        tools = [WEATHER, SEARCH]
        expected = _truth_count(truth[model], conversation, tools)
        got = handler.count_messages(_langchain(conversation), model=model, tools=tools)
        assert abs(got - expected) <= 0.01 * expected

    def test_langchain_tool_ids(self, truth: dict[str, Any]) -> None:
        """OpenAI-style call ids, re-derived as langchain-mistralai sends them."""
        chat_models = pytest.importorskip("langchain_mistralai.chat_models")
        messages = [
            SystemMessage("Use tools."),
            HumanMessage("Weather in Oslo?"),
            AIMessage(
                "",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_Xy12"}
                ],
            ),
            ToolMessage("snow, -3C", tool_call_id="call_Xy12"),
        ]
        sent = [
            chat_models._convert_message_to_mistral_chat_message(m) for m in messages
        ]
        request = ChatCompletionRequest.model_validate(
            {"messages": sent, "tools": [WEATHER]}
        )
        expected = len(
            truth["mistral-large-latest"].encode_chat_completion(request).tokens
        )
        got = local_counter("mistral-large-latest")(messages, [WEATHER])
        assert abs(got - expected) <= 0.01 * expected

    def test_refused_request_counts_by_message(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A request mistral-common refuses is still counted, said once."""
        counter = local_counter("mistral-large-latest")
        odd = [
            HumanMessage("hi"),
            AIMessage("hello"),
            SystemMessage("late system prompt"),
            HumanMessage("again"),
        ]
        with caplog.at_level(logging.INFO):
            first = counter(odd)
            counter([*odd, AIMessage("x"), SystemMessage("y"), HumanMessage("z")])
        assert first > 0
        refused = [r for r in caplog.records if "refuses" in r.getMessage()]
        assert len(refused) == 1
        assert "late system prompt" not in caplog.text  # no prompt text logged

    def test_v1_tool_calls(self) -> None:
        """A tokenizer without tool support still counts tool calls, as text."""
        counter = local_counter("mistral-medium-2312")
        turns = [_t("user", "Weather?"), *CONVERSATIONS[7][1:]]
        plain = counter(_langchain([turns[0]]))
        assert counter(_langchain(turns)) > plain + 10


class TestIdMemo:
    """The vocabulary's id memo changes speed, never a count."""

    @pytest.mark.parametrize("model", MODELS)
    def test_growing_chat_through_one_handler(
        self, truth: dict[str, Any], model: str
    ) -> None:
        """Each call of a growing chat, counted warm, equals the encoder.

        A call's prompt ends with a user or tool turn (the encoder refuses
        others), so those are the prefixes counted.
        """
        handler = TokenCalibrationHandler()
        for conversation in CONVERSATIONS:
            for end in range(1, len(conversation) + 1):
                prefix = conversation[:end]
                if prefix[-1][0] not in {"user", "tool"}:
                    continue
                expected = _truth_count(truth[model], prefix, None)
                got = handler.count_messages(_langchain(prefix), model=model)
                assert got == expected, (model, end)

    def test_fresh_lists_and_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Callers may append to what encode returns; old texts are dropped."""
        from langchain_tokencal._counting import mistral  # noqa: PLC0415

        raw = MistralTokenizer.v7().instruct_tokenizer.tokenizer
        memo = mistral._IdMemo(raw)
        first = memo.encode("hello world", bos=False, eos=False)
        first.append(-1)
        assert memo.encode("hello world", bos=False, eos=False) == raw.encode(
            "hello world", bos=False, eos=False
        )
        assert memo.encode("hi", bos=True, eos=False) == raw.encode(
            "hi", bos=True, eos=False
        )
        assert memo.eos_id == raw.eos_id
        monkeypatch.setattr(mistral, "_MEMO_TOKENS", 10)
        for word in ("alpha beta gamma", "delta epsilon zeta", "eta theta iota"):
            memo.encode(word * 3, bos=False, eos=False)
        assert memo._size <= 10
        assert "hello world" not in memo._ids
