"""The bound counter: LangChain's ``TokenCounter`` for one model, tool set and system.

`TokenCalibrationHandler.counter` returns one. Calling it counts a message list
as the prompt it stands for, through the handler, so it always uses what the
handler has learned by then. Two rules make the counts add up the way their
callers add them:

- A list of only a system message counts what that message adds to a prompt,
  without the prompt's fixed costs (framing, reply priming, tool preamble and
  schemas). ``trim_messages(..., include_system=True)`` counts the system
  message alone, subtracts it from the budget, then counts each candidate list
  as a prompt: so the fixed costs are charged once, with the candidates.
- A bound ``system`` is counted as prepended to a list that does not start
  with a system message: agents' middleware counts the state's messages,
  while the request also carries the agent's system prompt.
"""

# NB: no ``from __future__ import annotations``: ``trim_messages`` reads the
# annotation of ``__call__``'s first parameter to choose whole-list mode.

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage

from langchain_tokencal._calibration import CalibratedCounter
from langchain_tokencal._callbacks.baseline import Baseline
from langchain_tokencal._counting import as_messages
from langchain_tokencal.errors import ConfigError

__all__ = ["BoundCounter", "PromptPlan", "as_system", "plan_prompt"]

# (messages to count, whether they are a whole prompt with its fixed costs);
# None: the list adds nothing (the bound system message alone).
PromptPlan = tuple[Sequence[BaseMessage], bool] | None

# How much of a bound system prompt the repr shows.
_SHOWN = 30


def as_system(system: object) -> SystemMessage | None:
    """A ``system=`` argument as a message.

    Raises:
        ConfigError: For anything but a string or a `SystemMessage`.
    """
    if system is None or isinstance(system, SystemMessage):
        return system
    if isinstance(system, str):
        return SystemMessage(system)
    msg = f"system= must be a str or a SystemMessage; got {type(system).__name__}."
    raise ConfigError(msg)


def plan_prompt(
    messages: Sequence[BaseMessage], system: SystemMessage | None
) -> PromptPlan:
    """What a list stands for: see the module docstring's two rules."""
    if len(messages) == 1 and isinstance(messages[0], SystemMessage):
        if system is not None and messages[0].content == system.content:
            return None  # every list is charged the bound system already
        return messages, False
    if system is not None and not (messages and isinstance(messages[0], SystemMessage)):
        return [system, *messages], True
    return messages, True


class BoundCounter:
    """LangChain's ``TokenCounter``: counts for one model, tool set and system.

    Call it as ``counter(messages)`` or ``counter(messages, tools=tools)``
    (call-time tools replace the bound ones), which is what ``trim_messages``,
    ``SummarizationMiddleware`` and deepagents call. Thread-safe as its handler
    is; it holds no state of its own, and building one counts nothing.

    Example:
        ```python
        from langchain_core.messages import HumanMessage, trim_messages

        from langchain_tokencal import TokenCalibrationHandler

        handler = TokenCalibrationHandler()
        count = handler.counter("gpt-4o", system="Be brief.")
        trim_messages([HumanMessage("hi")], max_tokens=50, token_counter=count)
        count([HumanMessage("hi")], tools=[])  # what deepagents calls
        ```
    """

    __slots__ = ("_conservative", "_label", "_resolve", "_shadow", "_system", "_tools")

    def __init__(
        self,
        resolve: Callable[[], CalibratedCounter],
        label: str,
        tools: Sequence[Any] | None,
        *,
        system: SystemMessage | None = None,
        conservative: bool = False,
        shadow: Baseline | None = None,
    ) -> None:
        """Count through the counter ``resolve`` returns at each call.

        Args:
            resolve: The model's calibrated counter, looked up per call (a
                handler may replace it once a run says where it is served).
            label: The model, for the repr.
            tools: Tools bound to every count.
            system: A system message counted as prepended (see the module).
            conservative: Count the interval's ``high`` end.
            shadow: In shadow mode, the baseline that answers instead.
        """
        self._resolve = resolve
        self._shadow = shadow
        self._label = label
        self._tools = tools
        self._system = system
        self._conservative = conservative

    def __call__(
        self,
        messages: Sequence[BaseMessage],
        *,
        tools: Sequence[Any] | None = None,
    ) -> int:
        """The prompt tokens of ``messages`` (the high end when conservative).

        Args:
            messages: The messages (or message-like inputs).
            tools: Tools for this count, replacing the bound ones.
        """
        plan = plan_prompt(as_messages(messages), self._system)
        if plan is None:
            return 0
        listed, whole = plan
        counter = self._resolve()
        tools = self._tools if tools is None else tools
        if self._shadow is not None:
            return self._shadow.count(listed, tools)
        if whole:
            if self._conservative:
                return counter.estimate(listed, tools).high
            return counter.count(listed, tools)
        part = counter.message_tokens(listed)
        if self._conservative:
            est = counter.estimate(listed, tools)
            part += est.high - est.tokens
        return round(part)

    @property
    def model(self) -> str:
        """The model it counts for."""
        return self._label

    @property
    def tools(self) -> Sequence[Any] | None:
        """The tools bound to every count."""
        return self._tools

    @property
    def system(self) -> SystemMessage | None:
        """The system message counted as prepended, if any."""
        return self._system

    @property
    def conservative(self) -> bool:
        """Whether it counts the interval's high end."""
        return self._conservative

    def __repr__(self) -> str:
        """Which model, tools and system it counts for, and how."""
        parts = [repr(self._label)]
        if self._tools:
            parts.append(f"tools={len(self._tools)}")
        if self._system is not None:
            text = self._system.text
            shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
            parts.append(f"system={shown!r}")
        if self._conservative:
            parts.append("conservative=True")
        return f"BoundCounter({', '.join(parts)})"
