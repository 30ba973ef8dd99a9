"""Counts where they are used: ``trim_messages``, ``handler.trim``, the ``TokenCounter``.

The oracle is the fake model's hidden accounting (`true_prompt_tokens`): the
longest suffix of the history whose true prompt cost fits the budget.
"""

from __future__ import annotations

import inspect
import random
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.tools import tool

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather for a city, in the given unit."""
    return "sunny"


@tool
def search_docs(query: str, limit: int = 5) -> str:
    """Search the product documentation and return matching passages."""
    return "passages"


@tool
def create_ticket(title: str, body: str, priority: int) -> str:
    """Open a support ticket with a title, a body and a priority from 1 to 5."""
    return "opened"


TOOLS = [get_weather, search_docs, create_ticket]
WORDS = ["printer", "network", "billing", "refund", "login", "error", "crash", "日本"]


def _model(handler: TokenCalibrationHandler) -> FakeUsageChatModel:
    # Hidden costs that differ from every prior of the handler.
    return FakeUsageChatModel(
        model="fake-claude",
        framing_tokens=11,
        tokens_per_message=6,
        tool_preamble_tokens=280,
        tokens_per_tool=9,
        callbacks=[handler],
    )


def _learned_history(
    handler: TokenCalibrationHandler, fake: FakeUsageChatModel, turns: int = 25
) -> list[BaseMessage]:
    """A support chat with 3 tools bound, every call reported to ``handler``."""
    rng = random.Random(7)
    llm = fake.bind_tools(TOOLS)
    history: list[BaseMessage] = [
        SystemMessage("You are ACME's support agent. Answer briefly, cite docs. " * 3)
    ]
    for i in range(turns):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
        history.append(HumanMessage(f"Question {i}: {words}"))
        reply = llm.invoke(history)
        history.append(AIMessage(reply.text))
    return history


def _oracle(
    fake: FakeUsageChatModel, history: list[BaseMessage], budget: int, *, system: bool
) -> int:
    """The most trailing messages whose true prompt fits ``budget``."""
    head, body = (history[:1], history[1:]) if system else ([], history)
    best = 0
    for k in range(len(body) + 1):
        kept = [*head, *body[len(body) - k :]]
        if fake.true_prompt_tokens(kept, TOOLS) <= budget:
            best = k
    return best


@pytest.fixture(scope="module")
def learned() -> tuple[TokenCalibrationHandler, FakeUsageChatModel, list[BaseMessage]]:
    """A handler that has seen 25 calls of a support chat with 3 tools."""
    handler = TokenCalibrationHandler()
    fake = _model(handler)
    return handler, fake, _learned_history(handler, fake)


@pytest.mark.parametrize("include_system", [True, False])
@pytest.mark.parametrize("fraction", [0.4, 0.6, 0.8])
def test_trim_messages_charges_fixed_costs_once(
    learned: Any, include_system: bool, fraction: float
) -> None:
    """LangChain's own ``trim_messages`` keeps what truly fits, with or without the system."""
    handler, fake, history = learned
    budget = int(fake.true_prompt_tokens(history, TOOLS) * fraction)
    kept = trim_messages(
        history,
        max_tokens=budget,
        token_counter=handler.counter("fake-claude", TOOLS),
        strategy="last",
        include_system=include_system,
    )
    assert fake.true_prompt_tokens(kept, TOOLS) <= budget
    body = len(kept) - (1 if include_system else 0)
    assert body >= _oracle(fake, history, budget, system=include_system) - 1
    if include_system:
        assert isinstance(kept[0], SystemMessage)


def test_lone_system_message_counts_without_fixed_costs(learned: Any) -> None:
    """A lone system message costs itself only, so ``[system]`` + rest adds up to the whole."""
    handler, _, history = learned
    count = handler.counter("fake-claude", TOOLS)
    system = history[0]
    whole = count([system, history[1]])
    alone = count([system])
    rest = count([history[1]])
    # trim_messages adds these two: the fixed costs appear once.
    assert alone + rest == pytest.approx(whole, abs=2)
    assert alone < whole - 280


@pytest.mark.parametrize(
    "kwargs",
    [
        {"include_system": True},
        {"include_system": False},
        {"include_system": True, "start_on": "human"},
        {"include_system": True, "end_on": ("human", "ai")},
        {"strategy": "first"},
        {"include_system": True, "allow_partial": True},
    ],
)
@pytest.mark.parametrize("conservative", [False, True])
def test_handler_trim_equals_trim_messages(
    learned: Any, kwargs: dict[str, Any], conservative: bool
) -> None:
    """``handler.trim`` returns exactly what ``trim_messages`` returns with our counter."""
    handler, fake, history = learned
    for fraction in (0.3, 0.55, 0.9):
        budget = int(fake.true_prompt_tokens(history, TOOLS) * fraction)
        counter = handler.counter("fake-claude", TOOLS, conservative=conservative)
        options = {"strategy": "last", **kwargs}
        expected = trim_messages(
            history, max_tokens=budget, token_counter=counter, **options
        )
        got = handler.trim(
            history,
            budget,
            model=fake,
            tools=TOOLS,
            conservative=conservative,
            **kwargs,
        )
        assert got == expected


def test_handler_trim_with_a_bound_system_prompt(learned: Any) -> None:
    """A ``system=`` outside the list is charged to every candidate."""
    handler, fake, history = learned
    system, body = history[0], history[1:]
    budget = int(fake.true_prompt_tokens(history, TOOLS) * 0.5)
    kept = handler.trim(body, budget, model="fake-claude", tools=TOOLS, system=system)
    assert fake.true_prompt_tokens([system, *kept], TOOLS) <= budget
    assert len(kept) >= _oracle(fake, history, budget, system=True) - 1


def test_handler_trim_refuses_a_token_counter(learned: Any) -> None:
    """Passing a ``token_counter`` to ``handler.trim`` is a mistake, said clearly."""
    handler, _, history = learned
    with pytest.raises(TypeError, match="token_counter"):
        handler.trim(history, 100, model="fake-claude", token_counter=len)


class TestTokenCounterProtocol:
    """``handler.counter(...)`` is a full LangChain ``TokenCounter``."""

    def test_signature_takes_tools(self) -> None:
        """The signature has a keyword-only ``tools``, which deepagents looks for."""
        counter = TokenCalibrationHandler().counter("gpt-4o")
        params = inspect.signature(counter).parameters
        assert list(params) == ["messages", "tools"]
        assert params["tools"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["tools"].default is None

    def test_call_time_tools_are_counted_and_replace_bound_ones(
        self, learned: Any
    ) -> None:
        """Tools given at call time replace the bound ones."""
        handler, _, history = learned
        plain = handler.counter("fake-claude")
        with_tools = handler.counter("fake-claude", TOOLS)
        messages = history[1:5]
        assert plain(messages, tools=TOOLS) == with_tools(messages)
        assert with_tools(messages, tools=[]) == plain(messages)
        assert plain(messages, tools=TOOLS) > plain(messages) + 200

    def test_bound_system_is_prepended_when_the_list_has_none(
        self, learned: Any
    ) -> None:
        """A bound system prompt counts once, whether or not the list carries it."""
        handler, _, history = learned
        system = history[0]
        assert isinstance(system, SystemMessage)
        plain = handler.counter("fake-claude", TOOLS)
        bound = handler.counter("fake-claude", TOOLS, system=system.text)
        body = history[1:9]
        assert bound(body) == plain([system, *body])
        assert bound(history[:9]) == plain(history[:9])  # not twice
        assert bound([system]) == 0  # already charged to every list
        messages = bound.system
        assert messages is not None
        assert messages.text == system.text

    def test_repr_and_nothing_counted_on_construction(self) -> None:
        """Construction is free and the repr says what is bound."""
        handler = TokenCalibrationHandler()
        counter = handler.counter("gpt-4o", [get_weather], system="Be brief.")
        assert handler.models == []  # building a counter creates no model
        text = repr(counter)
        for part in ("gpt-4o", "tools=1", "Be brief."):
            assert part in text
        assert "conservative" in repr(handler.counter("gpt-4o", conservative=True))

    def test_system_must_be_text_or_a_system_message(self) -> None:
        """Any other ``system=`` is a configuration error."""
        with pytest.raises(ConfigError, match="system="):
            TokenCalibrationHandler().counter("gpt-4o", system=HumanMessage("x"))  # type: ignore[arg-type]

    def test_deepagents_style_call(self, learned: Any) -> None:
        """The call deepagents makes after checking the signature counts the tools."""
        handler, _, history = learned
        counter = handler.counter("fake-claude")
        assert "tools" in inspect.signature(counter).parameters
        assert counter(history[1:3], tools=TOOLS) > counter(history[1:3])


class TestModelArgument:
    """``model=`` takes names, chat models and runnables wrapping them."""

    def test_chat_model_instance_keys_like_the_callback(self, learned: Any) -> None:
        """A chat model is keyed as the callback keys its calls."""
        handler, fake, history = learned
        by_name = handler.count_messages(history, model="fake-claude", tools=TOOLS)
        assert handler.count_messages(history, model=fake, tools=TOOLS) == by_name
        assert handler.estimate(history, model=fake, tools=TOOLS).tokens == by_name
        assert handler.counter(fake, TOOLS)(history) == by_name

    def test_a_tool_binding_brings_its_tools(self, learned: Any) -> None:
        """``bind_tools`` output carries its tools into the count."""
        handler, fake, history = learned
        bound = fake.bind_tools(TOOLS)
        assert handler.count_messages(history, model=bound) == handler.count_messages(
            history, model="fake-claude", tools=TOOLS
        )
        assert handler.count_messages(history, model=bound, tools=[]) == (
            handler.count_messages(history, model="fake-claude")
        )

    def test_configured_and_fallback_runnables(self, learned: Any) -> None:
        """``with_config`` and ``with_fallbacks`` wrappers are unwrapped."""
        handler, fake, history = learned
        expected = handler.count_messages(history, model="fake-claude")
        assert handler.count_messages(history, model=fake.with_config(tags=["x"])) == (
            expected
        )
        fallback = fake.with_fallbacks([FakeUsageChatModel(model="other")])
        assert handler.count_messages(history, model=fallback) == expected

    def test_an_unknown_model_instance_keys_by_its_name(self) -> None:
        """A model never called is keyed by its name."""
        handler = TokenCalibrationHandler()
        fake = FakeUsageChatModel(model="never-called")
        handler.count_messages([HumanMessage("hi")], model=fake)
        assert handler.models == ["never-called"]

    @pytest.mark.parametrize("bad", [5, object(), ""])
    def test_bad_model_arguments_raise_config_errors(self, bad: Any) -> None:
        """Anything else is a ``ConfigError`` naming ``model=``."""
        with pytest.raises(ConfigError, match="model="):
            TokenCalibrationHandler().count_messages([HumanMessage("hi")], model=bad)

    def test_observe_takes_a_model_instance(self) -> None:
        """``observe`` accepts a model instance too."""
        handler = TokenCalibrationHandler()
        fake = FakeUsageChatModel(model="m1")
        messages = [HumanMessage("hello there")]
        assert (
            handler.observe(messages, {"input_tokens": 9, "output_tokens": 1}, fake)
            is None
        )
        assert handler.count_messages(messages, model="m1") == 9


def test_tool_results_trim_as_pairs(learned: Any) -> None:
    """A tool exchange at the cut: ``start_on='human'`` drops an orphan result."""
    handler, _, history = learned
    call = AIMessage(
        "", tool_calls=[{"name": "search_docs", "args": {"query": "x"}, "id": "c1"}]
    )
    tail = [HumanMessage("look it up"), call, ToolMessage("found", tool_call_id="c1")]
    chat = [*history, *tail]
    kept = handler.trim(chat, 120, model="fake-claude", start_on="human")
    assert not kept or isinstance(kept[0], HumanMessage)
