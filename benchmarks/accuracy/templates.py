"""The hidden prompt accounting of each benchmark provider: real vocabularies, real templates.

Each `Template` turns a LangChain prompt (messages + bound tools) into the
number a server reports as ``prompt_tokens``. The text-based templates render
the prompt exactly as the model family's chat template does and tokenize the
whole text with the family's vocabulary (`vocab`), special-token strings
counting as one token each, as vLLM does with ``apply_chat_template`` and
``add_generation_prompt=True``:

- `Llama31`: the Llama 3.1 Instruct template: ``<|begin_of_text|>``, a system
  block that always carries the knowledge-cutoff/date lines, headers around
  each role, ``<|eot_id|>``; with tools, ``Environment: ipython`` and the JSON
  function-calling instructions + schemas (indent 4) in the first user message;
  tool calls as ``{"name": ..., "parameters": ...}``; tool results under the
  ``ipython`` role, JSON-encoded as the template does with a string.
- `Qwen3`: ChatML (``<|im_start|>role\\n...<|im_end|>\\n``), tools in the system
  message inside ``<tools></tools>`` with Qwen's function-calling instructions,
  ``<tool_call>`` blocks, consecutive tool results merged into one user turn of
  ``<tool_response>`` blocks.
- `Harmony`: gpt-oss's harmony format with ``o200k_harmony`` (system and
  developer messages, channels, tools as a TypeScript ``namespace functions``).

The hosted APIs' accounting (`OpenAIChat`, `ClaudeLike`) lives in `hosted`,
Mistral's and DeepSeek's in `openweights`; `TEMPLATES` maps every template
name to its class.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from benchmarks.accuracy.chat import Msg, Template, functions, normalize
from benchmarks.accuracy.hosted import ClaudeLike, OpenAIChat
from benchmarks.accuracy.openweights import DeepSeekV3, MistralLarge, MistralNemo
from benchmarks.accuracy.typescript import namespace

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["TEMPLATES", "Msg", "Template", "normalize"]


class Llama31(Template):
    """Llama 3.1 Instruct, as rendered by its Hugging Face chat template."""

    name = "llama3.1"
    encoding = "llama3"
    DATE = "26 Jul 2024"  # the template's default date_string

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        msgs = list(msgs)
        system = ""
        if msgs and msgs[0].role == "system":
            system = msgs.pop(0).content.strip()
        out = ["<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"]
        if tools:
            out.append("Environment: ipython\n")
        out.append(
            f"Cutting Knowledge Date: December 2023\nToday Date: {self.DATE}\n\n"
        )
        out.append(system + "<|eot_id|>")
        if tools:
            # tools_in_user_message defaults to true: they go in the first turn.
            first = msgs.pop(0).content.strip() if msgs else ""
            out.append("<|start_header_id|>user<|end_header_id|>\n\n")
            out.append(
                "Given the following functions, please respond with a JSON for a function call "
                "with its proper arguments that best answers the given prompt.\n\n"
                'Respond in the format {"name": function name, "parameters": dictionary of '
                "argument name and its value}.Do not use variables.\n\n"
            )
            out.extend(
                json.dumps(tool, indent=4, ensure_ascii=False) + "\n\n"
                for tool in tools
            )
            out.append(first + "<|eot_id|>")
        for m in msgs:
            if m.role == "tool":
                # The template JSON-encodes a string result (strings are iterable).
                out.append("<|start_header_id|>ipython<|end_header_id|>\n\n")
                out.append(json.dumps(m.content, ensure_ascii=False) + "<|eot_id|>")
            elif m.tool_calls:
                _, name, args = m.tool_calls[0]  # the template allows one call
                out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
                out.append(self.render_call(name, args) + "<|eot_id|>")
            else:
                out.append(f"<|start_header_id|>{m.role}<|end_header_id|>\n\n")
                out.append(m.content.strip() + "<|eot_id|>")
        out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(out)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return (
            '{"name": "'
            + name
            + '", "parameters": '
            + json.dumps(args, ensure_ascii=False)
            + "}"
        )


class Qwen3(Template):
    """Qwen 3, as rendered by its ChatML chat template (thinking enabled)."""

    name = "qwen3"
    encoding = "qwen3"

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        out = []
        start = 0
        if tools:
            out.append("<|im_start|>system\n")
            if msgs and msgs[0].role == "system":
                out.append(msgs[0].content + "\n\n")
                start = 1
            out.append(
                "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
            )
            out.extend("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools)
            out.append(
                "\n</tools>\n\nFor each function call, return a json object with function name "
                "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
                '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
            )
        elif msgs and msgs[0].role == "system":
            out.append(f"<|im_start|>system\n{msgs[0].content}<|im_end|>\n")
            start = 1
        for i in range(start, len(msgs)):
            m = msgs[i]
            if m.role in ("user", "system"):
                out.append(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n")
            elif m.role == "assistant":
                content = m.content
                if "</think>" in content:
                    content = content.split("</think>")[-1].lstrip("\n")
                out.append("<|im_start|>assistant\n" + content)
                for j, (_, name, args) in enumerate(m.tool_calls):
                    if j or content:
                        out.append("\n")
                    out.append(
                        "<tool_call>\n"
                        + self.render_call(name, args)
                        + "\n</tool_call>"
                    )
                out.append("<|im_end|>\n")
            else:  # tool: consecutive results share one user turn
                if i == 0 or msgs[i - 1].role != "tool":
                    out.append("<|im_start|>user")
                out.append(f"\n<tool_response>\n{m.content}\n</tool_response>")
                if i == len(msgs) - 1 or msgs[i + 1].role != "tool":
                    out.append("<|im_end|>\n")
        out.append("<|im_start|>assistant\n")
        return "".join(out)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return (
            '{"name": "'
            + name
            + '", "arguments": '
            + json.dumps(args, ensure_ascii=False)
            + "}"
        )

    def completion_tokens(
        self, text: str, calls: Sequence[tuple[str, dict[str, Any]]]
    ) -> int:
        total = self.tokens(text) if text else 0
        for name, args in calls:
            total += self.tokens(
                "<tool_call>\n" + self.render_call(name, args) + "\n</tool_call>"
            )
        return total + self.eos


class Harmony(Template):
    """gpt-oss's harmony format with the o200k_harmony vocabulary."""

    name = "harmony"
    encoding = "o200k_harmony"

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        msgs = list(msgs)
        out = [
            (
                "<|start|>system<|message|>You are ChatGPT, a large language model trained by "
                "OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\nReasoning: medium\n\n"
                "# Valid channels: analysis, commentary, final. Channel must be included for every message."
            )
        ]
        if tools:
            out.append(
                "\nCalls to these tools must go to the commentary channel: 'functions'."
            )
        out.append("<|end|>")
        system = msgs.pop(0).content if msgs and msgs[0].role == "system" else None
        if system is not None or tools:
            out.append("<|start|>developer<|message|>")
            if system is not None:
                out.append(f"# Instructions\n\n{system}\n\n")
            if tools:
                out.append("# Tools\n\n## functions\n\n" + namespace(functions(tools)))
            out.append("<|end|>")
        names: dict[str, str] = {}
        for m in msgs:
            if m.role == "assistant":
                if m.content:
                    out.append(
                        f"<|start|>assistant<|channel|>final<|message|>{m.content}<|end|>"
                    )
                for call_id, name, args in m.tool_calls:
                    names[call_id] = name
                    out.append(
                        f"<|start|>assistant<|channel|>commentary to=functions.{name} "
                        f"<|constrain|>json<|message|>{json.dumps(args, ensure_ascii=False)}<|call|>"
                    )
            elif m.role == "tool":
                name = names.get(m.tool_call_id or "", "tool")
                out.append(
                    f"<|start|>functions.{name} to=assistant<|channel|>commentary<|message|>"
                    f"{m.content}<|end|>"
                )
            else:
                out.append(f"<|start|>{m.role}<|message|>{m.content}<|end|>")
        out.append("<|start|>assistant")
        return "".join(out)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{json.dumps(args, ensure_ascii=False)}"


TEMPLATES: dict[str, type[Template]] = {
    cls.name: cls
    for cls in (
        Llama31,
        Qwen3,
        ClaudeLike,
        Harmony,
        OpenAIChat,
        MistralLarge,
        MistralNemo,
        DeepSeekV3,
    )
}
