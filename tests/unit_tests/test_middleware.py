"""TokenCalibrationMiddleware in real LangChain v1 agents (``create_agent``).

The agent runs over `FakeUsageChatModel`, whose reported input tokens come from
a hidden tokenizer and chat template with its own fixed costs (framing, per
message, tool preamble, per tool), different from the package's priors. The
request carries a system prompt and three tools that the state's messages do
not hold; the counter must count them, as the provider does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("langchain.agents", reason="needs the [agents] extra")

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    SummarizationMiddleware,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import SystemMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import tool

from langchain_tokencal import (
    ConfigError,
    TokenCalibrationHandler,
    get_tokencal_callback,
)
from langchain_tokencal.middleware import AgentCounter, TokenCalibrationMiddleware
from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.messages import BaseMessage


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather and a three-day forecast for a city."""
    return f"Weather in {city}: sunny, 21 degrees {unit}; tomorrow rain. " * 6


@tool
def search_flights(origin: str, destination: str, date: str, seats: int = 1) -> str:
    """Search flights between two airports on a date, cheapest first."""
    return f"Flight {origin}-{destination} on {date}: 3 options from 120 EUR. " * 8


@tool
def book_hotel(city: str, nights: int, budget: float) -> str:
    """Book a hotel in a city for some nights within a budget per night."""
    return f"Booked a hotel in {city} for {nights} nights under {budget}. " * 3


TOOLS = [get_weather, search_flights, book_hotel]
SYSTEM = (
    "You are a meticulous travel agent. Always check the weather before "
    "booking, compare at least two flights, and explain prices in euros. "
) * 30
TURNS = 25


def travel_model(**kwargs: Any) -> FakeUsageChatModel:
    """The agent's model: a tool call every other call, its own hidden costs."""
    return FakeUsageChatModel(
        model="fake-claude",
        tool_calls_every=2,
        framing_tokens=11,
        tokens_per_message=4,
        tool_preamble_tokens=250,
        tokens_per_tool=20,
        **kwargs,
    )


def question(turn: int) -> tuple[str, str]:
    """The user's message of one turn."""
    return ("user", f"Turn {turn}: plan day {turn} of the trip to city {turn}.")


class Probe(AgentMiddleware[Any, Any, Any]):
    """Counts each request just before the model runs, then reads its usage."""

    def __init__(self, count: Callable[[Sequence[BaseMessage]], int]) -> None:
        """Count with ``count``."""
        super().__init__()
        self.count = count
        self.pairs: list[tuple[int, int]] = []

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        """Count, call, record (count, reported input tokens)."""
        predicted = self.count(request.messages)
        response = handler(request)
        usage = response.result[-1].usage_metadata
        self.pairs.append((predicted, usage["input_tokens"]))
        return response


class Recording:
    """A token counter that records what it was asked and answered."""

    def __init__(self, inner: Callable[[Sequence[BaseMessage]], int]) -> None:
        """Record the calls of ``inner``."""
        self.inner = inner
        self.calls: list[tuple[list[BaseMessage], int]] = []

    def __call__(self, messages: Sequence[BaseMessage], **kwargs: Any) -> int:
        """Count with the inner counter and record the call."""
        n = self.inner(messages, **kwargs)
        self.calls.append((list(messages), n))
        return n


class SummaryStarts(BaseCallbackHandler):
    """Notes how many counts had been made when the first summary started."""

    def __init__(self, counter: Recording) -> None:
        """Watch ``counter``."""
        self.counter = counter
        self.at: int | None = None

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        """The summary model starts: the last count is the one that fired."""
        if self.at is None:
            self.at = len(self.counter.calls)


def run_turns(agent: Any, turns: int = TURNS) -> list[BaseMessage]:
    """Run a conversation of ``turns`` user turns; the final state's messages."""
    messages: list[Any] = []
    for turn in range(turns):
        state = agent.invoke({"messages": [*messages, question(turn)]})
        messages = state["messages"]
    return messages


def true_cost(llm: FakeUsageChatModel, messages: Sequence[BaseMessage]) -> int:
    """What the provider bills for the request the agent sends."""
    return llm.true_prompt_tokens([SystemMessage(SYSTEM), *messages], TOOLS)


def first_trigger(
    counter: Callable[[Sequence[BaseMessage]], int], threshold: int
) -> tuple[list[BaseMessage], int, int]:
    """Run the summarizing agent; (messages, count, true cost) at the trigger."""
    llm = travel_model()
    recording = Recording(counter)
    starts = SummaryStarts(recording)
    summarizer = FakeUsageChatModel(
        model="fake-claude", responses=["The trip so far."], callbacks=[starts]
    )
    summarize = SummarizationMiddleware(
        summarizer,
        trigger=("tokens", threshold),
        keep=("messages", 6),
        token_counter=recording,
        trim_tokens_to_summarize=None,
    )
    middleware: list[Any] = [summarize]
    if isinstance(counter, AgentCounter):
        middleware.append(_middleware_of(counter))
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=middleware)
    run_turns(agent)
    assert starts.at is not None, "summarization never triggered"
    messages, n = recording.calls[starts.at - 1]
    return messages, n, true_cost(llm, messages)


def _middleware_of(counter: AgentCounter) -> TokenCalibrationMiddleware:
    """The middleware a counter counts for."""
    return counter._middleware


def calibrated(llm: FakeUsageChatModel) -> TokenCalibrationMiddleware:
    """A fresh handler's middleware for the travel agent."""
    return TokenCalibrationMiddleware(
        TokenCalibrationHandler(), model=llm, tools=TOOLS, system_prompt=SYSTEM
    )


def test_counter_before_each_call_is_within_3_percent_after_5_calls() -> None:
    """Counts of the request (system prompt and tools too) match the reports."""
    llm = travel_model()
    calibration = calibrated(llm)
    probe = Probe(calibration.counter())
    agent = create_agent(
        llm, TOOLS, system_prompt=SYSTEM, middleware=[probe, calibration]
    )
    run_turns(agent)
    assert len(probe.pairs) >= 2 * TURNS - 1
    errors = [abs(count - true) / true for count, true in probe.pairs]
    assert max(errors[5:]) <= 0.03, max(errors[5:])
    # What the same middleware gets from the state's messages alone.
    plain = Probe(count_tokens_approximately)
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[plain])
    run_turns(agent, 6)
    assert all(count < 0.8 * true for count, true in plain.pairs)


def test_summarization_triggers_within_10_percent_of_the_threshold() -> None:
    """Summarization fires when the request the agent sends reaches ``T``."""
    threshold = 5000
    llm = travel_model()
    messages, count, true = first_trigger(calibrated(llm).counter(), threshold)
    assert count >= threshold
    assert threshold <= true <= 1.1 * threshold, true
    # The state's messages alone leave out the system prompt and the tools
    # the request carries: a counter of the state fires late.
    assert true - llm.true_prompt_tokens(messages) > 0.2 * threshold
    assert count_tokens_approximately(messages) < 0.85 * true


def test_context_editing_clears_when_the_request_reaches_the_trigger() -> None:
    """ClearToolUsesEdit fires at the request's true size, not the state's."""
    trigger = 4000
    llm = travel_model()
    calibration = calibrated(llm)
    recording = Recording(calibration.counter())
    editing = ContextEditingMiddleware(
        edits=[ClearToolUsesEdit(trigger=trigger, keep=2)], token_counter=recording
    )
    agent = create_agent(
        llm, TOOLS, system_prompt=SYSTEM, middleware=[editing, calibration]
    )
    run_turns(agent)
    fired = next((m, n) for m, n in recording.calls if n > trigger)
    assert trigger < true_cost(llm, fired[0]) <= 1.1 * trigger
    # count_tokens_approximately (the middleware's default) on the same run.
    llm = travel_model()
    plain = Recording(count_tokens_approximately)
    editing = ContextEditingMiddleware(
        edits=[ClearToolUsesEdit(trigger=trigger, keep=2)], token_counter=plain
    )
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[editing])
    run_turns(agent)
    late = next((m, n) for m, n in plain.calls if n > trigger)
    assert true_cost(llm, late[0]) > 1.2 * trigger


def test_learns_without_callbacks() -> None:
    """A model with no callbacks: the middleware learns each call itself."""
    llm = travel_model()
    calibration = calibrated(llm)
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[calibration])
    messages = run_turns(agent, 3)
    calls = sum(1 for m in messages if m.type == "ai")
    stats = calibration.handler.stats()["fake-claude"]
    assert stats.observations == calls >= 4


@pytest.mark.parametrize("attach", ["config", "model", "context"])
def test_never_learns_a_call_twice(attach: str) -> None:
    """With the handler also a callback, each call is learned once."""
    handler = TokenCalibrationHandler()
    llm = travel_model(callbacks=[handler] if attach == "model" else None)
    calibration = TokenCalibrationMiddleware(
        handler, model=llm, tools=TOOLS, system_prompt=SYSTEM
    )
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[calibration])
    request = {"messages": [question(0)]}
    if attach == "config":
        state = agent.invoke(request, config={"callbacks": [handler]})
    elif attach == "context":
        with get_tokencal_callback(handler):
            state = agent.invoke(request)
    else:
        state = agent.invoke(request)
    calls = sum(1 for m in state["messages"] if m.type == "ai")
    assert handler.stats()["fake-claude"].observations == calls


def test_async_agent_learns() -> None:
    """``ainvoke`` goes through ``awrap_model_call``."""
    llm = travel_model()
    calibration = calibrated(llm)
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[calibration])
    state = asyncio.run(agent.ainvoke({"messages": [question(0)]}))
    calls = sum(1 for m in state["messages"] if m.type == "ai")
    assert calibration.handler.stats()["fake-claude"].observations == calls


def test_counter_is_a_token_counter_with_tools() -> None:
    """The deepagents check: the signature takes ``tools``; they are counted."""
    llm = travel_model()
    count = calibrated(llm).counter()
    assert "tools" in inspect.signature(count).parameters
    messages = [SystemMessage(SYSTEM)]
    history: list[Any] = [question(0)]
    assert count(history) > count(history, tools=[])
    assert count(history, tools=[get_weather]) < count(history)
    # A list that starts with a system message is not given a second one.
    assert count([*messages, *history]) == count(history)
    assert repr(count) == "AgentCounter('fake-claude', tools=3, system=True)"
    conservative = calibrated(llm).counter(conservative=True)
    assert conservative(history) >= count(history)


def test_counter_follows_the_last_request() -> None:
    """After a call, the request's model, system message and tools count."""
    handler = TokenCalibrationHandler()
    llm = travel_model()
    calibration = TokenCalibrationMiddleware(handler)
    with pytest.raises(ConfigError, match="model="):
        calibration.counter()([question(0)])
    agent = create_agent(
        llm, TOOLS[:1], system_prompt="Short.", middleware=[calibration]
    )
    agent.invoke({"messages": [question(0)]})
    request = calibration.last_request
    assert request.model == "fake-claude"
    assert request.system is not None
    assert request.system.content == "Short."
    assert request.tools is not None
    assert [t["function"]["name"] for t in request.tools] == ["get_weather"]


def test_bad_arguments_are_config_errors() -> None:
    """A wrong handler, model or system prompt fails at construction."""
    with pytest.raises(ConfigError, match="TokenCalibrationHandler"):
        TokenCalibrationMiddleware(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model="):
        TokenCalibrationMiddleware(TokenCalibrationHandler(), model=5)
    with pytest.raises(ConfigError, match="tools= must be a list"):
        TokenCalibrationMiddleware(TokenCalibrationHandler(), tools="get_weather")
    with pytest.raises(ConfigError, match="not a tool"):
        TokenCalibrationMiddleware(TokenCalibrationHandler(), tools=[42])
    with pytest.raises(ConfigError, match="system="):
        TokenCalibrationMiddleware(
            TokenCalibrationHandler(),
            model="gpt-4o",
            system_prompt=3,  # type: ignore[arg-type]
        )


def test_a_failing_learn_never_breaks_the_agent(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while learning is logged; the agent's answer is unchanged."""
    llm = travel_model()
    calibration = calibrated(llm)

    def broken(*args: Any, **kwargs: Any) -> None:
        msg = "boom"
        raise RuntimeError(msg)

    monkeypatch.setattr(calibration.handler, "observe", broken)
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[calibration])
    with caplog.at_level(logging.WARNING, logger="langchain_tokencal.middleware"):
        state = agent.invoke({"messages": [question(0)]})
    assert state["messages"][-1].type == "ai"
    assert "could not learn from a model call" in caplog.text


def test_a_model_without_usage_is_answered_and_not_learned() -> None:
    """No usage in the reply: nothing learned, nothing raised."""
    llm = travel_model(report_usage=False)
    calibration = calibrated(llm)
    agent = create_agent(llm, TOOLS, system_prompt=SYSTEM, middleware=[calibration])
    state = agent.invoke({"messages": [question(0)]})
    assert state["messages"][-1].type == "ai"
    stats = calibration.handler.stats()["fake-claude"]
    assert stats.observations == 0
    assert sum(stats.rejected.values()) >= 1
