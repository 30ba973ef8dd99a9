"""The fake chat model: deterministic replies with usage from a hidden template."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import random
import re
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import tiktoken
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import ToolCall, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field, PrivateAttr, field_validator
from typing_extensions import Self, override

from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.messages.ai import UsageMetadata
    from langchain_core.runnables import Runnable

__all__ = ["FakeUsageChatModel"]

logger = logging.getLogger(__name__)

# Tokenizer name selecting the built-in character-class tokenizer.
_CHARCLASS = "charclass"

_MEMO_SIZE = 8192
_MIN_REPLY = 10
_MAX_REPLY = 400
_WORDS_PER_CHUNK = 3
_TOPIC_CHARS = 60
_TOOL_CALL_OVERHEAD = 3
_MEDIA_BLOCKS = frozenset(
    {"image", "image_url", "input_image", "audio", "input_audio", "video", "file"}
    | {"input_file", "document"}
)
_TOOL_USE_BLOCKS = frozenset(
    {"tool_use", "tool_call", "tool_call_chunk", "function_call", "server_tool_call"}
)
_THINKING_BLOCKS = frozenset({"thinking", "reasoning", "redacted_thinking"})

# Character classes of the fallback tokenizer, tried in order.
_CHARCLASS_RE = re.compile(
    r"(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
    r"|(?P<latin>[A-Za-z]+)|(?P<digits>[0-9]+)|(?P<word>[^\W\d_]+)"
    r"|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)
_WORD_RE = re.compile(r"\s*\S+")


def _charclass_tokens(text: str) -> int:
    """Count tokens with the deterministic character-class rule.

    Latin letter runs cost one token per 4 letters, digit runs one per 3
    digits, other-script letter runs one per 2 letters, each CJK, kana or
    hangul character one, each other symbol one; a single space is free
    (tokenizers merge it into the next word), longer whitespace costs one.
    """
    total = 0
    for match in _CHARCLASS_RE.finditer(text):
        kind = match.lastgroup
        size = match.end() - match.start()
        if kind == "latin":
            total += -(-size // 4)
        elif kind == "digits":
            total += -(-size // 3)
        elif kind == "word":
            total += -(-size // 2)
        elif kind == "space":
            total += 0 if match.group() == " " else 1
        else:
            total += 1
    return total


def _load_encoding(name: str) -> tiktoken.Encoding:
    """Load a tiktoken encoding (a seam: tests replace it to simulate offline)."""
    return tiktoken.get_encoding(name)


class _Tokenizer:
    """A memoized token counter for one encoding name; thread-safe."""

    __slots__ = ("count", "name", "raw")

    def __init__(self, name: str) -> None:
        self.name = name
        raw: Callable[[str], int] = _charclass_tokens
        if name != _CHARCLASS:
            try:
                encoding = _load_encoding(name)
            except Exception as err:  # noqa: BLE001 - any load failure (offline, no cache) degrades the same way
                logger.warning(
                    "tiktoken encoding %r could not be loaded (%s); the fake model "
                    "counts with its character-class tokenizer instead. Point "
                    "TIKTOKEN_CACHE_DIR at a folder holding the encoding to fix it.",
                    name,
                    err,
                )
            else:

                def raw(text: str) -> int:
                    # encode_ordinary: user text may contain "<|endoftext|>".
                    return len(encoding.encode_ordinary(text))

        self.raw = raw
        # Memoized: prompts repeat message texts call after call.
        self.count: Callable[[str], int] = functools.lru_cache(maxsize=_MEMO_SIZE)(raw)


_TOKENIZERS: dict[str, _Tokenizer] = {}
_TOKENIZERS_LOCK = threading.RLock()


def _get_tokenizer(name: str) -> _Tokenizer:
    """Return the shared tokenizer for ``name``, loading it once."""
    tokenizer = _TOKENIZERS.get(name)
    if tokenizer is None:
        with _TOKENIZERS_LOCK:
            tokenizer = _TOKENIZERS.get(name)
            if tokenizer is None:
                tokenizer = _TOKENIZERS[name] = _Tokenizer(name)
    return tokenizer


def _canonical_json(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


_ROLES: tuple[tuple[type[BaseMessage], str], ...] = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (SystemMessage, "system"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
)


def _role(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    for cls, role in _ROLES:
        if isinstance(message, cls):
            return role
    return message.type


def _text_of(content: str | list[str | dict[str, Any]]) -> str:
    """Join the text blocks of a content (for seeding replies, not counting)."""
    if isinstance(content, str):
        return content
    parts = [
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in content
        if isinstance(block, str) or block.get("type") == "text"
    ]
    return "\n".join(parts)


def _as_openai_tools(tools: Sequence[Any] | None) -> list[dict[str, Any]]:
    # convert_to_openai_tool returns an already converted tool unchanged.
    return [convert_to_openai_tool(tool) for tool in tools or ()]


def _schema_of_response_format(response_format: Any) -> dict[str, Any] | None:
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if not isinstance(response_format, dict):
        return None
    inner = response_format.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    schema = schema if isinstance(schema, dict) else response_format.get("schema")
    if isinstance(schema, dict):
        return cast("dict[str, Any]", schema)
    return response_format if "properties" in response_format else None


def _example_value(schema: dict[str, Any], rng: random.Random) -> Any:
    """Build a deterministic value that validates against a simple JSON schema."""
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        usable = [o for o in options if o.get("type") != "null"] or options
        return _example_value(usable[0], rng)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "array":
        return [_example_value(schema.get("items", {}), rng)]
    if kind == "object":
        return _example_object(schema, rng)
    return _example_scalar(kind, rng)


def _example_scalar(kind: str, rng: random.Random) -> Any:
    scalars: dict[str, Callable[[], Any]] = {
        "string": lambda: rng.choice(_VOCABULARY),
        "integer": lambda: rng.randint(1, 100),
        "number": lambda: round(rng.uniform(0, 100), 2),
        "boolean": lambda: True,
    }
    make = scalars.get(kind)
    return None if make is None else make()


def _example_object(schema: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    names = schema.get("required") or list(properties)
    return {name: _example_value(properties.get(name, {}), rng) for name in names}


class _CallCounter:
    """A locked call counter (one object: pydantic private attributes are slow)."""

    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    def __deepcopy__(self, memo: dict[int, Any]) -> _CallCounter:
        # Locks cannot be copied; a copied model starts counting afresh.
        return _CallCounter()


@dataclass(frozen=True, slots=True)
class _Reply:
    """Everything one call answers, shared by the invoke and stream paths."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    text_tokens: int
    output_tokens: int
    finish_reason: str
    message_id: str


class FakeUsageChatModel(BaseChatModel):
    """An offline chat model whose reported usage comes from a hidden tokenizer.

    Replies are deterministic: seeded by the prompt's content (never by global
    random state), 10 to 400 tokens long, sometimes with code, JSON or a little
    CJK. ``usage_metadata.input_tokens`` always equals `true_prompt_tokens` for
    the prompt; the rule is in this module's docstring. The defaults mimic an
    Anthropic-like model; `openai_like` builds an OpenAI-like one.

    Streaming follows ``stream_usage``: ``"final"`` puts the usage on the last
    chunk only, so LangChain's merged message carries the true usage;
    ``"cumulative"`` puts the running usage on every chunk (as Gemini and vLLM
    do), so the merged message carries the SUM of the chunks: its
    ``input_tokens`` is the true count times the number of chunks. That inflated
    total is what a usage-learning handler must detect and reject.

    If the ``tokenizer`` encoding cannot be loaded (offline and no
    ``TIKTOKEN_CACHE_DIR``), the model logs one warning and counts with a
    deterministic character-class tokenizer instead; ``tokenizer="charclass"``
    selects that tokenizer on purpose.

    Message ids are random per call, like a provider's; everything else
    (text, tool-call arguments and ids, counts) repeats for the same prompt and
    call number. As with a real model, a ``tool_choice`` that forces a tool
    makes an agent loop forever; use ``tool_calls_every`` for agent tests.

    Thread-safe: the call counter that cycles ``responses`` and paces
    ``tool_calls_every`` is locked, so ``batch`` and ``abatch`` are safe (which
    concurrent call gets which response is then up to the scheduler).

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal.testing._model import FakeUsageChatModel

        llm = FakeUsageChatModel(model="fake-claude", reasoning_tokens=12)
        prompt = [HumanMessage("Summarize the plot of Hamlet.")]
        reply = llm.invoke(prompt)
        assert reply.usage_metadata["input_tokens"] == llm.true_prompt_tokens(prompt)
        assert reply.response_metadata["model_name"] == "fake-claude-20250101"
        ```
    """

    model: str = "fake-claude"
    """Model name as configured; reported as ``ls_model_name``."""
    provider: str = "anthropic"
    """Reported as ``ls_provider`` and ``response_metadata["model_provider"]``."""
    snapshot: str | None = None
    """Dated model name the response reports; default ``f"{model}-20250101"``."""
    responses: list[str] | None = Field(default=None, min_length=1)
    """Replies to cycle through; default: replies derived from the prompt."""
    tokenizer: str = "cl100k_base"
    """Hidden tokenizer: a tiktoken encoding name, or ``"charclass"``."""
    framing_tokens: int = Field(default=7, ge=0)
    """Hidden tokens added once per prompt (BOS, template header, reply priming)."""
    tokens_per_message: int = Field(default=5, ge=0)
    """Hidden template tokens added per message."""
    tool_preamble_tokens: int = Field(default=300, ge=0)
    """Hidden system prompt added once when tools are bound."""
    tokens_per_tool: int = Field(default=0, ge=0)
    """Hidden tokens added per bound tool, on top of its schema's tokens."""
    image_tokens: int = Field(default=258, ge=0)
    """Flat cost of each image, audio, video or file block."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """Reported as ``output_token_details.reasoning``, included in output."""
    cache_read_tokens: int = Field(default=0, ge=0)
    """Reported as ``input_token_details.cache_read`` (capped at the input)."""
    stream_usage: Literal["final", "cumulative", "none"] = "final"
    """Where streaming reports usage: last chunk, every chunk cumulatively, none."""
    report_usage: bool = True
    """``False``: no ``usage_metadata`` at all, like many OpenAI-compatible servers."""
    tool_calls_every: int = Field(default=0, ge=0)
    """With tools bound, every k-th call (k > 0) calls the first tool, unless the
    last message is a tool result (so agent loops end)."""
    fail_with: type[BaseException] | BaseException | None = None
    """Raise this (a class or an instance) instead of answering."""
    latency: float = Field(default=0.0, ge=0.0)
    """Seconds ``ainvoke``/``astream`` sleep before answering; sync never sleeps."""
    temperature: float | None = None
    """Reported as ``ls_temperature``; replies do not depend on it."""

    _calls: _CallCounter = PrivateAttr(default_factory=_CallCounter)

    @field_validator("tokenizer")
    @classmethod
    def _known_tokenizer(cls, value: str) -> str:
        known = [*tiktoken.list_encoding_names(), _CHARCLASS]
        if value not in known:
            msg = f"Unknown tokenizer {value!r}; expected one of {', '.join(known)}."
            raise ConfigError(msg)
        return value

    @classmethod
    def openai_like(cls, model: str = "gpt-4o", **kwargs: Any) -> Self:
        """Build a fake whose hidden accounting follows OpenAI's chat format.

        With ``o200k_base``: 3 tokens per message, plus the role's and content's
        tokens, plus 1 + the name's tokens per name, plus 3 reply-priming tokens
        per prompt; each bound tool costs its JSON schema's tokens plus 12; each
        image costs 85 (a low-detail image). Keyword arguments override any
        field.

        Example:
            ```python
            from langchain_core.messages import HumanMessage
            from langchain_tokencal.testing._model import FakeUsageChatModel

            llm = FakeUsageChatModel.openai_like("gpt-4o-mini")
            reply = llm.invoke([HumanMessage("hi")])
            assert reply.response_metadata["model_name"] == "gpt-4o-mini-2025-01-01"
            ```
        """
        params: dict[str, Any] = {
            "provider": "openai",
            "snapshot": f"{model}-2025-01-01",
            "tokenizer": "o200k_base",
            "framing_tokens": 3,
            "tokens_per_message": 3,
            "tool_preamble_tokens": 0,
            "tokens_per_tool": 12,
            "image_tokens": 85,
        }
        params.update(kwargs)
        return cls(model=model, **params)

    @property
    @override
    def _llm_type(self) -> str:
        return "fake-usage-chat-model"

    @property
    @override
    def _identifying_params(self) -> Mapping[str, Any]:
        # Everything that changes the answer or the counts, so LLM caches and
        # traces tell differently configured fakes apart.
        return {
            "model": self.model,
            "provider": self.provider,
            "snapshot": self._snapshot,
            "tokenizer": self.tokenizer,
            "framing_tokens": self.framing_tokens,
            "tokens_per_message": self.tokens_per_message,
            "tool_preamble_tokens": self.tool_preamble_tokens,
            "tokens_per_tool": self.tokens_per_tool,
            "image_tokens": self.image_tokens,
            "stream_usage": self.stream_usage,
        }

    @override
    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        model = kwargs.get("model")
        params = LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=model if isinstance(model, str) else self.model,
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            params["ls_temperature"] = temperature
        if stop:
            params["ls_stop"] = stop
        return params

    @property
    def _snapshot(self) -> str:
        return self.snapshot or f"{self.model}-20250101"

    @property
    def _count(self) -> Callable[[str], int]:
        return _get_tokenizer(self.tokenizer).count

    def true_prompt_tokens(
        self,
        messages: Sequence[BaseMessage],
        tools: Sequence[Any] | None = None,
        *,
        response_format: Any = None,
    ) -> int:
        """Return exactly what this model reports as ``input_tokens`` for a prompt.

        Args:
            messages: The prompt.
            tools: Tools as bound (any format `bind_tools` accepts).
            response_format: A JSON schema (dict or pydantic class) passed as
                the ``response_format`` keyword, if any.

        Returns:
            The hidden template's count (see the module docstring).

        Example:
            ```python
            from langchain_core.messages import HumanMessage
            from langchain_tokencal.testing._model import FakeUsageChatModel

            llm = FakeUsageChatModel(tokenizer="charclass")
            assert llm.true_prompt_tokens([HumanMessage("hello")]) == 7 + 5 + 1 + 2
            ```
        """
        count = self._count
        total = self.framing_tokens
        total += sum(self._message_tokens(message, count) for message in messages)
        openai_tools = _as_openai_tools(tools)
        if openai_tools:
            total += self.tool_preamble_tokens
            total += sum(
                count(_canonical_json(tool)) + self.tokens_per_tool
                for tool in openai_tools
            )
        if response_format is not None:
            if isinstance(response_format, type) and issubclass(
                response_format, BaseModel
            ):
                response_format = response_format.model_json_schema()
            total += count(_canonical_json(response_format))
        return total

    def _message_tokens(self, message: BaseMessage, count: Callable[[str], int]) -> int:
        total = self.tokens_per_message + count(_role(message))
        total += self._content_tokens(message.content, count)
        if message.name:
            total += count(message.name) + 1
        if isinstance(message, AIMessage):
            total += sum(
                count(call["name"])
                + count(_canonical_json(call["args"]))
                + _TOOL_CALL_OVERHEAD
                for call in message.tool_calls
            )
        elif isinstance(message, ToolMessage):
            total += count(message.tool_call_id)
        return total

    def _content_tokens(
        self, content: str | list[str | dict[str, Any]], count: Callable[[str], int]
    ) -> int:
        if isinstance(content, str):
            return count(content)
        total = 0
        for block in content:
            if isinstance(block, str):
                total += count(block)
                continue
            kind = block.get("type")
            if kind == "text":
                total += count(str(block.get("text", "")))
            elif kind in _MEDIA_BLOCKS:
                total += self.image_tokens
            elif kind in _THINKING_BLOCKS:
                text = block.get("thinking") or block.get("reasoning") or ""
                total += count(str(text or block.get("text", "")))
            elif kind not in _TOOL_USE_BLOCKS:
                total += count(_canonical_json(block))
        return total

    @override
    def get_num_tokens(self, text: str) -> int:
        """Count a text's tokens with the hidden tokenizer.

        Example:
            ```python
            from langchain_tokencal.testing._model import FakeUsageChatModel

            assert FakeUsageChatModel(tokenizer="charclass").get_num_tokens("hi") == 1
            ```
        """
        return self._count(text)

    @override
    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Return `true_prompt_tokens`: this model is its own exact counter.

        That makes the fake an oracle for ``trim_messages(token_counter=llm)``.

        Example:
            ```python
            from langchain_core.messages import HumanMessage, trim_messages
            from langchain_tokencal.testing._model import FakeUsageChatModel

            llm = FakeUsageChatModel()
            history = [HumanMessage("a long question " * 50), HumanMessage("hi")]
            kept = trim_messages(history, max_tokens=40, token_counter=llm)
            assert llm.get_num_tokens_from_messages(kept) <= 40
            ```
        """
        return self.true_prompt_tokens(messages, tools)

    @override
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, converted to OpenAI's format, as real integrations do.

        The converted tools land in ``invocation_params["tools"]`` of every
        callback, and they cost input tokens (see the module docstring). The
        model answers with a tool call when ``tool_choice`` forces one
        (``"any"``, ``"required"``, ``True`` or a tool's name) or when
        ``tool_calls_every`` says so; the arguments are deterministic values
        that validate against the tool's schema, so ``with_structured_output``
        works too.

        Args:
            tools: Tools in any format `convert_to_openai_tool` accepts.
            tool_choice: ``None``/``"auto"``/``"none"``, ``"any"``/
                ``"required"``/``True``, a tool name, or an OpenAI- or
                Anthropic-style dict naming a tool.
            **kwargs: Further keyword arguments to bind.

        Returns:
            The model with ``tools`` (and ``tool_choice``) bound.

        Example:
            ```python
            from langchain_core.messages import HumanMessage
            from langchain_tokencal.testing._model import FakeUsageChatModel

            def get_weather(city: str) -> str:
                \"\"\"Get the weather for a city.\"\"\"
                return "sunny"

            llm = FakeUsageChatModel().bind_tools([get_weather], tool_choice="any")
            reply = llm.invoke([HumanMessage("Weather in Paris?")])
            assert reply.tool_calls[0]["name"] == "get_weather"
            ```
        """
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=_as_openai_tools(tools), **kwargs)

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> _Reply:
        """Decide the answer and its true usage; the core of every call path."""
        if self.fail_with is not None:
            if isinstance(self.fail_with, BaseException):
                raise self.fail_with
            msg = f"{type(self).__name__} {self.model!r} was told to fail."
            raise self.fail_with(msg)
        call = self._calls.next()
        count = self._count
        tools = _as_openai_tools(kwargs.get("tools"))
        response_format = kwargs.get("response_format")
        input_tokens = self.true_prompt_tokens(
            messages, tools, response_format=response_format
        )
        digest = _prompt_digest(messages)
        rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - fake replies, not security
        tool = self._tool_to_call(tools, kwargs.get("tool_choice"), messages, call)
        calls: tuple[ToolCall, ...] = ()
        if tool is not None:
            function = tool["function"]
            args = _example_object(function.get("parameters", {}), rng)
            seed = digest + str(call).encode()
            call_id = f"call_{hashlib.blake2b(seed, digest_size=12).hexdigest()}"
            calls = (tool_call(name=function["name"], args=args, id=call_id),)
            text = ""
        elif self.responses:
            text = self.responses[(call - 1) % len(self.responses)]
        elif (schema := _schema_of_response_format(response_format)) is not None:
            text = json.dumps(_example_value(schema, rng), ensure_ascii=False)
        else:
            # Uncached counting: the drafts of a reply would only flood the memo.
            text = _compose_reply(
                _topic(messages), rng, _get_tokenizer(self.tokenizer).raw
            )
        if stop:
            cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
            text = text if cut < 0 else text[:cut]
        text_tokens = count(text)
        output_tokens = text_tokens + self.reasoning_tokens
        output_tokens += sum(
            count(c["name"]) + count(_canonical_json(c["args"])) + _TOOL_CALL_OVERHEAD
            for c in calls
        )
        return _Reply(
            text=text,
            tool_calls=calls,
            input_tokens=input_tokens,
            text_tokens=text_tokens,
            output_tokens=output_tokens,
            finish_reason="tool_calls" if calls else "stop",
            message_id=f"msg_fake_{uuid.uuid4().hex[:24]}",
        )

    def _tool_to_call(
        self,
        tools: list[dict[str, Any]],
        tool_choice: Any,
        messages: list[BaseMessage],
        call: int,
    ) -> dict[str, Any] | None:
        if not tools or tool_choice in (None, False, "auto", "none"):
            every = self.tool_calls_every
            ends_with_result = bool(messages) and isinstance(messages[-1], ToolMessage)
            due = every > 0 and call % every == 0 and not ends_with_result
            return tools[0] if tools and tool_choice != "none" and due else None
        if tool_choice in (True, "any", "required"):
            return tools[0]
        name = tool_choice
        if isinstance(tool_choice, dict):
            name = tool_choice.get("function", {}).get("name") or tool_choice.get(
                "name"
            )
        for tool in tools:
            if tool["function"]["name"] == name:
                return tool
        known = ", ".join(tool["function"]["name"] for tool in tools)
        msg = f"tool_choice {tool_choice!r} names no bound tool; bound tools: {known}."
        raise ConfigError(msg)

    def _usage(self, reply: _Reply, output_tokens: int) -> UsageMetadata:
        # A cast: mypy, checking as Python 3.10, misses langchain-core's
        # typing.NotRequired and would demand the optional detail keys.
        usage = cast(
            "UsageMetadata",
            {
                "input_tokens": reply.input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": reply.input_tokens + output_tokens,
            },
        )
        cache_read = min(self.cache_read_tokens, reply.input_tokens)
        if cache_read:
            usage["input_token_details"] = {"cache_read": cache_read}
        if self.reasoning_tokens:
            usage["output_token_details"] = {"reasoning": self.reasoning_tokens}
        return usage

    def _response_metadata(self, reply: _Reply) -> dict[str, Any]:
        return {
            "model_name": self._snapshot,
            "model_provider": self.provider,
            "finish_reason": reply.finish_reason,
        }

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages, stop, kwargs)
        message = AIMessage(
            content=reply.text,
            tool_calls=list(reply.tool_calls),
            id=reply.message_id,
            response_metadata=self._response_metadata(reply),
            usage_metadata=(
                self._usage(reply, reply.output_tokens) if self.report_usage else None
            ),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    @override
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._generate(messages, stop, **kwargs)

    @override
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(self._reply(messages, stop, kwargs))

    @override
    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.latency:
            await asyncio.sleep(self.latency)
        for chunk in self._chunks(self._reply(messages, stop, kwargs)):
            yield chunk

    def _chunks(self, reply: _Reply) -> Iterator[ChatGenerationChunk]:
        """Split a reply into chunks carrying usage as ``stream_usage`` says."""
        pieces = _split_words(reply.text)
        cumulative = self.report_usage and self.stream_usage == "cumulative"
        provider = {"model_provider": self.provider}
        sent = 0
        for piece in pieces:
            sent += len(piece)
            usage = None
            if cumulative:
                # Running totals, as Gemini and vLLM stream them: each chunk
                # repeats the input and the output so far.
                so_far = self.reasoning_tokens + reply.text_tokens * sent // len(
                    reply.text
                )
                usage = self._usage(reply, so_far)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece,
                    id=reply.message_id,
                    response_metadata=dict(provider),
                    usage_metadata=usage,
                )
            )
        for index, call in enumerate(reply.tool_calls):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    id=reply.message_id,
                    response_metadata=dict(provider),
                    tool_call_chunks=[
                        tool_call_chunk(
                            name=call["name"],
                            args=json.dumps(call["args"], ensure_ascii=False),
                            id=call["id"],
                            index=index,
                        )
                    ],
                    usage_metadata=(
                        self._usage(reply, reply.output_tokens) if cumulative else None
                    ),
                )
            )
        final = self.report_usage and self.stream_usage != "none"
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=reply.message_id,
                response_metadata=self._response_metadata(reply),
                usage_metadata=(
                    self._usage(reply, reply.output_tokens) if final else None
                ),
                chunk_position="last",
            )
        )


def _split_words(text: str) -> list[str]:
    """Split a text into stream pieces of a few words that join back exactly."""
    words = _WORD_RE.findall(text)
    if not words:
        return [text] if text else []
    words[-1] += text[sum(map(len, words)) :]
    return [
        "".join(words[i : i + _WORDS_PER_CHUNK])
        for i in range(0, len(words), _WORDS_PER_CHUNK)
    ]


def _prompt_digest(messages: Sequence[BaseMessage]) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    for message in messages:
        hasher.update(_role(message).encode())
        hasher.update(b"\x1f")
        hasher.update(_text_of(message.content).encode("utf-8", "surrogatepass"))
        if isinstance(message, AIMessage) and message.tool_calls:
            hasher.update(_canonical_json(message.tool_calls).encode())
        hasher.update(b"\x1e")
    return hasher.digest()


def _topic(messages: Sequence[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            words = _text_of(message.content).split()[:8]
            topic = " ".join(words)[:_TOPIC_CHARS].strip(" .?!,:;")
            if topic:
                return topic
    return "your request"


_VOCABULARY = (
    "model", "token", "budget", "context", "window", "request", "answer", "cache",
    "latency", "prompt", "history", "summary", "agent", "tool", "schema", "value",
    "result", "error", "retry", "limit", "count", "message", "system", "user",
    "simple", "careful", "quick", "stable", "large", "small", "recent", "exact",
    "estimate", "measure", "compare", "update", "return", "collect", "report",
    "improve", "reduce", "the", "a", "of", "to", "and", "in", "for", "with", "on",
    "this", "that", "each", "every", "because", "while", "after", "before", "so",
    "data", "file", "queue", "server", "client", "record", "stream", "chunk",
    "weather", "city", "river", "garden", "market", "library", "journey", "bridge",
    "morning", "evening", "question", "reason", "pattern", "detail", "example",
)  # fmt: skip
_CJK_SENTENCES = (
    "这个问题的答案取决于上下文的长度。",
    "我们可以先统计令牌再决定是否需要总结。",
    "東京の天気は晴れのち曇りです。",
    "ありがとうございます。結果を確認しました。",
    "모델은 응답마다 사용량을 보고합니다.",
)
_OPENERS = (
    "Here is what I found about {topic}.",
    "Good question about {topic}; let me walk through it.",
    "Regarding {topic}, the short answer is below.",
    "Let me think about {topic} step by step.",
)


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_VOCABULARY, k=rng.randint(6, 18))
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "!", "?"))


def _prose(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(1, 4)))


def _bullets(rng: random.Random) -> str:
    return "\n".join(f"- {_sentence(rng)}" for _ in range(rng.randint(2, 5)))


def _code_block(rng: random.Random) -> str:
    name, arg, other = (rng.choice(_VOCABULARY[:41]) for _ in range(3))
    limit = rng.randint(2, 4096)
    return (
        f"```python\ndef {name}_{other}({arg}: list[int]) -> int:\n"
        f'    """Return the clipped total of {arg}."""\n'
        f"    return min(sum({arg}), {limit})\n```"
    )


def _json_block(rng: random.Random) -> str:
    keys = rng.sample(_VOCABULARY[:41], rng.randint(2, 5))
    payload = {
        key: rng.choice((rng.randint(0, 999), rng.choice(_VOCABULARY))) for key in keys
    }
    return f"```json\n{json.dumps(payload, indent=2)}\n```"


def _cjk(rng: random.Random) -> str:
    return rng.choice(_CJK_SENTENCES)


_PARTS = (_prose, _prose, _prose, _bullets, _code_block, _json_block, _cjk)


def _compose_reply(topic: str, rng: random.Random, count: Callable[[str], int]) -> str:
    """Build a reply of a log-uniform target length between 10 and 400 tokens."""
    target = _MIN_REPLY * math.exp(rng.random() * math.log(_MAX_REPLY / _MIN_REPLY))
    parts = [f"{rng.choice(_OPENERS).format(topic=topic)} {_sentence(rng)}"]
    # Parts are counted one by one (plus one for the blank line joining them):
    # re-encoding the growing draft each time cost most of a call.
    tokens = count(parts[0])
    while tokens < target:
        part = rng.choice(_PARTS)(rng)
        part_tokens = count(part) + 1
        if tokens + part_tokens > _MAX_REPLY:
            break
        parts.append(part)
        tokens += part_tokens
    text = "\n\n".join(parts)
    while len(parts) > 1 and count(text) > _MAX_REPLY:
        parts.pop()
        text = "\n\n".join(parts)
    return text
