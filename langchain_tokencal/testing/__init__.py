"""Offline fake chat models that report realistic usage.

`FakeUsageChatModel` stands in for a provider's chat model with no network: it
answers deterministically and reports ``usage_metadata`` computed from a hidden
"true" tokenizer and chat template. Code that learns from reported usage (such
as `TokenCalibrationHandler`) sees exactly what it would see from a provider:
the messages, the bound tools and the counts, never the template itself.

The hidden template, i.e. what ``input_tokens`` means for a fake model::

    input_tokens = framing_tokens
        + for each message:
            tokens_per_message
            + tokens(role)                 "system", "user", "assistant", "tool"
            + tokens(each text block)      a str content is one text block
            + image_tokens per media block image, audio, video, file: never base64
            + tokens(name) + 1             if the message has a name
            + tokens(tool name) + tokens(JSON args) + 3   per tool call
            + tokens(tool_call_id)         tool messages only
        + tool_preamble_tokens             once, when tools are bound
        + tokens(JSON schema) + tokens_per_tool        per bound tool
        + tokens(JSON response_format)     when a response_format is passed

JSON is canonical (sorted keys, no spaces, UTF-8). Reasoning and thinking
blocks count their text; tool-use blocks count nothing (their tool calls
already count); any other block counts its JSON. ``tokens`` is the
``tokenizer`` encoding. ``output_tokens`` is the tokens of the reply text,
plus the tool calls counted as above, plus ``reasoning_tokens``.
"""

from langchain_tokencal.testing._model import FakeUsageChatModel

__all__ = [
    "FakeUsageChatModel",
]
