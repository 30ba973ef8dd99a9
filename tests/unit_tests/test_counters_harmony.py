"""Exact counts for gpt-oss in the harmony format.

The truth is OpenAI's own renderer, ``openai-harmony``, fed by the test
directly (its system, developer, user, assistant and tool messages built here,
not through the package), with the ``o200k_base`` file from the offline
tiktoken cache as its vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

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
from langchain_tokencal._counting.harmony import (
    HarmonyCounter,
    harmony_pieces,
    is_gpt_oss,
)

if TYPE_CHECKING:
    from pathlib import Path

harmony = pytest.importorskip("openai_harmony")

_O200K = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            },
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.\nReturns the top results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "filters": {
                    "type": "object",
                    "properties": {"safe": {"type": "boolean"}},
                    "required": ["safe"],
                },
            },
            "required": ["query"],
        },
    },
}
NOW = {"type": "function", "function": {"name": "now", "description": "The time."}}

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
        _t("assistant", "", ("get_weather", {"city": "Paris"}, "call_1")),
        _t("tool", '{"temp": 21, "sky": "clear"}', ("get_weather", {}, "call_1")),
    ],
    [
        _t("system", "Use tools when needed."),
        _t("user", "Weather in 北京 and Rome?"),
        _t(
            "assistant",
            "",
            ("get_weather", {"city": "北京"}, "a"),
            ("get_weather", {"city": "Rome"}, "b"),
        ),
        _t("tool", "晴, 25°C", ("get_weather", {}, "a")),
        _t("tool", "rain, 12C", ("get_weather", {}, "b")),
        _t("assistant", "Beijing is sunny, Rome rainy."),
        _t("user", "Thanks"),
    ],
    [_t("user", "Literal <|start|> and <|end|> text")],
    [_t("user", '{"json": [1, 2, 3], "nested": {"a": null}}')],
    [_t("user", "emoji 🎉🚀 and accents: café naïve")],
    [_t("user", "a" * 500)],
    [
        _t("system", "Reply in JSON."),
        _t("user", "List three colors."),
        _t("assistant", '{"colors": ["red", "green", "blue"]}'),
        _t("user", "And three animals in 中文."),
    ],
    [
        _t("user", "multi turn"),
        _t("assistant", "one"),
        _t("user", "two"),
        _t("assistant", "three"),
        _t("user", "four"),
    ],
    [_t("user", "Русский текст и 日本語のテキスト")],
    [
        _t("system", "You search."),
        _t("user", "Find rust async books"),
        _t("assistant", "Let me look.", ("search", {"query": "rust async"}, "s1")),
        _t("tool", "1. Async Rust\n2. Tokio book", ("search", {}, "s1")),
        _t("user", "And Python?"),
    ],
    [_t("user", "SELECT * FROM users WHERE id = 1;\n-- sql")],
    [_t("user", "line1\n\n\nline4\ttab")],
    [_t("user", "1234567890 3.14159 -42 1e10")],
]
MODELS = ["gpt-oss-20b", "openai/gpt-oss-120b", "gpt-oss:20b"]


@pytest.fixture(scope="module")
def encoding(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """openai-harmony's gpt-oss encoding, its vocabulary read from a local folder."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    source = (
        None
        if not cache
        else os.path.join(cache, hashlib.sha1(_O200K.encode()).hexdigest())  # noqa: PTH118, S324
    )
    if source is None or not os.path.isfile(source):  # noqa: PTH113
        pytest.skip("no o200k_base file in the tiktoken cache")
    folder: Path = tmp_path_factory.mktemp("encodings")
    shutil.copy(source, folder / "o200k_base.tiktoken")
    previous = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(folder)
    try:
        return harmony.load_harmony_encoding(
            harmony.HarmonyEncodingName.HARMONY_GPT_OSS
        )
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_ENCODINGS_BASE"]
        else:
            os.environ["TIKTOKEN_ENCODINGS_BASE"] = previous


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
                    tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls],
                )
            )
        else:
            out.append(ToolMessage(content, tool_call_id=calls[0][2]))
    return out


def _truth(
    encoding: Any, conversation: list[Turn], tools: list[dict[str, Any]] | None
) -> int:
    """openai-harmony's rendering for completion, built from the turns."""
    h = harmony
    today = datetime.now(tz=timezone.utc).strftime("%Y-%m-%d")
    messages = [
        h.Message.from_role_and_content(
            h.Role.SYSTEM, h.SystemContent.new().with_conversation_start_date(today)
        )
    ]
    instructions = [c for r, c, _ in conversation if r == "system"]
    if instructions or tools:
        developer = h.DeveloperContent.new()
        if instructions:
            developer = developer.with_instructions("\n\n".join(instructions))
        if tools:
            developer = developer.with_function_tools(
                [
                    h.ToolDescription.new(
                        t["function"]["name"],
                        t["function"].get("description", ""),
                        parameters=t["function"].get("parameters"),
                    )
                    for t in tools
                ]
            )
        messages.append(h.Message.from_role_and_content(h.Role.DEVELOPER, developer))
    for role, content, calls in conversation:
        if role == "user":
            messages.append(h.Message.from_role_and_content(h.Role.USER, content))
        elif role == "assistant":
            if content:
                messages.append(
                    h.Message.from_role_and_content(
                        h.Role.ASSISTANT, content
                    ).with_channel("final")
                )
            messages.extend(
                h.Message.from_role_and_content(
                    h.Role.ASSISTANT, json.dumps(args, ensure_ascii=False)
                )
                .with_channel("commentary")
                .with_recipient(f"functions.{name}")
                .with_content_type("<|constrain|>json")
                for name, args, _ in calls
            )
        elif role == "tool":
            author = h.Author.new(h.Role.TOOL, f"functions.{calls[0][0]}")
            messages.append(
                h.Message.from_author_and_content(author, content)
                .with_channel("commentary")
                .with_recipient("assistant")
            )
    conversation_ = h.Conversation.from_messages(messages)
    return len(
        encoding.render_conversation_for_completion(conversation_, h.Role.ASSISTANT)
    )


class TestHarmony:
    """gpt-oss counts equal openai-harmony's rendering."""

    @pytest.mark.parametrize(
        ("model", "expected"),
        [
            ("gpt-oss-20b", True),
            ("openai/gpt-oss-120b", True),
            ("gpt-oss:20b", True),
            ("gpt-4o", False),
        ],
    )
    def test_names(self, model: str, expected: bool) -> None:
        """gpt-oss however it is served."""
        assert is_gpt_oss(model) is expected

    def test_counter_is_exact(self) -> None:
        """The harmony counter, marked exact, whatever the provider."""
        for provider in (None, "openai", "ollama"):
            counter = local_counter("gpt-oss-20b", provider)
            assert isinstance(counter, HarmonyCounter)
            assert (counter.info.kind, counter.info.encoding) == (
                "exact",
                "o200k_harmony",
            )
        assert local_counter("gpt-oss-20b", own_tokenizers=False).info.kind == (
            "approximate"
        )

    @pytest.mark.parametrize(
        "index",
        range(len(CONVERSATIONS)),
        ids=[str(i) for i in range(len(CONVERSATIONS))],
    )
    def test_without_tools(self, encoding: Any, index: int) -> None:
        """A fresh handler's count equals the harmony rendering exactly."""
        conversation = CONVERSATIONS[index]
        expected = _truth(encoding, conversation, None)
        for model in MODELS:
            handler = TokenCalibrationHandler()
            got = handler.count_messages(_langchain(conversation), model=model)
            assert got == expected, model

    @pytest.mark.parametrize("index", [0, 1, 5, 7, 8, 16])
    def test_with_tools(self, encoding: Any, index: int) -> None:
        """Tools in the developer message's TypeScript namespace, exactly."""
        conversation = CONVERSATIONS[index]
        tools = [WEATHER, SEARCH, NOW]
        expected = _truth(encoding, conversation, tools)
        handler = TokenCalibrationHandler()
        got = handler.count_messages(
            _langchain(conversation), model="gpt-oss-20b", tools=tools
        )
        assert got == expected

    def test_pieces_memo(self) -> None:
        """Memoized pieces count the same as tokenizing each piece afresh."""
        counter = local_counter("gpt-oss-20b")
        assert isinstance(counter, HarmonyCounter)
        for conversation in CONVERSATIONS:
            pieces = harmony_pieces(_langchain(conversation), [WEATHER])
            first = counter.count_pieces(pieces)
            assert counter.count_pieces(pieces) == first
            fresh = sum(
                1 if isinstance(p, int) else counter._count_text(p) for p in pieces
            )
            assert fresh == first
