"""A prompt counted by the user is recognised although LangChain rewrote it for the callbacks.

Before ``on_chat_model_start`` LangChain rewrites some content blocks (its
tracing format): the handler learns from that copy, the user counts the
original. Each form here, through a real ``BaseChatModel`` call, must then
count exactly.
"""

from __future__ import annotations

import base64

import pytest
from langchain_core.language_models.chat_models import _format_for_tracing
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting.digests import traced_content
from langchain_tokencal.testing import FakeUsageChatModel

_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()
BLOCKS = {
    "single key, no type": [
        {"type": "text", "text": "Use the cached manual."},
        {"cachePoint": {"type": "default"}},
    ],
    "image, base64 (v1)": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image", "base64": _PNG, "mime_type": "image/png"},
    ],
    "image, url (v1)": [
        {"type": "text", "text": "Describe it."},
        {"type": "image", "url": "https://example.com/a.png"},
    ],
    "image, base64 (v0)": [
        {"type": "text", "text": "And this one?"},
        {
            "type": "image",
            "source_type": "base64",
            "data": _PNG,
            "mime_type": "image/png",
        },
    ],
    "file, base64": [
        {"type": "text", "text": "Summarize the attachment."},
        {"type": "file", "base64": _PNG, "mime_type": "application/pdf"},
    ],
    "plain text blocks": [{"type": "text", "text": "Just text, in a block."}],
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_same_as_langchains_tracing_form(name: str) -> None:
    """traced_content equals what LangChain hands the callbacks, and is idempotent."""
    message = HumanMessage(BLOCKS[name])
    (traced,) = _format_for_tracing([message])
    assert traced_content(message.content) == traced.content
    assert traced_content(traced.content) == traced.content


@pytest.mark.parametrize("name", list(BLOCKS))
def test_counted_exactly_after_its_call(name: str) -> None:
    """The user's own list counts exactly once its call reported."""
    handler = TokenCalibrationHandler()
    handler.raise_error = True
    llm = FakeUsageChatModel(model="fake-claude", callbacks=[handler])
    prompt = [SystemMessage("You read documents."), HumanMessage(BLOCKS[name])]
    reply = llm.invoke(prompt)
    est = handler.estimate(prompt, model="fake-claude")
    assert (est.source, est.tokens) == ("exact", reply.usage_metadata["input_tokens"])


@pytest.mark.parametrize(
    "tool",
    [
        {"google_search": {}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "web_search"},
    ],
    ids=["gemini", "anthropic", "openai"],
)
def test_builtin_tools_are_counted(tool: dict) -> None:
    """A provider's built-in tool counts (its JSON) instead of raising."""
    handler = TokenCalibrationHandler()
    bare = handler.count_messages([HumanMessage("hi")], model="gpt-4o")
    assert (
        handler.count_messages([HumanMessage("hi")], model="gpt-4o", tools=[tool])
        > bare
    )


def test_genai_tool_dump_is_the_same_tool() -> None:
    """google-genai's Tool dump (other kinds as None) normalizes to the user's dict."""
    from langchain_tokencal._counting.openai_rules import normalize_tool  # noqa: PLC0415

    dump = {
        "retrieval": None,
        "google_search": {"time_range_filter": None},
        "url_context": None,
    }
    assert (
        normalize_tool(dump)
        == normalize_tool({"google_search": {}})
        == {"google_search": {}}
    )
    with pytest.raises(ValueError, match="Cannot read the tool"):
        normalize_tool(42)
