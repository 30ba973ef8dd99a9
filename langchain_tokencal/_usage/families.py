"""Provider usage families: one parser per convention of naming the counts.

A usage object (the mapping that holds the counts, once found inside its
envelope) is classified by its keys: OpenAI Chat Completions and Responses,
DeepSeek, Groq, LangChain `UsageMetadata`, Anthropic, Gemini (camel and snake
case), Bedrock Converse, Ollama, Cohere, or bare ``input_tokens``. Each parser
turns it into a `Draft` in LangChain's convention: input includes cache reads
and writes, output includes reasoning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from langchain_tokencal._usage.draft import (
    Draft,
    add_extra,
    as_mapping,
    count,
    first,
    items,
    no_usage,
    optional,
    rejected,
    required,
)

__all__ = [
    "EPHEMERAL",
    "classify",
    "parse_anthropic",
    "parse_usage_metadata",
    "server_tool_flags",
]

_ANTHROPIC_MARKERS: Final = frozenset(
    {
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
        "service_tier",
    }
)
_GROQ_MARKERS: Final = frozenset({"queue_time", "prompt_time", "completion_time"})
EPHEMERAL: Final = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
"""Anthropic's cache writes split by time to live (5 minutes, 1 hour)."""
# Modality details: LangChain's names and the Realtime API's (subsets: extras).
_MODALITY_KEYS: Final = {
    "audio": "audio",
    "audio_tokens": "audio",
    "text_tokens": "text",
    "image_tokens": "image",
}


def parse_usage_metadata(u: Mapping[str, Any]) -> Draft:
    """LangChain `UsageMetadata`: already normalized, details are subsets.

    Note:
        langchain-openai prefixes details with a service tier
        (``priority_cache_read``); langchain-anthropic splits writes by TTL in
        ``ephemeral_*_input_tokens`` and, by version, zeroes or repeats
        ``cache_creation``: the ephemeral sum wins when positive.
    """
    draft = Draft(required(u, "input_tokens"))
    draft.output = optional(u, "output_tokens")
    draft.total = count(u.get("total_tokens"), "total_tokens")
    cost = u.get("total_cost")
    if cost == 0 and isinstance(cost, (int, float)) and not isinstance(cost, bool):
        draft.flags.add("llm_cache_hit")
    details = u.get("input_token_details")
    if details:
        _input_details(draft, details)
    details = u.get("output_token_details")
    if details:
        _output_details(draft, details)
    return draft


def _input_details(draft: Draft, details: Any) -> None:
    creation = ephemeral = 0
    for key, value in items(details):
        if key == "cache_read" or key.endswith("_cache_read"):
            draft.cache_read += count(value, f"input_token_details.{key}") or 0
        elif key == "cache_creation" or key.endswith("_cache_creation"):
            creation += count(value, f"input_token_details.{key}") or 0
        elif key in EPHEMERAL:
            ephemeral += count(value, f"input_token_details.{key}") or 0
        elif key == "cached_tokens":  # the Realtime API's name of a cache read
            draft.cache_read += count(value, f"input_token_details.{key}") or 0
        elif key in _MODALITY_KEYS:
            add_extra(draft, "input_" + _MODALITY_KEYS[key], value)
    draft.cache_creation = ephemeral or creation


def _output_details(draft: Draft, details: Any) -> None:
    for key, value in items(details):
        if key == "reasoning" or key.endswith("_reasoning"):
            draft.reasoning += count(value, f"output_token_details.{key}") or 0
        elif key in _MODALITY_KEYS:
            add_extra(draft, "output_" + _MODALITY_KEYS[key], value)


def _parse_openai(u: Mapping[str, Any], names: tuple[str, str, str, str]) -> Draft:
    """Chat Completions and Responses: one shape under two sets of names."""
    inp, out, inp_details, out_details = names
    draft = Draft(required(u, inp), provider="openai")
    draft.output = optional(u, out)
    draft.total = count(u.get("total_tokens"), "total_tokens")
    inputs = as_mapping(u.get(inp_details))
    outputs = as_mapping(u.get(out_details))
    draft.cache_read = optional(inputs, "cached_tokens", f"{inp_details}.cached_tokens")
    draft.cache_creation = optional(
        inputs, "cache_write_tokens", f"{inp_details}.cache_write_tokens"
    ) or optional(u, "cache_write_tokens")
    draft.reasoning = optional(
        outputs, "reasoning_tokens", f"{out_details}.reasoning_tokens"
    )
    # Audio and prediction tokens are subsets of their parent: extras only.
    for details, key, extra in (
        (inputs, "audio_tokens", "input_audio"),
        (outputs, "audio_tokens", "output_audio"),
        (outputs, "accepted_prediction_tokens", "prediction_accepted"),
        (outputs, "rejected_prediction_tokens", "prediction_rejected"),
    ):
        if details is not None:
            add_extra(draft, extra, details.get(key))
    return draft


_CHAT_NAMES: Final = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)
_RESPONSES_NAMES: Final = (
    "input_tokens",
    "output_tokens",
    "input_tokens_details",
    "output_tokens_details",
)


def _parse_openai_chat(u: Mapping[str, Any]) -> Draft:
    draft = _parse_openai(u, _CHAT_NAMES)
    if (
        draft.reasoning
        and draft.total is not None
        and draft.total == draft.input + draft.output + draft.reasoning
    ):
        # xAI counts reasoning beside completion_tokens, not inside it: the
        # total says which. Output includes reasoning, as LangChain has it.
        draft.output += draft.reasoning
    hit = count(u.get("prompt_cache_hit_tokens"), "prompt_cache_hit_tokens")
    miss = count(u.get("prompt_cache_miss_tokens"), "prompt_cache_miss_tokens")
    if hit is not None or miss is not None:
        draft.provider = "deepseek"
        if hit is not None and miss is not None and hit + miss != draft.input:
            msg = (
                f"prompt_cache_hit_tokens ({hit}) + prompt_cache_miss_tokens "
                f"({miss}) != prompt_tokens ({draft.input})"
            )
            raise rejected(msg)
        draft.cache_read = draft.cache_read if hit is None else hit
        add_extra(draft, "cache_miss", miss)
    elif not _GROQ_MARKERS.isdisjoint(u):
        draft.provider = "groq"
    return draft


def _parse_openai_responses(u: Mapping[str, Any]) -> Draft:
    return _parse_openai(u, _RESPONSES_NAMES)


def parse_anthropic(u: Mapping[str, Any]) -> Draft:
    """Anthropic Messages usage: ``input_tokens`` excludes the cache."""
    uncached = required(u, "input_tokens")
    read = optional(u, "cache_read_input_tokens")
    write = optional(u, "cache_creation_input_tokens")
    split = as_mapping(u.get("cache_creation"))
    if split is not None:
        by_ttl = sum(optional(split, k, f"cache_creation.{k}") for k in EPHEMERAL)
        # The TTL split and the total describe the same tokens: one, never both.
        write = write or by_ttl
    draft = Draft(uncached + read + write, provider="anthropic")
    draft.output = optional(u, "output_tokens")
    draft.cache_read = read
    draft.cache_creation = write
    if split is not None:
        add_extra(draft, "cache_creation_5m", split.get("ephemeral_5m_input_tokens"))
        add_extra(draft, "cache_creation_1h", split.get("ephemeral_1h_input_tokens"))
    tools = as_mapping(u.get("server_tool_use"))
    if tools is not None:
        for key, value in items(tools):
            add_extra(draft, f"server_tool_{key}", value)
        if any(k.startswith("server_tool_") for k in draft.extras):
            # Tool results were fed back inside the request: input is not the prompt.
            draft.flags.add("server_tool_input")
    return draft


def server_tool_flags(usage: Mapping[str, Any]) -> set[str]:
    """``server_tool_input`` if any server tool ran (a positive request count).

    Note:
        Anthropic server tools (web search...) feed their results back inside
        the request, so ``input_tokens`` is then not the size of the prompt.
    """
    tools = as_mapping(usage.get("server_tool_use"))
    if tools is None:
        return set()
    used = any(type(v) is int and v > 0 for v in tools.values())
    return {"server_tool_input"} if used else set()


def _parse_google(u: Mapping[str, Any], *, snake: bool) -> Draft:
    """Gemini: thoughts are outside candidates; tool-use prompt outside prompt."""

    def key(camel: str) -> str:
        return _SNAKE[camel] if snake else camel

    prompt = key("promptTokenCount")
    draft = Draft(required(u, prompt), provider="google")
    # The Live API names the output responseTokenCount.
    candidates = optional(u, key("candidatesTokenCount")) or optional(
        u, key("responseTokenCount")
    )
    thoughts = optional(u, key("thoughtsTokenCount"))
    draft.output = candidates + thoughts
    draft.reasoning = thoughts
    draft.cache_read = optional(u, key("cachedContentTokenCount"))
    tool_use = optional(u, key("toolUsePromptTokenCount"))
    # Billed as input but not part of promptTokenCount: kept out of input (the
    # prompt we sent) and in the total.
    draft.billed_extra = tool_use
    add_extra(draft, "tool_use_prompt", tool_use)
    draft.total = count(u.get(key("totalTokenCount")), key("totalTokenCount"))
    for details, prefix in (
        (key("promptTokensDetails"), "input_"),
        (key("candidatesTokensDetails"), "output_"),
        (key("responseTokensDetails"), "output_"),
    ):
        _add_modalities(draft, u.get(details), prefix, snake=snake)
    return draft


_SNAKE: Final = {
    "promptTokenCount": "prompt_token_count",
    "candidatesTokenCount": "candidates_token_count",
    "thoughtsTokenCount": "thoughts_token_count",
    "cachedContentTokenCount": "cached_content_token_count",
    "toolUsePromptTokenCount": "tool_use_prompt_token_count",
    "totalTokenCount": "total_token_count",
    "promptTokensDetails": "prompt_tokens_details",
    "candidatesTokensDetails": "candidates_tokens_details",
    "responseTokenCount": "response_token_count",
    "responseTokensDetails": "response_tokens_details",
}


def _add_modalities(draft: Draft, entries: Any, prefix: str, *, snake: bool) -> None:
    """``[{modality: AUDIO, tokenCount: 12}]`` -> extras ``input_audio=12``.

    Informational: malformed entries are skipped.
    """
    if not isinstance(entries, (list, tuple)):
        return
    count_key = "token_count" if snake else "tokenCount"
    for entry in entries[:32]:  # there are five modalities; bound junk
        item = as_mapping(entry)
        if item is None:
            continue
        modality = item.get("modality")
        if isinstance(modality, str) and modality:
            add_extra(draft, prefix + modality.lower(), item.get(count_key))


def _parse_bedrock(u: Mapping[str, Any]) -> Draft:
    """Bedrock Converse: ``inputTokens`` excludes cache reads and writes."""
    uncached = first(u, ("inputTokens", "inputTokenCount"), "usage")
    if uncached is None:
        msg = "usage.inputTokens is missing"
        raise no_usage(msg)
    read = first(u, ("cacheReadInputTokens", "cacheReadInputTokenCount"), "usage")
    write = first(u, ("cacheWriteInputTokens", "cacheWriteInputTokenCount"), "usage")
    draft = Draft(uncached + (read or 0) + (write or 0), provider="bedrock")
    draft.output = first(u, ("outputTokens", "outputTokenCount"), "usage") or 0
    draft.total = count(u.get("totalTokens"), "usage.totalTokens")
    draft.cache_read = read or 0
    draft.cache_creation = write or 0
    return draft


def _parse_ollama(u: Mapping[str, Any]) -> Draft:
    if "done" in u and u.get("done") is not True:
        msg = "ollama response is not final (done is not true)"
        raise no_usage(msg)
    if u.get("prompt_eval_count") is None:
        msg = "ollama prompt_eval_count is missing (old versions omit it on cache)"
        raise no_usage(msg)
    draft = Draft(required(u, "prompt_eval_count"), provider="ollama")
    draft.output = optional(u, "eval_count")
    return draft


def _parse_cohere(u: Mapping[str, Any]) -> Draft:
    """Cohere: ``tokens`` were processed (the usage); ``billed_units`` are billed."""
    tokens = as_mapping(u.get("tokens"))
    if tokens is None or tokens.get("input_tokens") is None:
        msg = "cohere usage has no tokens.input_tokens (billed_units differ)"
        raise no_usage(msg)
    draft = Draft(
        required(tokens, "input_tokens", "tokens.input_tokens"), provider="cohere"
    )
    draft.output = optional(tokens, "output_tokens", "tokens.output_tokens")
    draft.cache_read = optional(u, "cached_tokens")
    billed = as_mapping(u.get("billed_units"))
    if billed is not None:
        for key, value in items(billed):
            name = key.removesuffix("_tokens")
            add_extra(draft, f"billed_{name}", value)
    return draft


def _parse_count_tokens(u: Mapping[str, Any]) -> Draft:
    """A token-count endpoint's answer (Gemini ``countTokens``): input only."""
    draft = Draft(required(u, "totalTokens"), provider="google")
    draft.cache_read = optional(u, "cachedContentTokenCount")
    _add_modalities(draft, u.get("promptTokensDetails"), "input_", snake=False)
    draft.flags.add("count_only")
    return draft


def _parse_llamacpp(u: Mapping[str, Any]) -> Draft:
    """llama.cpp's own ``/completion``: the whole prompt, its cached part."""
    draft = Draft(required(u, "tokens_evaluated"))
    draft.output = optional(u, "tokens_predicted")
    draft.cache_read = min(optional(u, "tokens_cached"), draft.input)
    return draft


def _parse_generic(u: Mapping[str, Any]) -> Draft:
    """Bare ``input_tokens``/``output_tokens``: every convention agrees on it.

    ``input_tokens`` alone is a token-count endpoint's answer (Anthropic's
    ``count_tokens``): flagged ``count_only``.
    """
    draft = Draft(required(u, "input_tokens"))
    draft.output = optional(u, "output_tokens")
    draft.total = count(u.get("total_tokens"), "total_tokens")
    if "output_tokens" not in u and "total_tokens" not in u:
        draft.flags.add("count_only")
    return draft


def classify(u: Mapping[str, Any]) -> _Parser | None:
    """Pick the parser from the key family; ``None`` if ``u`` holds no counts."""
    if "input_tokens" in u or "output_tokens" in u:
        return _input_tokens_family(u)
    for markers, parser in _FAMILIES:
        if not markers.isdisjoint(u):
            return parser
    if "done" in u and "created_at" in u:  # a non-final Ollama chunk
        return _parse_ollama
    return None


def _input_tokens_family(u: Mapping[str, Any]) -> _Parser:
    """Four conventions share ``input_tokens``; their detail keys tell them apart."""
    if not _RESPONSES_MARKERS.isdisjoint(u):
        return _parse_openai_responses
    if not _LANGCHAIN_MARKERS.isdisjoint(u):
        return parse_usage_metadata
    if not _ANTHROPIC_MARKERS.isdisjoint(u):
        return parse_anthropic
    return _parse_generic


def _parse_google_camel(u: Mapping[str, Any]) -> Draft:
    return _parse_google(u, snake=False)


def _parse_google_snake(u: Mapping[str, Any]) -> Draft:
    return _parse_google(u, snake=True)


_Parser = Callable[[Mapping[str, Any]], Draft]
_RESPONSES_MARKERS: Final = frozenset({"input_tokens_details", "output_tokens_details"})
_LANGCHAIN_MARKERS: Final = frozenset(
    {"input_token_details", "output_token_details", "total_cost"}
)
_FAMILIES: Final[tuple[tuple[frozenset[str], _Parser], ...]] = (
    (frozenset({"prompt_tokens", "completion_tokens"}), _parse_openai_chat),
    (frozenset({"promptTokenCount", "candidatesTokenCount"}), _parse_google_camel),
    (
        frozenset({"prompt_token_count", "candidates_token_count"}),
        _parse_google_snake,
    ),
    (
        frozenset({"inputTokens", "outputTokens", "inputTokenCount"}),
        _parse_bedrock,
    ),
    (frozenset({"prompt_eval_count", "eval_count"}), _parse_ollama),
    (frozenset({"tokens", "billed_units"}), _parse_cohere),
    (frozenset({"tokens_evaluated", "tokens_predicted"}), _parse_llamacpp),
    # Last: a bare totalTokens is a count endpoint's answer, nothing else's.
    (frozenset({"totalTokens"}), _parse_count_tokens),
)
