"""LangChain objects: messages, generations and `LLMResult` as callbacks get them.

A message's ``usage_metadata`` is already in LangChain's convention; its
``response_metadata`` adds the labels (model, provider) and, from
langchain-anthropic, the raw usage that says whether server tools ran (a
streamed reply has no raw usage: its ``server_tool_use`` content blocks say
so instead). Without
``usage_metadata`` the raw usage in ``response_metadata`` (or an `LLMResult`'s
``llm_output``) is searched instead.

`fast_message_usage` is the callback hot path: it reads a clean
``usage_metadata`` in one pass straight into a `TokenUsage`, and leaves
anything unusual to the general path (`from_message` then `finish`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_tokencal._providers import canonical_label
from langchain_tokencal._usage.draft import (
    MAX_COUNT,
    Draft,
    UsageProblem,
    no_usage,
)
from langchain_tokencal._usage.families import (
    EPHEMERAL,
    parse_usage_metadata,
    server_tool_flags,
)
from langchain_tokencal._usage.record import NO_EXTRAS, NO_FLAGS, TokenUsage
from langchain_tokencal._usage.search import parse_response

if TYPE_CHECKING:
    from langchain_core.messages import AIMessage

__all__ = [
    "fast_message_usage",
    "from_llm_result",
    "from_message",
    "message_of",
]

_EPHEMERAL_KEYS: Final = frozenset(EPHEMERAL)
# Content blocks of tools the provider ran inside the request (Anthropic's
# server tools and MCP connector, LangChain's standard block): their results
# were fed back as input, so the reported input is not the prompt.
_SERVER_TOOL_BLOCKS: Final = frozenset(
    {"server_tool_use", "mcp_tool_use", "server_tool_call"}
)


def _ran_server_tool(content: object) -> bool:
    """Whether a reply's content shows a tool that ran on the provider's side."""
    if type(content) is not list:
        return False
    return any(
        isinstance(block, dict) and block.get("type") in _SERVER_TOOL_BLOCKS
        for block in content
    )


# Gemini grounding (Google Search, Maps, retrieval): the results were read as a
# prompt of their own, which langchain-google-genai folds into input_tokens.
_GROUNDING_KEYS: Final = (
    "web_search_queries",
    "grounding_chunks",
    "retrieval_queries",
    "search_entry_point",
)


def _grounded(metadata: Mapping[str, Any]) -> bool:
    """Whether ``response_metadata`` shows a grounded Gemini answer."""
    grounding = metadata.get("grounding_metadata")
    return isinstance(grounding, Mapping) and any(
        grounding.get(key) for key in _GROUNDING_KEYS
    )


def fast_message_usage(message: AIMessage, provider: str | None) -> TokenUsage | None:
    """The callback hot path: a clean `usage_metadata` read in one pass.

    Handles only plain ints, the usual detail keys and consistent counts;
    anything else returns ``None`` and the general path decides and explains.
    Both paths give the same record wherever this one answers.
    """
    meta = message.usage_metadata
    if type(meta) is not dict or "total_cost" in meta:
        return None
    if _ran_server_tool(message.content):
        return None  # the general path flags the input
    counts = _fast_counts(meta)
    if counts is None:
        return None
    model = label = None
    metadata = message.response_metadata
    if metadata:
        raw = metadata.get("usage")
        if raw and type(raw) is dict and raw.get("server_tool_use"):
            return None
        if "grounding_metadata" in metadata:
            return None  # the general path decides whether it was grounded
        model = metadata.get("model_name") or metadata.get("model")
        if not (model and type(model) is str):
            model = None
        label = metadata.get("model_provider") or metadata.get("ls_provider")
        label = canonical_label(label) if label and type(label) is str else None
    inp, out, total, read, write, reasoning = counts
    return TokenUsage(
        inp,
        out,
        total,
        read,
        write,
        reasoning,
        provider or label,
        model,
        NO_EXTRAS,
        frozenset(meta),
        NO_FLAGS,
    )


def _fast_counts(
    meta: Mapping[str, object],
) -> tuple[int, int, int, int, int, int] | None:
    """Input, output, total, cache read, cache write, reasoning; or None if odd."""
    inp = meta.get("input_tokens")
    out = meta.get("output_tokens")
    total = meta.get("total_tokens")
    if type(inp) is not int or type(out) is not int or type(total) is not int:
        return None
    cache = _fast_cache(meta.get("input_token_details"))
    reasoning = _fast_reasoning(meta.get("output_token_details"))
    if cache is None or reasoning is None:
        return None
    read, write = cache
    consistent = (
        inp >= 0
        and out >= 0
        and 0 < inp + out <= total <= MAX_COUNT
        and read + write <= inp
        and reasoning <= out
    )
    return (inp, out, total, read, write, reasoning) if consistent else None


def _fast_cache(details: object) -> tuple[int, int] | None:
    if not details:
        return 0, 0
    if type(details) is not dict:
        return None
    read = write = ephemeral = 0
    for key, value in details.items():
        if type(value) is not int or value < 0:
            return None
        if key == "cache_read":
            read = value
        elif key == "cache_creation":
            write = value
        elif key in _EPHEMERAL_KEYS:
            ephemeral += value
        else:  # audio, service-tier keys...: the general path
            return None
    return read, ephemeral or write


def _fast_reasoning(details: object) -> int | None:
    if not details:
        return 0
    if type(details) is not dict or details.keys() != {"reasoning"}:
        return None
    reasoning = details["reasoning"]
    return reasoning if type(reasoning) is int and reasoning >= 0 else None


def from_message(message: BaseMessage) -> Draft:
    """A message's usage: ``usage_metadata``, else its ``response_metadata``."""
    metadata = message.response_metadata
    usage_metadata = getattr(message, "usage_metadata", None)
    if usage_metadata is not None:
        draft = parse_usage_metadata(usage_metadata)
        draft.raw_keys = frozenset(usage_metadata)
    elif not metadata:
        msg = "usage_metadata is None"
        raise no_usage(msg)
    else:
        try:
            draft = parse_response(metadata)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            msg = f"usage_metadata is None; response_metadata: {problem.reason}"
            raise no_usage(msg) from None
    if metadata:
        _label_from_metadata(draft, metadata)
    if _ran_server_tool(message.content):
        # langchain-anthropic's streams keep no raw usage; the blocks remain.
        draft.flags.add("server_tool_input")
    return draft


def _label_from_metadata(draft: Draft, metadata: Mapping[str, Any]) -> None:
    model = metadata.get("model_name") or metadata.get("model")
    if isinstance(model, str) and model:
        draft.model = model
    provider = metadata.get("model_provider") or metadata.get("ls_provider")
    if isinstance(provider, str) and provider:
        draft.provider = canonical_label(provider)
    raw = metadata.get("usage")
    if isinstance(raw, Mapping) and raw.get("server_tool_use"):
        # langchain-anthropic keeps the raw usage: server tools inflate the input.
        draft.flags.update(server_tool_flags(raw))
    if _grounded(metadata):
        # Gemini's toolUsePromptTokenCount is inside input_tokens here.
        draft.flags.add("server_tool_input")


def from_llm_result(result: LLMResult) -> Draft:
    """The first candidate's usage, else ``llm_output``'s; never a sum."""
    reasons = []
    generations = result.generations
    if generations and generations[0]:
        first = generations[0][0]  # every candidate repeats the usage: never sum
        try:
            if isinstance(first, ChatGeneration):
                draft = from_message(first.message)
            else:
                draft = parse_response({"generation_info": first.generation_info})
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            reasons.append(problem.reason)
        else:
            if draft.model is None and result.llm_output:
                model = result.llm_output.get("model_name")
                draft.model = model if isinstance(model, str) and model else None
            return draft
    if result.llm_output:
        try:
            return parse_response(result.llm_output)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            reasons.append(f"llm_output: {problem.reason}")
    raise no_usage("; ".join(reasons) or "LLMResult has no generations")


def message_of(item: object) -> BaseMessage | None:
    """The message inside a stream item (message, generation, result), if any."""
    if isinstance(item, BaseMessage):
        return item
    if isinstance(item, ChatGeneration):
        return item.message
    if isinstance(item, LLMResult) and item.generations and item.generations[0]:
        first = item.generations[0][0]
        return first.message if isinstance(first, ChatGeneration) else None
    return None
