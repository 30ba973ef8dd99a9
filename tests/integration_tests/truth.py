"""The servers' hidden accounting: real vocabularies, chat templates the package lacks.

Each `Template` renders the `Turn` list a server received into the text its
model would read, and counts it with a real vocabulary from ``quicktok``
(the template's marker strings counting one token each). The package under
test has none of these renderings, and for every model but the OpenAI one
not the vocabulary either:

- `ChatML200k` (served as ``gpt-4o``): o200k_base, ``<|im_start|>role<|im_sep|>``
  framing, tools as the TypeScript ``namespace functions`` text in a system
  message, tool calls addressed ``to=functions.name``. The package counts
  gpt-4o with OpenAI's published per-message rules; this is an independent
  rendering of the same idea.
- `Llama31` (vLLM, ``meta-llama/Llama-3.1-8B-Instruct``): Llama 3's
  vocabulary and its Instruct template (tools in the first user turn, tool
  results under ``ipython`` JSON-encoded, one call per turn).
- `Qwen3` (Ollama, ``qwen3:8b``): Qwen's vocabulary, ChatML, tools inside
  ``<tools>`` in the system turn, results merged into ``<tool_response>``.
- `ClaudeLike` (Anthropic): cl100k_base under a Human/Assistant framing with
  XML tool calls, a tool preamble that depends on ``tool_choice`` (not the
  346 tokens the package assumes), thinking kept only inside the current
  tool loop.
- `MistralLike` (Mistral): Llama 3's vocabulary standing in for Tekken under
  Mistral's ``[INST]`` control tokens, tools listed before the last user turn.
- `GemmaLike` (Gemini): Llama 3's vocabulary under Gemma's
  ``<start_of_turn>`` framing, the system instruction and function
  declarations in the first user turn.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

import quicktok
from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tests.integration_tests.wire import Call, Tool, Turn

__all__ = [
    "TEMPLATES",
    "ChatML200k",
    "ClaudeLike",
    "GemmaLike",
    "Llama31",
    "MistralLike",
    "Qwen3",
    "Template",
]


def _dumps(value: Any, **kwargs: Any) -> str:
    return json.dumps(value, ensure_ascii=False, **kwargs)


class Template:
    """Render turns to text and count it; marker strings count one token each."""

    name: ClassVar[str]
    encoding: ClassVar[str]
    markers: ClassVar[tuple[str, ...]] = ()
    eos: ClassVar[int] = 1

    def __init__(self) -> None:
        """Load the vocabulary; markers and the vocabulary's specials split the text."""
        self._enc = quicktok.get_encoding(self.encoding)
        specials = set(self.markers) | set(self._enc.special_tokens_set)
        self._split = re.compile(
            "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
        )

    def count(self, text: str) -> int:
        """Tokens of rendered text, each marker or special string counting one."""
        total = pos = 0
        for match in self._split.finditer(text):
            if match.start() > pos:
                total += self._enc.count(text[pos : match.start()])
            total += 1
            pos = match.end()
        if pos < len(text):
            total += self._enc.count(text[pos:])
        return total

    def render(
        self,
        turns: Sequence[Turn],
        tools: Sequence[Tool],
        *,
        prompt: bool = True,
        options: dict[str, Any] | None = None,
    ) -> str:
        """The text the model reads (``prompt``: with the reply's opening)."""
        raise NotImplementedError

    def prompt_tokens(
        self,
        turns: Sequence[Turn],
        tools: Sequence[Tool],
        options: dict[str, Any] | None = None,
    ) -> int:
        """What the server bills as the prompt."""
        return self.count(self.render(turns, tools, options=options))

    def render_call(self, call: Call) -> str:
        """A tool call as the model generates it."""
        return _dumps({"name": call.name, "arguments": call.args})

    def reply_tokens(self, text: str, calls: Sequence[Call], thinking: str = "") -> int:
        """What generating a reply costs: thinking, text, calls, end token."""
        total = self.count(thinking) if thinking else 0
        total += self.count(text) if text else 0
        total += sum(self.count(self.render_call(c)) for c in calls)
        return total + self.eos


def _names(turns: Sequence[Turn]) -> dict[str, str]:
    return {c.id: c.name for t in turns for c in t.calls}


def _ts_type(schema: dict[str, Any], indent: str) -> str:
    if "enum" in schema:
        return " | ".join(_dumps(v) for v in schema["enum"])
    kind = schema.get("type")
    if "anyOf" in schema:
        return " | ".join(_ts_type(s, indent) for s in schema["anyOf"])
    if kind == "array":
        return _ts_type(schema.get("items") or {}, indent) + "[]"
    if kind == "object" and schema.get("properties"):
        return "{\n" + _ts_fields(schema, indent + "  ") + indent + "}"
    return {"integer": "number", "null": "null"}.get(str(kind), str(kind or "any"))


def _ts_fields(schema: dict[str, Any], indent: str) -> str:
    required = set(schema.get("required") or ())
    out = []
    for key, prop in (schema.get("properties") or {}).items():
        if prop.get("description"):
            out.append(f"{indent}// {prop['description']}\n")
        if "default" in prop:
            out.append(f"{indent}// default: {_dumps(prop['default'])}\n")
        opt = "" if key in required else "?"
        out.append(f"{indent}{key}{opt}: {_ts_type(prop, indent)},\n")
    return "".join(out)


class ChatML200k(Template):
    """A gpt-4o-like rendering: o200k_base under ChatML with a tools namespace."""

    name = "chatml-o200k"
    encoding = "o200k_base"
    markers = ("<|im_start|>", "<|im_sep|>", "<|im_end|>")

    def _namespace(self, tools: Sequence[Tool], options: dict[str, Any]) -> str:
        out = []
        if tools:
            out.append("# Tools\n\n## functions\n\nnamespace functions {\n\n")
            for t in tools:
                if t.description:
                    out.append(f"// {t.description}\n")
                if (t.parameters or {}).get("properties"):
                    out.append(
                        f"type {t.name} = (_: {{\n{_ts_fields(t.parameters, '')}}}) => any;\n\n"
                    )
                else:
                    out.append(f"type {t.name} = () => any;\n\n")
            out.append("} // namespace functions")
        fmt = options.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema") or {}
            if out:
                out.append("\n\n")
            out.append(
                f"# Response Formats\n\n## {spec.get('name', 'response')}\n\n"
                + _dumps(spec.get("schema") or {}, separators=(",", ":"))
            )
        return "".join(out)

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        options = options or {}
        out = []
        names = _names(turns)
        namespace = self._namespace(tools, options)
        placed = not namespace
        for i, t in enumerate(turns):
            if not placed and (t.role != "system" or i > 0):
                out.append(f"<|im_start|>system<|im_sep|>{namespace}<|im_end|>")
                placed = True
            if t.role == "assistant":
                if t.text:
                    out.append(f"<|im_start|>assistant<|im_sep|>{t.text}<|im_end|>")
                out.extend(
                    f"<|im_start|>assistant to=functions.{c.name}<|im_sep|>"
                    f"{_dumps(c.args)}<|im_end|>"
                    for c in t.calls
                )
            elif t.role == "tool":
                name = names.get(t.call_id or "", "tool")
                out.append(f"<|im_start|>functions.{name}<|im_sep|>{t.text}<|im_end|>")
            else:
                out.append(f"<|im_start|>{t.role}<|im_sep|>{t.text}<|im_end|>")
        if not placed:
            out.append(f"<|im_start|>system<|im_sep|>{namespace}<|im_end|>")
        if prompt:
            out.append("<|im_start|>assistant<|im_sep|>")
        return "".join(out)

    @override
    def render_call(self, call: Call) -> str:
        return f" to=functions.{call.name}<|im_sep|>{_dumps(call.args)}"


class Llama31(Template):
    """Llama 3.1 Instruct's template over Llama 3's vocabulary."""

    name = "llama3.1"
    encoding = "llama3"

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        turns = list(turns)
        system = (
            turns.pop(0).text.strip() if turns and turns[0].role == "system" else ""
        )
        out = ["<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"]
        if tools:
            out.append("Environment: ipython\n")
        out.append("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n")
        out.append(system + "<|eot_id|>")
        if tools:
            first = turns.pop(0).text.strip() if turns else ""
            out.append("<|start_header_id|>user<|end_header_id|>\n\n")
            out.append(
                "Given the following functions, please respond with a JSON for a "
                "function call with its proper arguments that best answers the given "
                'prompt.\n\nRespond in the format {"name": function name, "parameters": '
                "dictionary of argument name and its value}.Do not use variables.\n\n"
            )
            for t in tools:
                fn = {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                out.append(
                    _dumps({"type": "function", "function": fn}, indent=4) + "\n\n"
                )
            out.append(first + "<|eot_id|>")
        for t in turns:
            if t.role == "tool":
                out.append("<|start_header_id|>ipython<|end_header_id|>\n\n")
                out.append(_dumps(t.text) + "<|eot_id|>")
            elif t.calls:
                out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
                out.append(self.render_call(t.calls[0]) + "<|eot_id|>")
            else:
                out.append(f"<|start_header_id|>{t.role}<|end_header_id|>\n\n")
                out.append(t.text.strip() + "<|eot_id|>")
        if prompt:
            out.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
        return "".join(out)

    @override
    def render_call(self, call: Call) -> str:
        return '{"name": "' + call.name + '", "parameters": ' + _dumps(call.args) + "}"


class Qwen3(Template):
    """Qwen 3's ChatML template over Qwen's vocabulary."""

    name = "qwen3"
    encoding = "qwen3"

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        out = []
        start = 0
        if tools:
            out.append("<|im_start|>system\n")
            if turns and turns[0].role == "system":
                out.append(turns[0].text + "\n\n")
                start = 1
            out.append(
                "# Tools\n\nYou may call one or more functions to assist with the user "
                "query.\n\nYou are provided with function signatures within "
                "<tools></tools> XML tags:\n<tools>"
            )
            for t in tools:
                fn = {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                out.append("\n" + _dumps({"type": "function", "function": fn}))
            out.append(
                "\n</tools>\n\nFor each function call, return a json object with "
                "function name and arguments within <tool_call></tool_call> XML "
                'tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
                "<args-json-object>}\n</tool_call><|im_end|>\n"
            )
        elif turns and turns[0].role == "system":
            out.append(f"<|im_start|>system\n{turns[0].text}<|im_end|>\n")
            start = 1
        for i in range(start, len(turns)):
            t = turns[i]
            if t.role in ("user", "system"):
                out.append(f"<|im_start|>{t.role}\n{t.text}<|im_end|>\n")
            elif t.role == "assistant":
                out.append("<|im_start|>assistant\n" + t.text)
                for j, c in enumerate(t.calls):
                    if j or t.text:
                        out.append("\n")
                    out.append("<tool_call>\n" + self.render_call(c) + "\n</tool_call>")
                out.append("<|im_end|>\n")
            else:
                if i == 0 or turns[i - 1].role != "tool":
                    out.append("<|im_start|>user")
                out.append(f"\n<tool_response>\n{t.text}\n</tool_response>")
                if i == len(turns) - 1 or turns[i + 1].role != "tool":
                    out.append("<|im_end|>\n")
        if prompt:
            out.append("<|im_start|>assistant\n")
        return "".join(out)


class ClaudeLike(Template):
    """A Claude-like framing over cl100k_base, with its own hidden tool preamble."""

    name = "claude-like"
    encoding = "cl100k_base"
    FRAMING = 7
    PREAMBLE: ClassVar[dict[str, int]] = {
        "auto": 294,
        "none": 294,
        "any": 261,
        "tool": 261,
    }
    eos = 0

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        del tools  # counted beside the text (`prompt_tokens`)
        out: list[str] = []
        names = _names(turns)
        last_user = max(
            (i for i, t in enumerate(turns) if t.role == "user"), default=-1
        )
        role = ""
        for i, t in enumerate(turns):
            if t.role == "system":
                out.append(t.text + "\n")
                continue
            label = "Assistant" if t.role == "assistant" else "Human"
            if label != role:
                out.append(f"\n\n{label}: ")
                role = label
            if t.role == "assistant":
                if t.thinking and i > last_user:
                    # Thinking is shown again only inside the current tool loop.
                    out.append(f"<thinking>{t.thinking}</thinking>")
                out.append(t.text)
                out.extend(self.render_call(c) for c in t.calls)
            elif t.role == "tool":
                out.append(
                    "<function_results>\n<result>\n<tool_name>"
                    f"{names.get(t.call_id or '', '')}</tool_name>\n<stdout>\n"
                    f"{t.text}\n</stdout>\n</result>\n</function_results>"
                )
            else:
                out.append(t.text)
        if prompt:
            out.append("\n\nAssistant:")
        return "".join(out)

    @override
    def render_call(self, call: Call) -> str:
        params = "".join(
            f'<parameter name="{k}">{v if isinstance(v, str) else _dumps(v)}</parameter>\n'
            for k, v in call.args.items()
        )
        return f'\n<function_calls>\n<invoke name="{call.name}">\n{params}</invoke>\n</function_calls>'

    def tools_tokens(self, tools: Sequence[Tool], choice: str) -> int:
        """The hidden tool preamble (by ``tool_choice``) plus the schemas."""
        if not tools:
            return 0
        schemas = sum(
            self.count(
                _dumps(
                    {
                        "name": t.name,
                        "description": t.description,
                        "input_schema": t.parameters,
                    },
                    indent=2,
                )
            )
            for t in tools
        )
        return self.PREAMBLE.get(choice, self.PREAMBLE["auto"]) + schemas

    @override
    def prompt_tokens(self, turns, tools, options=None):
        choice = ((options or {}).get("tool_choice") or {}).get("type", "auto")
        return (
            self.FRAMING
            + self.count(self.render(turns, tools))
            + self.tools_tokens(tools, choice)
        )


class MistralLike(Template):
    """Mistral's control tokens over Llama 3's vocabulary (a stand-in for Tekken)."""

    name = "mistral-like"
    encoding = "llama3"
    markers = (
        "<s>",
        "</s>",
        "[INST]",
        "[/INST]",
        "[SYSTEM_PROMPT]",
        "[/SYSTEM_PROMPT]",
        "[AVAILABLE_TOOLS]",
        "[/AVAILABLE_TOOLS]",
        "[TOOL_CALLS]",
        "[TOOL_RESULTS]",
        "[/TOOL_RESULTS]",
    )

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        last_user = max(
            (i for i, t in enumerate(turns) if t.role == "user"), default=-1
        )
        out = ["<s>"]
        for i, t in enumerate(turns):
            if t.role == "system":
                out.append(f"[SYSTEM_PROMPT]{t.text}[/SYSTEM_PROMPT]")
            elif t.role == "user":
                if tools and i == last_user:
                    listing = [
                        {
                            "type": "function",
                            "function": {
                                "name": x.name,
                                "description": x.description,
                                "parameters": x.parameters,
                            },
                        }
                        for x in tools
                    ]
                    out.append(f"[AVAILABLE_TOOLS]{_dumps(listing)}[/AVAILABLE_TOOLS]")
                out.append(f"[INST]{t.text}[/INST]")
            elif t.role == "assistant":
                if t.text:
                    out.append(t.text)
                if t.calls:
                    out.append(
                        "[TOOL_CALLS]" + _dumps([self._call(c) for c in t.calls])
                    )
                out.append("</s>")
            else:
                out.append(
                    "[TOOL_RESULTS]"
                    + _dumps({"content": t.text, "call_id": t.call_id})
                    + "[/TOOL_RESULTS]"
                )
        return "".join(out)

    def _call(self, call: Call) -> dict[str, Any]:
        return {"name": call.name, "arguments": call.args, "id": call.id}

    @override
    def render_call(self, call: Call) -> str:
        return "[TOOL_CALLS]" + _dumps([self._call(call)])


class GemmaLike(Template):
    """A Gemma-like turn framing over Llama 3's vocabulary, standing in for Gemini.

    The system instruction and the function declarations open the first user
    turn; calls and results are JSON lines inside the model's and the
    user's turns.
    """

    name = "gemma-like"
    encoding = "llama3"
    markers = ("<bos>", "<start_of_turn>", "<end_of_turn>")

    @override
    def render(self, turns, tools, *, prompt=True, options=None):
        turns = list(turns)
        head = []
        while turns and turns[0].role == "system":
            head.append(turns.pop(0).text)
        if tools:
            declarations = [
                {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                for t in tools
            ]
            head.append("You can call these functions:\n" + _dumps(declarations))
        out = ["<bos>"]
        preamble = "\n\n".join(head)
        for i, t in enumerate(turns):
            if t.role == "assistant":
                body = t.text + "".join("\n" + self.render_call(c) for c in t.calls)
                out.append(f"<start_of_turn>model\n{body.strip()}<end_of_turn>\n")
                continue
            text = t.text
            if t.role == "tool":
                name = t.extra.get("tool_name") or t.call_id
                text = _dumps({"function_response": name, "response": t.text})
            if i == 0 and preamble:
                text = preamble + "\n\n" + text
            out.append(f"<start_of_turn>user\n{text}<end_of_turn>\n")
        if prompt:
            out.append("<start_of_turn>model\n")
        return "".join(out)

    @override
    def render_call(self, call: Call) -> str:
        return _dumps({"function_call": call.name, "args": call.args})


TEMPLATES: dict[str, type[Template]] = {
    cls.name: cls
    for cls in (ChatML200k, Llama31, Qwen3, ClaudeLike, MistralLike, GemmaLike)
}
