"""The Responses API's shapes: the response document and its SSE events.

A response lists output items (``reasoning``, ``message`` with ``output_text``,
``function_call``) and a ``usage`` with ``input_tokens_details.cached_tokens``
and ``output_tokens_details.reasoning_tokens``. Streamed, it is the events
``response.created`` ... ``response.completed``; only the last carries usage.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from tests.integration_tests.loopback import Reply, sse
from tests.integration_tests.replies import seed_of
from tests.integration_tests.shapes import dumps, make_id, pieces

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration_tests.replies import Answer

__all__ = ["response_events", "responses_reply"]


def responses_reply(
    body: dict[str, Any],
    a: Answer,
    model: str,
    counts: tuple[int, int, int, int],
    seed: str,
) -> Reply:
    """The Responses API document (or its event stream) for one answer.

    ``counts`` is (input, cached, output, reasoning) as billed.
    """
    prompt, cached, output, reasoning = counts
    rng = random.Random(seed_of(seed, "resp"))
    items: list[dict[str, Any]] = []
    if reasoning:
        items.append(
            {"type": "reasoning", "id": make_id(rng, "rs_", 32), "summary": []}
        )
    if a.text:
        items.append(
            {
                "type": "message",
                "id": make_id(rng, "msg_", 32),
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": a.text,
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        )
    items.extend(
        {
            "type": "function_call",
            "id": make_id(rng, "fc_", 32),
            "call_id": c.id,
            "name": c.name,
            "arguments": dumps(c.args),
            "status": "completed",
        }
        for c in a.calls
    )
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }
    response = {
        "id": make_id(rng, "resp_", 32),
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": items,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {
            "effort": (body.get("reasoning") or {}).get("effort"),
            "summary": None,
        },
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }
    if not body.get("stream"):
        return Reply(body=response)
    return Reply(
        chunks=sse(response_events(response)), content_type="text/event-stream"
    )


def response_events(response: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """The SSE events of a streamed response, ``response.completed`` last."""
    seq = 0

    def event(kind: str, **fields: Any) -> tuple[str, Any]:
        nonlocal seq
        seq += 1
        return kind, {"type": kind, "sequence_number": seq - 1, **fields}

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        kind = item["type"]
        if kind == "message":
            empty = {**item, "status": "in_progress", "content": []}
            yield event("response.output_item.added", output_index=index, item=empty)
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            for piece in pieces(text):
                yield event(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            yield event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            yield event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part={**part, "text": text},
            )
        elif kind == "function_call":
            empty = {**item, "arguments": "", "status": "in_progress"}
            yield event("response.output_item.added", output_index=index, item=empty)
            for piece in pieces(item["arguments"]):
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=piece,
                )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=item["arguments"],
            )
        else:
            yield event("response.output_item.added", output_index=index, item=item)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)
