"""Offline LangChain chat models standing in for real providers, with hidden accounting.

`HiddenChatModel` is a `BaseChatModel` that answers deterministically (a real
text from the corpus, in the language of the last user message, or a tool
call) and reports what the provider would: ``usage_metadata`` with
``input_tokens`` from its `Template` (the true prompt count) and
``output_tokens`` (the reply's tokens), ``response_metadata["model_name"]``
(the served name, as a server answers it) and ``model_provider``, and the
LangSmith params (``ls_provider``, ``ls_model_name``) a handler keys models by.
The tokenizer and template are never visible to the code under test.

Tool policy (with tools bound): after a user message the model calls a tool;
after tool results it calls another until a per-question number of rounds
(1-4, derived from the question's hash) is reached, then answers in text.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr
from typing_extensions import override

from benchmarks.accuracy.templates import TEMPLATES, Template, normalize

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.runnables import Runnable

    from benchmarks.accuracy.corpus import Corpus

__all__ = [
    "PROVIDERS",
    "HiddenChatModel",
    "ProviderSpec",
    "digest",
    "make_model",
    "script_of",
]

_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
)
_CODE_HINT = re.compile(
    r"^\s*(def |class |import |from \S+ import|return\b|if .*:$)", re.MULTILINE
)


def script_of(text: str) -> str:
    """The corpus kind a text is mostly written in (the reply language)."""
    sample = text[:4000]
    for kind, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) >= 0.1 * max(len(sample), 1):
            return kind
    return "code" if len(_CODE_HINT.findall(sample)) >= 3 else "en"


class ProviderSpec:
    """A benchmark provider: its name, LangChain provider key and template."""

    def __init__(self, model: str, provider: str, template: str, served: str) -> None:
        self.model = model
        self.provider = provider
        self.template = template
        self.served = served

    def __repr__(self) -> str:
        return f"ProviderSpec({self.model!r}, {self.provider!r}, {self.template!r})"


PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "llama-3.1-8b", "vllm", "llama3.1", "meta-llama/Llama-3.1-8B-Instruct"
    ),
    ProviderSpec("qwen3-8b", "vllm", "qwen3", "Qwen/Qwen3-8B"),
    ProviderSpec("gpt-4o", "openai", "openai", "gpt-4o-2024-08-06"),
    ProviderSpec("claude-like", "anthropic", "claude-like", "claude-like-20250514"),
    ProviderSpec("gpt-oss-20b", "ollama", "harmony", "gpt-oss:20b"),
    ProviderSpec(
        "mistral-large-latest", "mistralai", "mistral-v7", "mistral-large-2411"
    ),
    ProviderSpec(
        "open-mistral-nemo", "mistralai", "mistral-tekken", "open-mistral-nemo-2407"
    ),
    ProviderSpec("deepseek-chat", "deepseek", "deepseek-v3", "deepseek-chat"),
)


def digest(messages: Sequence[BaseMessage]) -> bytes:
    """A content hash of a prompt (what a reply is seeded by)."""
    h = hashlib.blake2b(digest_size=16)
    for m in messages:
        h.update(m.type.encode())
        h.update(str(m.content).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.digest()


def _example(schema: dict[str, Any], rng: random.Random, words: Sequence[str]) -> Any:
    """A deterministic value that validates against a (simple) JSON schema."""
    if "enum" in schema:
        return schema["enum"][rng.randrange(len(schema["enum"]))]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], rng, words)
    kind = schema.get("type", "string")
    if kind == "object":
        required = set(schema.get("required", ()))
        return {
            k: _example(v, rng, words)
            for k, v in schema.get("properties", {}).items()
            if k in required or rng.random() < 0.5
        }
    if kind == "array":
        return [
            _example(schema.get("items", {}), rng, words)
            for _ in range(rng.randint(1, 3))
        ]
    scalars: dict[str, Callable[[], Any]] = {
        "integer": lambda: rng.randint(1, 500),
        "number": lambda: round(rng.uniform(0, 1000), 2),
        "boolean": lambda: rng.random() < 0.5,
    }
    make = scalars.get(kind)
    return (
        make()
        if make
        else " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
    )


class HiddenChatModel(BaseChatModel):
    """A deterministic offline chat model reporting true usage from a hidden template."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    provider: str
    served: str
    template_name: str
    corpus: Any = Field(default=None, repr=False)  # repr: LangChain serializes it
    reply_tokens: tuple[int, int] = (15, 500)
    # Called with the messages before answering: `batchorder` holds a call
    # here to make a batch complete in a chosen order.
    gate: Any = Field(default=None, repr=False)

    _template: Template = PrivateAttr()
    _words: list[str] = PrivateAttr()

    @override
    def model_post_init(self, context: Any, /) -> None:
        self._template = TEMPLATES[self.template_name]()
        pool = (
            self.corpus.pools["en"] if self.corpus is not None else ["alpha beta gamma"]
        )
        words = sorted({w for p in pool[:400] for w in re.findall(r"[a-z]{4,12}", p)})
        self._words = words or ["value"]

    @property
    def template(self) -> Template:
        return self._template

    @property
    @override
    def _llm_type(self) -> str:
        return "benchmark-hidden-chat"

    @property
    @override
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model}

    @override
    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        return LangSmithParams(
            ls_provider=self.provider, ls_model_name=self.model, ls_model_type="chat"
        )

    @override
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def true_prompt_tokens(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None
    ) -> int:
        return self._template.prompt_tokens(normalize(messages), tools)

    def _rounds_wanted(self, messages: Sequence[BaseMessage]) -> tuple[int, int]:
        """(tool rounds wanted for the current question, rounds done)."""
        done = 0
        for m in reversed(messages):
            if isinstance(m, HumanMessage):
                seed = hashlib.blake2b(str(m.content).encode(), digest_size=4).digest()
                return 1 + seed[0] % 4, done
            if isinstance(m, AIMessage) and m.tool_calls:
                done += 1
        return 1, done

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.gate is not None:
            self.gate(messages)
        tools = kwargs.get("tools") or None
        key = digest(messages)
        rng = random.Random(int.from_bytes(key[:8], "big"))
        input_tokens = self.true_prompt_tokens(messages, tools)
        calls: list[dict[str, Any]] = []
        text = ""
        wanted, done = self._rounds_wanted(messages)
        if (
            tools
            and done < wanted
            and (not messages or not isinstance(messages[-1], AIMessage))
        ):
            # Llama 3.1's template allows one call per turn; the others may call two.
            n = 1 if self.template_name == "llama3.1" or rng.random() < 0.7 else 2
            for i in range(n):
                fn = tools[rng.randrange(len(tools))]["function"]
                args = _example(fn.get("parameters", {}), rng, self._words)
                call_id = self._call_id(key + bytes([i]))
                calls.append(
                    {
                        "name": fn["name"],
                        "args": args,
                        "id": call_id,
                        "type": "tool_call",
                    }
                )
        else:
            last_user = next(
                (
                    m
                    for m in reversed(messages)
                    if isinstance(m, (HumanMessage, ToolMessage))
                ),
                None,
            )
            kind = script_of(str(last_user.content)) if last_user is not None else "en"
            lo, hi = self.reply_tokens
            target = int(lo * (hi / lo) ** rng.random())
            text = self._compose(kind, rng, target)
        output = self._template.completion_tokens(
            text, [(c["name"], c["args"]) for c in calls]
        )
        message = AIMessage(
            content=text,
            tool_calls=calls,
            id="run-" + key.hex()[:24],
            usage_metadata={
                "input_tokens": input_tokens,
                "output_tokens": output,
                "total_tokens": input_tokens + output,
            },
            response_metadata={
                "model_name": self.served,
                "model_provider": self.provider,
                "finish_reason": "tool_calls" if calls else "stop",
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _call_id(self, seed: bytes) -> str:
        raw = hashlib.blake2b(seed, digest_size=12).digest()
        length = self._template.call_id_length
        if length is None:
            return "call_" + raw.hex()
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        n = int.from_bytes(raw, "big")
        return "".join(alphabet[(n >> (6 * k)) % 62] for k in range(length))

    def _compose(self, kind: str, rng: random.Random, tokens: int) -> str:
        corpus: Corpus | None = self.corpus
        if corpus is None:
            return "ok"
        chars = {"en": 4, "code": 3, "json": 3}.get(kind, 2) * tokens
        if kind == "code":
            intro = corpus.text("en", rng, min(chars // 3, 300))
            return f"{intro}\n\n```python\n{corpus.text('code', rng, chars)}\n```"
        return corpus.text(kind, rng, chars)


def make_model(spec: ProviderSpec, corpus: Corpus) -> HiddenChatModel:
    """The hidden chat model of a provider spec."""
    return HiddenChatModel(
        model=spec.model,
        provider=spec.provider,
        served=spec.served,
        template_name=spec.template,
        corpus=corpus,
    )
