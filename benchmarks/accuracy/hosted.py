"""The hidden accounting of hosted APIs: OpenAI's published rules and a Claude-like framing.

- `OpenAIChat`: OpenAI's accounting for ``gpt-4o`` (o200k_base; 3 per message +
  role + content, name + 1, 3 priming the reply; tool schemas by the cookbook's
  function-definition rules; a tool call costs its name, its JSON arguments
  and 4; a tool result 3 + role + content, its id uncounted).
- `ClaudeLike`: a vocabulary none of the local counters use (cl100k_base) with
  an Anthropic-like framing (``Human:``/``Assistant:`` turns, consecutive
  same-role messages merged, XML tool calls and results), a fixed 346-token
  tool preamble (Anthropic's documented figure for auto/none tool choice) plus
  each tool's schema as the API receives it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from benchmarks.accuracy.chat import Msg, Template, functions

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ClaudeLike", "OpenAIChat"]


class ClaudeLike(Template):
    """An Anthropic-like framing over a vocabulary none of the local counters use."""

    name = "claude-like"
    encoding = "cl100k_base"
    TOOL_PREAMBLE = 346  # Anthropic's documented tool system prompt, auto/none choice
    FRAMING = 4
    eos = 0

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        del tools  # sent beside the messages; `prompt_tokens` adds them
        out = []
        names: dict[str, str] = {}
        turn = ""
        for m in msgs:
            if m.role == "system":
                out.append(m.content)
                continue
            role = "Assistant" if m.role == "assistant" else "Human"
            if role != turn:  # consecutive same-role messages merge into one turn
                out.append(f"\n\n{role}: ")
                turn = role
            elif m.role != "tool":
                out.append("\n\n")
            if m.role == "assistant":
                out.append(m.content)
                for call_id, name, args in m.tool_calls:
                    names[call_id] = name
                    out.append(self.render_call(name, args))
            elif m.role == "tool":
                name = names.get(m.tool_call_id or "", "")
                out.append(
                    f"<function_results>\n<result>\n<tool_name>{name}</tool_name>\n<stdout>\n"
                    f"{m.content}\n</stdout>\n</result>\n</function_results>"
                )
            else:
                out.append(m.content)
        out.append("\n\nAssistant:")
        return "".join(out)

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        total = self.FRAMING + self.tokens(self.render(msgs, tools))
        if tools:
            total += self.TOOL_PREAMBLE
            for f in functions(tools):
                schema = {
                    "name": f["name"],
                    "description": f.get("description", ""),
                    "input_schema": f.get("parameters", {}),
                }
                total += self.tokens(json.dumps(schema, ensure_ascii=False))
        return total

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        params = "".join(
            f'<parameter name="{k}">{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}</parameter>\n'
            for k, v in args.items()
        )
        return f'<function_calls>\n<invoke name="{name}">\n{params}</invoke>\n</function_calls>'


# The cookbook's function-definition constants for gpt-4o-class models.
_FUNC_INIT, _PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = (
    7,
    3,
    3,
    -3,
    3,
    12,
)


class OpenAIChat(Template):
    """OpenAI's chat accounting for gpt-4o (o200k_base)."""

    name = "openai"
    encoding = "o200k_base"
    eos = 0

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        t = self.tokens
        total = 3  # every reply is primed with <|start|>assistant<|message|>
        for m in msgs:
            total += 3 + t(m.role) + t(m.content)
            if m.name:
                total += t(m.name) + 1
            for _, name, args in m.tool_calls:
                total += 4 + t(name) + t(json.dumps(args, ensure_ascii=False))
        return total + self.tool_tokens(tools)

    def tool_tokens(self, tools: Sequence[dict[str, Any]] | None) -> int:
        fns = functions(tools)
        if not fns:
            return 0
        t = self.tokens
        total = 0
        for f in fns:
            total += _FUNC_INIT
            desc = f.get("description", "").removesuffix(".")
            total += t(f"{f['name']}:{desc}")
            props = f.get("parameters", {}).get("properties", {})
            if props:
                total += _PROP_INIT
                for key, prop in props.items():
                    total += _PROP_KEY
                    if "enum" in prop:
                        total += _ENUM_INIT
                        for item in prop["enum"]:
                            total += _ENUM_ITEM + t(str(item))
                    p_desc = prop.get("description", "").removesuffix(".")
                    total += t(f"{key}:{prop.get('type', '')}:{p_desc}")
        return total + _FUNC_END

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        del name  # the arguments are the generated text; the name is a field
        return json.dumps(args, ensure_ascii=False)
