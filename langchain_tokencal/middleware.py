"""Middleware for LangChain v1 agents: count the request the agent will send.

``create_agent``'s middleware counts the state's messages, while the request the
model receives also carries the agent's system prompt and its tools, and the
provider bills all three. `TokenCalibrationMiddleware` sees each exact
``ModelRequest`` (system message, messages, tools, model) and its response:

- its `counter` is a LangChain ``TokenCounter`` for ``SummarizationMiddleware``
  and ``ContextEditingMiddleware`` that counts a message list as the request
  the agent sends (the last request's system prompt and tools included);
- it learns from each response's usage, also when the model has no
  callbacks, and never twice when the handler is attached as a callback too.

Needs the ``[agents]`` extra (``langchain>=1.0``); importing
``langchain_tokencal`` itself never imports it.
"""

# NB: no ``from __future__ import annotations``: ``trim_messages`` reads the
# annotation of the counter's first parameter to choose whole-list mode.

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import ensure_config
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_tokencal._callbacks import TokenCalibrationHandler
from langchain_tokencal._callbacks.bound import BoundCounter, as_system
from langchain_tokencal._callbacks.context import current_handler
from langchain_tokencal._callbacks.models import model_ref
from langchain_tokencal.errors import ConfigError

try:
    from langchain.agents.middleware import (
        AgentMiddleware,
        ExtendedModelResponse,
        ModelRequest,
        ModelResponse,
    )
except ImportError as err:  # pragma: no cover - exercised without the extra
    _HINT = (
        "langchain_tokencal.middleware needs LangChain's agents: "
        "pip install 'langchain-tokencal[agents]'"
    )
    raise ImportError(_HINT) from err

__all__ = ["AgentCounter", "TokenCalibrationMiddleware"]

logger = logging.getLogger(__name__)

ModelCall = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


class _Request(NamedTuple):
    """What the agent sends besides its messages (the last request seen)."""

    model: str | None
    provider: str | None
    system: SystemMessage | None
    tools: list[Any] | None
    # The identity of the tools as given, to convert them once per tool set.
    tool_ids: tuple[int, ...]


class AgentCounter:
    """A ``TokenCounter`` counting messages as the agent's next request.

    Built by `TokenCalibrationMiddleware.counter`. Each call counts the list
    with the system prompt and tools of the last request the middleware saw
    (before the first, those given to the middleware), through the handler, so
    it always uses what the handler has learned by then. Its signature is
    ``(messages, *, tools=None) -> int``; call-time tools replace the agent's.

    Example:
        ```python
        from langchain_core.messages import HumanMessage

        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal.middleware import TokenCalibrationMiddleware

        calibration = TokenCalibrationMiddleware(
            TokenCalibrationHandler(), model="gpt-4o", system_prompt="Be brief."
        )
        count = calibration.counter()
        assert count([HumanMessage("hi")]) > count([HumanMessage("hi")], tools=[])
        ```
    """

    __slots__ = ("_conservative", "_middleware")

    def __init__(
        self, middleware: "TokenCalibrationMiddleware", *, conservative: bool
    ) -> None:
        """Count through ``middleware``'s handler and last request."""
        self._middleware = middleware
        self._conservative = conservative

    def __call__(
        self,
        messages: Sequence[BaseMessage],
        *,
        tools: Sequence[Any] | None = None,
    ) -> int:
        """The prompt tokens of the request ``messages`` would make.

        Args:
            messages: The state's messages (or any message list).
            tools: Tools for this count, replacing the agent's.

        Raises:
            ConfigError: Before the agent's first model call, when the
                middleware was given no ``model=``.
        """
        return self.bound()(messages, tools=tools)

    def bound(self) -> BoundCounter:
        """The counter for the last request: its model, system prompt and tools."""
        return self._middleware.bound_counter(conservative=self._conservative)

    @property
    def conservative(self) -> bool:
        """Whether it counts the interval's high end."""
        return self._conservative

    def __repr__(self) -> str:
        """Which request it counts as."""
        request = self._middleware.last_request
        parts = [repr(request.model)]
        if request.tools:
            parts.append(f"tools={len(request.tools)}")
        if request.system is not None:
            parts.append("system=True")
        if self._conservative:
            parts.append("conservative=True")
        return f"AgentCounter({', '.join(parts)})"


class TokenCalibrationMiddleware(AgentMiddleware[Any, Any, Any]):
    """Agent middleware: learns from each model call, counts like the request.

    Place it last in ``middleware=`` (innermost), so it sees the request after
    the other middleware changed it, and pass its `counter` to the middleware
    that counts. One instance per agent: the counter follows the last request
    it saw.

    Args:
        handler: The handler that learns and counts.
        model: The agent's model (a name or the chat model), so the counter
            can count before the first model call; later the request's.
        tools: The agent's tools, for the same reason.
        system_prompt: The agent's system prompt, for the same reason.

    Raises:
        ConfigError: When ``handler`` is not a `TokenCalibrationHandler`, or
            ``model``, ``tools`` or ``system_prompt`` are of the wrong kind.

    Example:
        ```python
        from langchain.agents import create_agent
        from langchain.agents.middleware import SummarizationMiddleware

        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal.middleware import TokenCalibrationMiddleware
        from langchain_tokencal.testing import FakeUsageChatModel

        llm = FakeUsageChatModel(model="fake-claude")
        calibration = TokenCalibrationMiddleware(
            TokenCalibrationHandler(), model=llm, system_prompt="Be brief."
        )
        summarize = SummarizationMiddleware(
            llm, trigger=("tokens", 4000), token_counter=calibration.counter()
        )
        agent = create_agent(
            llm, system_prompt="Be brief.", middleware=[summarize, calibration]
        )
        agent.invoke({"messages": [("user", "hi")]})
        ```
    """

    def __init__(
        self,
        handler: TokenCalibrationHandler,
        *,
        model: Any = None,
        tools: Sequence[Any] | None = None,
        system_prompt: str | SystemMessage | None = None,
    ) -> None:
        """Learn into ``handler``; count as ``model``/``tools``/``system_prompt``."""
        super().__init__()
        given: object = handler  # typed callers cannot get here; others can
        if not isinstance(given, TokenCalibrationHandler):
            msg = (
                "TokenCalibrationMiddleware needs a TokenCalibrationHandler; "
                f"got {type(given).__name__}."
            )
            raise ConfigError(msg)
        self.handler = given
        ref = model_ref(model)
        if tools is not None and (
            isinstance(tools, (str, bytes)) or not isinstance(tools, Sequence)
        ):
            msg = f"tools= must be a list of tools; got {type(tools).__name__}."
            raise ConfigError(msg)
        self._lock = threading.Lock()
        self._request = _Request(ref.name, ref.provider, None, None, ())
        self._bound: dict[bool, BoundCounter] = {}
        try:
            self._request = self._with_tools(
                self._request._replace(system=as_system(system_prompt)),
                ref.tools if tools is None else tools,
            )
        except (TypeError, ValueError) as err:
            msg = f"tools= holds something that is not a tool: {err}"
            raise ConfigError(msg) from err

    @property
    def last_request(self) -> _Request:
        """The model, system prompt and tools the counter counts with."""
        return self._request

    def counter(self, *, conservative: bool = False) -> AgentCounter:
        """A ``TokenCounter`` for ``SummarizationMiddleware`` and friends.

        Args:
            conservative: Count the interval's ``high`` end.

        Example:
            ```python
            from langchain_tokencal import TokenCalibrationHandler
            from langchain_tokencal.middleware import TokenCalibrationMiddleware

            calibration = TokenCalibrationMiddleware(
                TokenCalibrationHandler(), model="gpt-4o"
            )
            assert calibration.counter()([("user", "hi")]) > 0
            ```
        """
        return AgentCounter(self, conservative=conservative)

    def bound_counter(self, *, conservative: bool = False) -> BoundCounter:
        """The handler's counter for the last request (built once per request)."""
        found = self._bound.get(conservative)
        if found is not None:
            return found
        request = self._request
        if request.model is None:
            msg = (
                "TokenCalibrationMiddleware has seen no model call yet and was "
                "given no model=: pass model= (the agent's model or its name)."
            )
            raise ConfigError(msg)
        bound = self.handler.counter(
            request.model,
            request.tools,
            request.system,
            conservative,
            provider=request.provider,
        )
        with self._lock:
            if self._request is request:
                self._bound[conservative] = bound
        return bound

    # -- the hooks --------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelCall:
        """Note the request, run it, learn from the response."""
        seen = self._note(request)
        response = handler(request)
        self._learn(request, seen, response)
        return response

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelCall:
        """Async twin of `wrap_model_call`."""
        seen = self._note(request)
        response = await handler(request)
        self._learn(request, seen, response)
        return response

    # -- internals --------------------------------------------------------

    def _with_tools(self, request: _Request, tools: Sequence[Any] | None) -> _Request:
        """``request`` with ``tools``, converted to OpenAI's format once."""
        ids = tuple(id(t) for t in tools or ())
        if ids == request.tool_ids and request.tools is not None:
            return request
        converted = [convert_to_openai_tool(t) for t in tools] if tools else None
        return request._replace(tools=converted, tool_ids=ids)

    def _note(self, request: ModelRequest[Any]) -> _Request | None:
        """Remember what the request carries besides its messages."""
        try:
            ref = model_ref(request.model)
            old = self._request
            new = self._with_tools(old, request.tools)
            new = new._replace(
                model=ref.name, provider=ref.provider, system=request.system_message
            )
            if new != old:
                with self._lock:
                    self._request = new
                    self._bound = {}
        except Exception:  # an odd request must not break the agent
            logger.warning(
                "tokencal: could not read the agent's request", exc_info=True
            )
            return None
        return new

    def _learn(
        self, request: ModelRequest[Any], seen: _Request | None, response: Any
    ) -> None:
        """Learn from the response, unless the handler saw the call as a callback."""
        try:
            if seen is None or _attached(self.handler, request.model):
                return
            reply = _reply_of(response)
            if reply is None:
                return
            prompt: list[BaseMessage] = list(request.messages)
            if request.system_message is not None:
                prompt.insert(0, request.system_message)
            why = self.handler.observe(
                prompt,
                reply,
                seen.model or request.model,
                seen.tools,
                provider=seen.provider,
            )
            if why is not None:
                logger.debug("tokencal: a model call was not learned: %s", why)
        except Exception:  # learning must never break the agent
            logger.warning("tokencal: could not learn from a model call", exc_info=True)


def _reply_of(response: Any) -> AIMessage | None:
    """The AI message a model call answered, whatever shape the result has."""
    if isinstance(response, ExtendedModelResponse):
        response = response.model_response
    if isinstance(response, AIMessage):
        return response
    result = getattr(response, "result", None)
    for message in reversed(result or ()):
        if isinstance(message, AIMessage):
            return message
    return None


def _attached(handler: TokenCalibrationHandler, model: Any) -> bool:
    """Whether ``handler`` gets the model call's callbacks (it learns there)."""
    if current_handler() is handler:
        return True
    for callbacks in (
        ensure_config().get("callbacks"),
        getattr(model, "callbacks", None),
    ):
        if isinstance(callbacks, BaseCallbackManager):
            if handler in callbacks.handlers:
                return True
        elif isinstance(callbacks, list) and handler in callbacks:
            return True
    return False
