"""The fake chat model: a `BaseChatModel` with deterministic replies and true usage.

`FakeUsageChatModel` ties the hidden parts together: its fields configure the
hidden template (`_template`) and tokenizer (`_tokenizers`); each call decides
a reply (`_replies`) and answers it as a message or a stream (`_answer`).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr, field_validator
from typing_extensions import Self, override

from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing._answer import Reply, UsageMode
from langchain_tokencal.testing._replies import (
    choose_tool,
    compose_reply,
    example_value,
    make_tool_call,
    prompt_digest,
    schema_of_response_format,
    topic,
)
from langchain_tokencal.testing._template import ChatTemplate, as_openai_tools
from langchain_tokencal.testing._tokenizers import get_tokenizer, tokenizer_names

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence

    from langchain_core.callbacks import (
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.messages.tool import ToolCall
    from langchain_core.outputs import ChatGenerationChunk
    from langchain_core.runnables import Runnable

__all__ = ["FakeUsageChatModel"]


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


class FakeUsageChatModel(BaseChatModel):
    """An offline chat model whose reported usage comes from a hidden tokenizer.

    Replies are deterministic: seeded by the prompt's content (never by global
    random state), 10 to 400 tokens long, sometimes with code, JSON or a little
    CJK. ``usage_metadata.input_tokens`` always equals `true_prompt_tokens` for
    the prompt; the rule is in `langchain_tokencal.testing`'s docstring. The
    defaults mimic an Anthropic-like model; `openai_like` builds an OpenAI-like
    one.

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
        from langchain_tokencal.testing import FakeUsageChatModel

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
    stream_usage: UsageMode = "final"
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
        known = tokenizer_names()
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
            from langchain_tokencal.testing import FakeUsageChatModel

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
    def _usage_mode(self) -> UsageMode:
        return self.stream_usage if self.report_usage else "none"

    @property
    def _snapshot(self) -> str:
        return self.snapshot or f"{self.model}-20250101"

    @property
    def _count(self) -> Callable[[str], int]:
        return get_tokenizer(self.tokenizer).count

    @property
    def _template(self) -> ChatTemplate:
        return ChatTemplate(
            count=self._count,
            framing_tokens=self.framing_tokens,
            tokens_per_message=self.tokens_per_message,
            tool_preamble_tokens=self.tool_preamble_tokens,
            tokens_per_tool=self.tokens_per_tool,
            image_tokens=self.image_tokens,
        )

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
            The hidden template's count (see `langchain_tokencal.testing`).

        Example:
            ```python
            from langchain_core.messages import HumanMessage
            from langchain_tokencal.testing import FakeUsageChatModel

            llm = FakeUsageChatModel(tokenizer="charclass")
            assert llm.true_prompt_tokens([HumanMessage("hello")]) == 7 + 5 + 1 + 2
            ```
        """
        return self._template.prompt_tokens(messages, tools, response_format)

    @override
    def get_num_tokens(self, text: str) -> int:
        """Count a text's tokens with the hidden tokenizer.

        Example:
            ```python
            from langchain_tokencal.testing import FakeUsageChatModel

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
            from langchain_tokencal.testing import FakeUsageChatModel

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
        callback, and they cost input tokens (see `langchain_tokencal.testing`). The
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
            from langchain_tokencal.testing import FakeUsageChatModel

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
        return self.bind(tools=as_openai_tools(tools), **kwargs)

    def _reply(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
    ) -> Reply:
        """Decide the answer and its true usage; the core of every call path."""
        if self.fail_with is not None:
            if isinstance(self.fail_with, BaseException):
                raise self.fail_with
            msg = f"{type(self).__name__} {self.model!r} was told to fail."
            raise self.fail_with(msg)
        call = self._calls.next()
        template = self._template
        tools = as_openai_tools(kwargs.get("tools"))
        response_format = kwargs.get("response_format")
        input_tokens = template.prompt_tokens(messages, tools, response_format)
        digest = prompt_digest(messages)
        rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - fake replies, not security
        tool = choose_tool(
            tools, kwargs.get("tool_choice"), messages, call, self.tool_calls_every
        )
        calls: tuple[ToolCall, ...] = ()
        if tool is not None:
            calls = (make_tool_call(tool, digest, call, rng),)
            text = ""
        elif self.responses:
            text = self.responses[(call - 1) % len(self.responses)]
        elif (schema := schema_of_response_format(response_format)) is not None:
            text = json.dumps(example_value(schema, rng), ensure_ascii=False)
        else:
            # Uncached counting: the drafts of a reply would only flood the memo.
            text = compose_reply(
                topic(messages), rng, get_tokenizer(self.tokenizer).raw
            )
        if stop:
            cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
            text = text if cut < 0 else text[:cut]
        text_tokens = template.count(text)
        return Reply(
            text=text,
            tool_calls=calls,
            input_tokens=input_tokens,
            text_tokens=text_tokens,
            output_tokens=text_tokens
            + self.reasoning_tokens
            + template.tool_call_tokens(calls),
            reasoning_tokens=self.reasoning_tokens,
            cache_read_tokens=min(self.cache_read_tokens, input_tokens),
            model_name=self._snapshot,
            provider=self.provider,
            message_id=f"msg_fake_{uuid.uuid4().hex[:24]}",
        )

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, stop, kwargs).message(
            report_usage=self.report_usage
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
        yield from self._reply(messages, stop, kwargs).chunks(self._usage_mode)

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
        for chunk in self._reply(messages, stop, kwargs).chunks(self._usage_mode):
            yield chunk
