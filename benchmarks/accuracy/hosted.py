"""The hidden accounting of hosted APIs: gpt-4o and a Claude-like model.

- `OpenAIChat` (``gpt-4o``, o200k_base): every message is
  ``<|im_start|>{header}<|im_sep|>{content}<|im_end|>`` (3 special tokens plus
  the header and the content, tokenized apart), a name costs its tokens + 1,
  and the reply is primed with 3. Tools are rendered as OpenAI shows them to
  the model: ``# Tools``, ``## functions`` and a TypeScript
  ``namespace functions`` (`typescript`), in a system message of their own
  ahead of the conversation. Every tool call is
  an assistant message with the header ``assistant to=functions.{name}`` and
  the arguments string LangChain sends as its content; a tool result is a
  message with the header ``functions.{name} to=assistant``. None of this uses
  the package's (cookbook) tool-counting rules.
- `ClaudeLike` (``claude-like``): the legacy Claude BPE (``anthropic==0.3.11``'s
  ``tokenizer.json``, `vocab`), which no counter of the package has, with the
  ``Human:``/``Assistant:`` framing (consecutive same-role messages merged)
  and hidden costs a server adds and never shows: 7 tokens of framing per
  prompt; with tools, a 389-token tool preamble (deliberately not Anthropic's
  documented 346, the package's prior), 6 per tool around its JSON schema;
  48 per tool call around its name and JSON input, 38 per tool result around
  its content.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from benchmarks.accuracy.chat import Msg, Template, functions
from benchmarks.accuracy.typescript import namespace

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ClaudeLike", "OpenAIChat"]


class ClaudeLike(Template):
    """The legacy Claude vocabulary with Anthropic-like hidden framing."""

    name = "claude-like"
    encoding = "claude-legacy"
    eos = 0
    FRAMING = 7
    TOOL_PREAMBLE = 389
    PER_TOOL = 6
    CALL_FRAMING = 48
    RESULT_FRAMING = 38

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        del tools  # rendered apart; `prompt_tokens` adds them
        out = []
        turn = ""
        for m in msgs:
            if m.role == "system":
                out.append(m.content)
                continue
            role = "Assistant" if m.role == "assistant" else "Human"
            if role != turn:  # consecutive same-role messages merge into one turn
                out.append(f"\n\n{role}: ")
                turn = role
            else:
                out.append("\n\n")
            out.append(m.content)
            for _, name, args in m.tool_calls:
                out.append(self.render_call(name, args))
        out.append("\n\nAssistant:")
        return "".join(out)

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        total = self.FRAMING + self.tokens(self.render(msgs, tools))
        total += sum(self.CALL_FRAMING * len(m.tool_calls) for m in msgs)
        total += sum(self.RESULT_FRAMING for m in msgs if m.role == "tool")
        if tools:
            total += self.TOOL_PREAMBLE
            for f in functions(tools):
                schema = {
                    "name": f["name"],
                    "description": f.get("description", ""),
                    "input_schema": f.get("parameters", {}),
                }
                total += self.PER_TOOL + self.tokens(
                    json.dumps(schema, ensure_ascii=False)
                )
        return total

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return f"\n{name}\n{json.dumps(args, ensure_ascii=False)}"


class OpenAIChat(Template):
    """gpt-4o's prompt as the model reads it, with o200k_base."""

    name = "openai"
    encoding = "o200k_base"
    eos = 0

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        t = self.tokens
        msgs = list(msgs)
        fns = functions(tools)
        if fns:
            # A message of its own ahead of the conversation, so a tool set
            # costs the same whatever the messages are.
            msgs.insert(
                0, Msg("system", "# Tools\n\n## functions\n\n" + namespace(fns))
            )
        total = 3  # every reply is primed with <|im_start|>assistant<|im_sep|>
        names: dict[str, str] = {}
        for m in msgs:
            if m.role == "assistant":
                if m.content or not m.tool_calls:
                    total += 3 + t("assistant") + t(m.content)
                for call_id, name, args in m.tool_calls:
                    names[call_id] = name
                    total += 3 + t(f"assistant to=functions.{name}")
                    total += t(json.dumps(args, ensure_ascii=False))
            elif m.role == "tool":
                name = names.get(m.tool_call_id or "", m.name or "tool")
                total += 3 + t(f"functions.{name} to=assistant") + t(m.content)
            else:
                total += 3 + t(m.role) + t(m.content)
                if m.name:
                    total += t(m.name) + 1
        return total

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return f" to=functions.{name}" + json.dumps(args, ensure_ascii=False)
