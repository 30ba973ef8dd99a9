"""The envelope search: where the usage object sits inside a raw payload.

Responses, stream events and serialized LangChain objects wrap the counts in
envelopes (``usage``, ``usageMetadata``, ``x_groq``, ``response_metadata``...).
`parse_response` tries each key of `USAGE_CONTAINERS` in turn until one holds a
usage family, then labels the draft from the envelope (provider, model). Only
known keys are followed, to a bounded depth and number of visits, so cycles and
deep junk cannot recurse forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._providers import canonical_label
from langchain_tokencal._usage.draft import (
    Draft,
    UsageProblem,
    as_mapping,
    keys,
    no_usage,
    rejected,
    show,
)
from langchain_tokencal._usage.families import classify

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["USAGE_CONTAINERS", "parse_response"]

_MAX_DEPTH: Final = 6
"""Envelopes nest at most ~4 deep (llm_output > token_usage, x_groq > usage...)."""
_MAX_VISITS: Final = 64
"""Real payloads need fewer than 10 mappings examined per parse."""

USAGE_CONTAINERS: Final[tuple[str, ...]] = (
    "usage_metadata",
    "usageMetadata",
    "usage",
    "token_usage",
    "x_groq",
    "meta",
    "metadata",
    "amazon-bedrock-invocationMetrics",
    "response_metadata",
    "llm_output",
    "generation_info",
    "response",
    "message",
    "delta",
    "result",
    "data",
    "output",
)
"""The envelope keys searched for usage, most specific first.

The search tries each in turn, so a ``response_metadata`` dict or a Bedrock
``metadata`` stream event needs no special case; ``result`` is an Anthropic
batch result's, ``data``/``output`` an agent framework's stream event's
(``{"event": "on_chat_model_end", "data": {"output": message}}``).
"""
_MODEL_KEYS: Final = ("model_name", "model", "modelVersion", "model_version")


def _model_of(m: Mapping[str, Any]) -> str | None:
    for key in _MODEL_KEYS:
        value = m.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _envelope_provider(m: Mapping[str, Any], container: str) -> str | None:
    """What an envelope says about the provider of the usage found inside it."""
    if container == "x_groq":
        return "groq"
    kind = m.get("type")
    if kind in ("message", "message_start", "message_delta"):
        return "anthropic"
    if m.get("object") == "response":
        return "openai"
    if isinstance(kind, str) and kind.startswith("response."):
        return "openai"
    return None


class _Budget:
    """How many mappings one parse may still examine.

    Shared or cyclic references would otherwise make the container search
    exponential in its depth.
    """

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = _MAX_VISITS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            msg = f"payload too complex (more than {_MAX_VISITS} nested objects)"
            raise no_usage(msg)


def parse_response(
    m: Mapping[str, Any], depth: int = 0, budget: _Budget | None = None
) -> Draft:
    """Find and normalize the usage in a raw payload (response, event, usage).

    Raises:
        UsageProblem: no usage was found, or it cannot be trusted.
    """
    budget = _Budget() if budget is None else budget
    budget.spend()
    if depth > _MAX_DEPTH:
        msg = "usage nested too deeply"
        raise no_usage(msg)
    parser = classify(m)
    if parser is None:
        special = _special_envelope(m)
        if special is not None:
            return special
        return _search_containers(m, depth, budget)
    draft = parser(m)
    draft.raw_keys = keys(m)
    draft.model = draft.model or _model_of(m)
    return draft


_BEDROCK_HEADERS: Final = (
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
)


def _header_count(headers: Mapping[str, Any], name: str) -> int:
    """A count sent as an HTTP header: decimal digits, else "rejected"."""
    value = headers.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    msg = f"HTTP header {name} ({show(value)}) is not a count"
    raise rejected(msg)


def _special_envelope(m: Mapping[str, Any]) -> Draft | None:
    """Usage split across an envelope: Bedrock invocation logs and headers.

    A Bedrock model invocation log holds the input counts under ``input``
    and the output under ``output``; an ``InvokeModel`` response (as botocore
    returns it) holds them in ``ResponseMetadata.HTTPHeaders``.
    """
    inp, out = as_mapping(m.get("input")), as_mapping(m.get("output"))
    if inp is not None and "inputTokenCount" in inp:
        merged = {**inp, **(out or {})}
        parser = classify(merged)
        if parser is not None:
            draft = parser(merged)
            draft.raw_keys = keys(merged)
            model = m.get("modelId")
            draft.model = model if isinstance(model, str) and model else None
            return draft
    meta = as_mapping(m.get("ResponseMetadata"))
    headers = as_mapping(meta.get("HTTPHeaders")) if meta is not None else None
    if headers is not None and _BEDROCK_HEADERS[0] in headers:
        draft = Draft(_header_count(headers, _BEDROCK_HEADERS[0]), provider="bedrock")
        if _BEDROCK_HEADERS[1] in headers:
            draft.output = _header_count(headers, _BEDROCK_HEADERS[1])
        draft.raw_keys = frozenset(k for k in headers if k in _BEDROCK_HEADERS)
        return draft
    return None


def _search_containers(m: Mapping[str, Any], depth: int, budget: _Budget) -> Draft:
    """Try each known envelope key in turn; the first one holding usage wins."""
    reason = ""
    for container in USAGE_CONTAINERS:
        value = m.get(container)
        inner = as_mapping(value)
        if inner is None:
            if not reason and container in m:
                reason = f"{container} is {show(value)}"
            continue
        if m.get("type") == "message_delta" and inner.get("input_tokens") is None:
            # Old deltas hold only the output; the input is in message_start.
            reason = "anthropic message_delta has no input_tokens; pass the stream"
            continue
        try:
            draft = parse_response(inner, depth + 1, budget)
        except UsageProblem as problem:
            if problem.kind != "no usage":
                raise
            if budget.left < 0:
                raise
            reason = reason or problem.reason
            continue
        _apply_envelope(draft, m, container)
        return draft
    raise no_usage(reason or "no usage field found")


def _apply_envelope(draft: Draft, m: Mapping[str, Any], container: str) -> None:
    """Label the provider and model from the envelope the usage was found in.

    A llama.cpp server puts the cached part of the prompt beside ``usage``,
    in ``timings.cache_n``: a cache read.
    """
    timings = as_mapping(m.get("timings")) if container == "usage" else None
    if timings is not None and not draft.cache_read:
        cached = timings.get("cache_n")
        if type(cached) is int and 0 < cached <= draft.input:
            draft.cache_read = cached
    hint = _envelope_provider(m, container)
    if hint is not None and (draft.provider in (None, "openai") or hint == "groq"):
        draft.provider = hint
    # A serialized message keeps its labels in response_metadata, not beside
    # usage; a LangChain stream event in its metadata (ls_provider...).
    for source in (m, as_mapping(m.get("response_metadata"))):
        if source is None:
            continue
        provider = source.get("model_provider")
        if isinstance(provider, str) and provider:
            draft.provider = canonical_label(provider)
        draft.model = draft.model or _model_of(source)
    traced = as_mapping(m.get("metadata"))
    if traced is not None and container in {"data", "output"}:
        provider, model = traced.get("ls_provider"), traced.get("ls_model_name")
        if isinstance(provider, str) and provider and draft.provider is None:
            draft.provider = canonical_label(provider)
        if isinstance(model, str) and model:
            draft.model = draft.model or model
