"""Streams: the usage of a whole call from its list of chunks or events.

Three shapes, told apart by their items:

- LangChain chunks (messages, generations): summed as LangChain's ``+`` merges
  them, unless every chunk repeats the prompt (cumulative counts: the last one
  is taken and flagged ``cumulative_stream``);
- Anthropic events: input and cache from ``message_start``, output from the
  last ``message_delta`` (``server_tool_input`` when a later delta's input
  grew);
- other raw events (OpenAI, Gemini, Bedrock...): their counts are cumulative,
  so the last event with usage is taken, never a sum.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._usage.draft import (
    Draft,
    as_mapping,
    count,
    keys,
    no_usage,
    rejected,
    unless_no_usage,
)
from langchain_tokencal._usage.families import parse_anthropic, server_tool_flags
from langchain_tokencal._usage.messages import from_message, message_of
from langchain_tokencal._usage.search import parse_response

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from langchain_core.messages import BaseMessage

__all__ = ["MAX_STREAM_ITEMS", "from_stream"]

MAX_STREAM_ITEMS: Final = 100_000
"""Longer streams are rejected, so an endless iterator is not consumed forever."""

# A tuple, not a set: the "type" values tested against it may be unhashable.
_ANTHROPIC_EVENTS: Final = ("message_start", "message_delta")


def from_stream(items: Iterable[object]) -> Draft:
    """The usage of a stream of LangChain chunks or raw provider events.

    Raises:
        UsageProblem: no item carries usage, one is corrupt, or the stream has
            more than `MAX_STREAM_ITEMS` items.
    """
    chunks = list(itertools.islice(items, MAX_STREAM_ITEMS + 1))
    if len(chunks) > MAX_STREAM_ITEMS:
        msg = f"stream has more than {MAX_STREAM_ITEMS} items"
        raise rejected(msg)
    messages = [m for m in map(message_of, chunks) if m is not None]
    if messages:
        return _combine_messages(messages)
    events = [m for m in map(as_mapping, chunks) if m is not None]
    if not events:
        msg = "stream has no events" if not chunks else "stream has no usable events"
        raise no_usage(msg)
    if any(e.get("type") in _ANTHROPIC_EVENTS for e in events):
        return _combine_anthropic(events)
    return _combine_cumulative(events)


def _combine_messages(messages: list[BaseMessage]) -> Draft:
    """LangChain chunks: sum them as LangChain's merge does, unless cumulative."""
    parsed = (unless_no_usage(from_message, m) for m in messages)
    drafts = [d for d in parsed if d is not None]
    if not drafts:
        msg = "no chunk carries usage_metadata"
        raise no_usage(msg)
    if len(drafts) == 1:
        return drafts[0]
    first = drafts[0].input
    if first > 0 and all(d.input == first for d in drafts):
        # Every chunk repeats the whole prompt: counts are cumulative, the
        # last one is the call's usage. Summing would multiply it.
        last = drafts[-1]
        for draft in drafts:
            last.flags.update(draft.flags)
        last.flags.add("cumulative_stream")
        return last
    return _sum(drafts)


def _sum(drafts: list[Draft]) -> Draft:
    merged = Draft(sum(d.input for d in drafts))
    merged.output = sum(d.output for d in drafts)
    totals = [d.total for d in drafts]
    merged.total = None if None in totals else sum(t or 0 for t in totals)
    merged.cache_read = sum(d.cache_read for d in drafts)
    merged.cache_creation = sum(d.cache_creation for d in drafts)
    merged.reasoning = sum(d.reasoning for d in drafts)
    merged.billed_extra = sum(d.billed_extra for d in drafts)
    for draft in drafts:
        for key, value in draft.extras.items():
            merged.extras[key] = merged.extras.get(key, 0) + value
        merged.flags.update(draft.flags)
        merged.raw_keys |= draft.raw_keys
        merged.provider = merged.provider or draft.provider
        merged.model = draft.model or merged.model
    return merged


def _combine_anthropic(events: list[Mapping[str, Any]]) -> Draft:
    """Input and cache from ``message_start``; output from the last delta."""
    start, deltas = _anthropic_parts(events)
    usage = None if start is None else as_mapping(start.get("usage"))
    if usage is None:
        if not deltas or deltas[-1].get("input_tokens") is None:
            msg = "anthropic stream has no message_start usage"
            raise no_usage(msg)
        usage = deltas[-1]  # new-style cumulative delta: the best there is
    draft = parse_anthropic(usage)
    draft.raw_keys = keys(usage)
    model = None if start is None else start.get("model")
    draft.model = model if isinstance(model, str) and model else None
    prompt = count(usage.get("input_tokens"), "message_start.usage.input_tokens")
    for delta in deltas:
        later = count(delta.get("input_tokens"), "message_delta.usage.input_tokens")
        if later is not None and prompt is not None and later > prompt:
            # Server tools fed results back: the final input is not the prompt.
            draft.flags.add("server_tool_input")
        draft.flags.update(server_tool_flags(delta))
    if deltas:
        output = count(deltas[-1].get("output_tokens"), "message_delta.output_tokens")
        draft.output = draft.output if output is None else output
    return draft


def _anthropic_parts(
    events: list[Mapping[str, Any]],
) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]]]:
    """The ``message_start`` message and the usage of each ``message_delta``."""
    start: Mapping[str, Any] | None = None
    deltas = []
    for event in events:
        kind = event.get("type")
        if kind == "message_start" and start is None:
            start = as_mapping(event.get("message"))
        elif kind == "message_delta":
            usage = as_mapping(event.get("usage"))
            if usage is not None:
                deltas.append(usage)
    return start, deltas


def _combine_cumulative(events: list[Mapping[str, Any]]) -> Draft:
    """Take the last event with usage; never sum cumulative counts."""
    found: Draft | None = None
    for event in reversed(events):
        draft = unless_no_usage(parse_response, event)
        if draft is None:
            continue
        if found is not None:
            found.flags.add("cumulative_stream")
            break
        found = draft
    if found is None:
        msg = "no stream event carries usage"
        raise no_usage(msg)
    return found
