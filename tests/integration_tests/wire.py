"""Request bodies as a server's chat template sees them: turns and tools.

Each provider sends the prompt in its own JSON shape; a server turns it into
an ordered list of `Turn` records (and the `Tool` schemas) before rendering
its template. These converters read only what the client put on the wire,
never LangChain objects, so the count a server bills follows from the bytes
it received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Call",
    "Tool",
    "Turn",
    "from_anthropic",
    "from_bedrock",
    "from_gemini",
    "from_ollama",
    "from_openai_chat",
    "from_responses",
]


@dataclass(frozen=True)
class Call:
    """A tool call the assistant made."""

    id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Tool:
    """A function the model may call."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Turn:
    """One message as a template sees it.

    ``cache`` marks an Anthropic cache breakpoint at the end of this turn
    (its TTL, ``"5m"`` or ``"1h"``); ``thinking`` is the reasoning text an
    assistant turn carried back.
    """

    role: str  # system, user, assistant, tool
    text: str = ""
    calls: tuple[Call, ...] = ()
    call_id: str | None = None
    thinking: str = ""
    cache: str | None = None
    images: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ttl(block: Any) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return str(block["cache_control"].get("ttl") or "5m")
    return None


def _text_of(content: Any) -> tuple[str, int]:
    """Concatenated text parts, and the number of image parts."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    parts: list[str] = []
    images = 0
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif part.get("type") in ("text", "input_text", "output_text"):
            parts.append(str(part.get("text", "")))
        elif "image" in str(part.get("type")):
            images += 1
    return "".join(parts), images


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _openai_tools(tools: Any) -> list[Tool]:
    out = []
    for t in tools or ():
        f = t.get("function", t)
        out.append(
            Tool(f["name"], f.get("description") or "", f.get("parameters") or {})
        )
    return out


def from_openai_chat(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """Chat Completions (OpenAI, vLLM, Mistral): ``messages`` and ``tools``."""
    turns = []
    for m in body.get("messages", ()):
        role = {"developer": "system"}.get(m["role"], m["role"])
        text, images = _text_of(m.get("content"))
        calls = tuple(
            Call(
                c.get("id") or "",
                c["function"]["name"],
                _args(c["function"].get("arguments")),
            )
            for c in m.get("tool_calls") or ()
        )
        turns.append(
            Turn(role, text, calls, call_id=m.get("tool_call_id"), images=images)
        )
    return turns, _openai_tools(body.get("tools"))


def from_responses(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """The Responses API: ``instructions``, ``input`` items and flat ``tools``."""
    turns: list[Turn] = []
    if body.get("instructions"):
        turns.append(Turn("system", str(body["instructions"])))
    items = body.get("input", ())
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = {"developer": "system"}.get(item["role"], item["role"])
            text, images = _text_of(item.get("content"))
            turns.append(Turn(role, text, images=images))
        elif kind == "function_call":
            call = Call(
                item.get("call_id", ""), item["name"], _args(item.get("arguments"))
            )
            last = turns[-1] if turns else None
            if last is not None and last.role == "assistant":
                # Calls after an assistant message belong to that turn.
                last.calls = (*last.calls, call)
            else:
                turns.append(Turn("assistant", calls=(call,)))
        elif kind == "function_call_output":
            text, _ = _text_of(item.get("output"))
            turns.append(Turn("tool", text, call_id=item.get("call_id")))
        # Reasoning items of earlier turns are not shown to the model again.
    return turns, _openai_tools(body.get("tools"))


def _tool_result_text(content: Any) -> str:
    text, _ = _text_of(content)
    return text


def from_anthropic(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """Anthropic Messages: ``system``, content blocks, ``cache_control`` marks."""
    turns: list[Turn] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        turns.append(Turn("system", system))
    elif isinstance(system, list):
        turns.extend(
            Turn("system", str(block.get("text", "")), cache=_ttl(block))
            for block in system
        )
    for m in body.get("messages", ()):
        content = m["content"]
        if isinstance(content, str):
            turns.append(Turn(m["role"], content))
            continue
        if m["role"] == "assistant":
            turn = Turn("assistant")
            for block in content:
                kind = block.get("type")
                if kind == "text":
                    turn.text += block.get("text", "")
                elif kind == "thinking":
                    turn.thinking += block.get("thinking", "")
                elif kind == "tool_use":
                    turn.calls = (
                        *turn.calls,
                        Call(
                            block["id"], block["name"], dict(block.get("input") or {})
                        ),
                    )
                turn.cache = _ttl(block) or turn.cache
            turns.append(turn)
            continue
        user = Turn("user")
        for block in content:
            kind = block.get("type")
            if kind == "tool_result":
                if user.text or user.images:
                    turns.append(user)
                    user = Turn("user")
                turns.append(
                    Turn(
                        "tool",
                        _tool_result_text(block.get("content")),
                        call_id=block.get("tool_use_id"),
                        cache=_ttl(block),
                    )
                )
            elif kind == "text":
                user.text += block.get("text", "")
                user.cache = _ttl(block) or user.cache
            elif kind == "image":
                user.images += 1
        if user.text or user.images:
            turns.append(user)
    tools = [
        Tool(t["name"], t.get("description") or "", t.get("input_schema") or {})
        for t in body.get("tools") or ()
    ]
    return turns, tools


def from_ollama(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """Ollama ``/api/chat``: arguments are objects, results have no call id."""
    turns = []
    for i, m in enumerate(body.get("messages", ())):
        calls = tuple(
            Call(
                f"ollama-{i}-{j}",
                c["function"]["name"],
                _args(c["function"].get("arguments")),
            )
            for j, c in enumerate(m.get("tool_calls") or ())
        )
        turns.append(
            Turn(
                m["role"],
                str(m.get("content") or ""),
                calls,
                call_id=m.get("tool_call_id"),
                images=len(m.get("images") or ()),
                extra={"tool_name": m.get("tool_name")} if m.get("tool_name") else {},
            )
        )
    return turns, _openai_tools(body.get("tools"))


def _lower_types(schema: Any) -> Any:
    """A Gemini ``Schema`` (``"type": "OBJECT"``) as JSON Schema's lower-case types."""
    if isinstance(schema, dict):
        return {
            k: v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def from_gemini(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """Gemini ``generateContent``: ``systemInstruction``, ``contents`` of parts.

    A ``functionCall`` part is a call, a ``functionResponse`` part a tool
    result (matched by name: Gemini's calls need no ids).
    """
    turns: list[Turn] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        turns.append(
            Turn("system", "".join(p.get("text", "") for p in system["parts"]))
        )
    for content in body.get("contents", ()):
        role = "assistant" if content.get("role") == "model" else "user"
        turn = Turn(role)
        for part in content.get("parts", ()):
            if "text" in part:
                turn.text += str(part["text"])
            elif "functionCall" in part:
                fc = part["functionCall"]
                call = Call(
                    str(fc.get("id") or fc["name"]), fc["name"], _args(fc.get("args"))
                )
                turn.calls = (*turn.calls, call)
            elif "functionResponse" in part:
                fr = part["functionResponse"]
                turns.append(
                    Turn(
                        "tool",
                        json.dumps(fr.get("response"), ensure_ascii=False),
                        call_id=str(fr.get("id") or fr["name"]),
                        extra={"tool_name": fr["name"]},
                    )
                )
            elif "inlineData" in part or "fileData" in part:
                turn.images += 1
        if turn.text or turn.calls or turn.images:
            turns.append(turn)
    tools = [
        Tool(
            d["name"],
            d.get("description") or "",
            _lower_types(d.get("parameters") or d.get("parametersJsonSchema") or {}),
        )
        for t in body.get("tools") or ()
        for d in t.get("functionDeclarations") or ()
    ]
    return turns, tools


def from_bedrock(body: dict[str, Any]) -> tuple[list[Turn], list[Tool]]:
    """Bedrock Converse: ``system`` blocks, ``toolUse``/``toolResult`` blocks."""
    turns: list[Turn] = [
        Turn("system", str(block["text"]))
        for block in body.get("system") or ()
        if "text" in block
    ]
    for m in body.get("messages", ()):
        turn = Turn(m["role"])
        for block in m.get("content", ()):
            if "text" in block:
                turn.text += str(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                call = Call(use["toolUseId"], use["name"], dict(use.get("input") or {}))
                turn.calls = (*turn.calls, call)
            elif "toolResult" in block:
                result = block["toolResult"]
                parts = [
                    str(c["text"])
                    if "text" in c
                    else json.dumps(c.get("json"), ensure_ascii=False)
                    for c in result.get("content", ())
                ]
                turns.append(Turn("tool", "".join(parts), call_id=result["toolUseId"]))
            elif "image" in block:
                turn.images += 1
        if turn.text or turn.calls or turn.images:
            turns.append(turn)
    tools = [
        Tool(
            spec["name"],
            spec.get("description") or "",
            (spec.get("inputSchema") or {}).get("json") or {},
        )
        for t in (body.get("toolConfig") or {}).get("tools") or ()
        if (spec := t.get("toolSpec"))
    ]
    return turns, tools
