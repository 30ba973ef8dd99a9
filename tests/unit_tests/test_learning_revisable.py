"""Learning off the happy path: revisable costs, tool structure, honest intervals.

A cost split out of one report stays provisional and is refined by every
later report that shares it; reports that arrive together are learned in one
canonical order; a tool set's base is learned per fingerprint; the interval
scales with what the fit does not know about the estimated part.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import tool
from pydantic import Field

from langchain_tokencal import TokenCalibrationHandler, create_counter
from langchain_tokencal._calibration.learning import Observation
from langchain_tokencal._features import (
    FEATURE_TOOL_CALLS,
    FEATURE_TOOL_RESULT,
    class_chars,
)
from langchain_tokencal._usage import TokenUsage
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.testing import FakeUsageChatModel

WORDS = [
    "river",
    "mountain",
    "quiet",
    "lantern",
    "orbit",
    "copper",
    "meadow",
    "signal",
    "harbor",
    "velvet",
    "thunder",
    "ember",
    "pilot",
    "garden",
    "canyon",
    "marble",
    "whisper",
    "compass",
    "falcon",
    "tide",
]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


@tool
def lookup(city: str, units: str = "metric") -> str:
    """Look up the weather of a city."""
    return f"{city}: 20 degrees ({units})"


@tool
def convert(amount: float, currency: str) -> str:
    """Convert an amount of money into another currency."""
    return f"{amount} {currency}"


def _rel(estimate: int, truth: int) -> float:
    return abs(estimate - truth) / truth


class TestSharedSystemPrompt:
    """One-shot calls that share a system prompt and nothing else."""

    @pytest.mark.parametrize("tokenizer", ["cl100k_base", "charclass"])
    def test_error_after_call_five_is_small(self, tokenizer: str) -> None:
        """The shared system cost is re-solved by every call, not fixed by the first."""
        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(
            model="fake-claude", tokenizer=tokenizer, callbacks=[handler]
        )
        rng = random.Random(7)
        system = SystemMessage(" ".join(_sentence(rng, 14) for _ in range(20)))
        ours, approx = [], []
        for call in range(30):
            prompt = [system, HumanMessage(_sentence(rng, rng.randint(4, 40)))]
            truth = llm.true_prompt_tokens(prompt)
            if call >= 5:
                ours.append(
                    _rel(handler.count_messages(prompt, model="fake-claude"), truth)
                )
                approx.append(_rel(count_tokens_approximately(prompt), truth))
            llm.invoke(prompt)
        mean = sum(ours) / len(ours)
        assert mean <= 0.02, mean
        assert mean < sum(approx) / len(approx)

    def test_a_badly_estimated_first_report_is_revised(self) -> None:
        """The first report's split of a shared message is provisional."""
        counter = create_counter("fake-claude", provider="anthropic")
        system = SystemMessage("You are a terse assistant. " * 40)
        users = [HumanMessage(f"Question number {i} about rivers?") for i in range(12)]
        # The hidden truth: the system message costs 400, each question 12,
        # framing 7.
        counter.observe([system, users[0]], 7 + 400 + 12)
        first = counter.estimate([system, users[1]]).tokens
        for user in users[1:10]:
            counter.observe([system, user], 7 + 400 + 12)
        later = counter.estimate([system, users[11]]).tokens
        assert abs(later - 419) <= abs(first - 419)
        assert abs(later - 419) <= 419 * 0.02


def _observations(rng: random.Random) -> list[Observation]:
    system = SystemMessage("Answer in one sentence. " * 12)
    out = []
    for i in range(5):
        user = HumanMessage(_sentence(rng, 8 + 3 * i))
        tokens = 7 + 80 + 5 + int(len(user.text) / 3.7) + 5
        usage = TokenUsage(tokens, 20, tokens + 20)
        out.append(Observation([system, user], None, usage))
    return out


class TestBatchOrder:
    """What a batch teaches does not depend on which call finished first."""

    def test_shuffled_completion_orders_learn_the_same_state(self) -> None:
        """Reports queued in any order drain to the same events and estimates."""
        observations = _observations(random.Random(1))
        probe = [observations[0].messages[0], HumanMessage("A new question?")]
        results = set()
        for seed in range(8):
            queued = list(observations)
            random.Random(seed).shuffle(queued)
            counter = create_counter("fake-claude", provider="anthropic")
            events: list[LearnEvent] = []
            counter.listener = events.extend
            for obs in queued:
                counter.submit(obs)
            counter.flush()
            learned = tuple((e.kind, e.values) for e in events)
            results.add((learned, counter.estimate(probe)))
        assert len(results) == 1

    def test_a_langchain_batch_learns_the_same_state_every_run(self) -> None:
        """`batch` on a thread pool, calls finishing in shuffled orders: one state."""
        rng = random.Random(2)
        system = SystemMessage("You classify support tickets. " * 10)
        inputs = [[system, HumanMessage(_sentence(rng, 6 + 5 * i))] for i in range(5)]
        probe = [system, HumanMessage("My order never arrived.")]
        seen, orders = set(), set()
        for run in range(8):
            handler = TokenCalibrationHandler()
            llm = _Jittery(model="fake-claude", seed=run)
            llm.batch(inputs, config={"callbacks": [handler], "max_concurrency": 5})
            seen.add(handler.estimate(probe, model="fake-claude"))
            orders.add(tuple(llm.finished))
        assert len(orders) > 1  # the completion order did vary
        assert len(seen) == 1


class _Jittery(FakeUsageChatModel):
    """Answers after a random pause, so a batch's calls finish in any order."""

    seed: int = 0
    finished: list[int] = Field(default_factory=list)

    def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        key = len(messages[-1].text)
        pause = random.Random(self.seed * 1000 + key).uniform(0.001, 0.03)
        time.sleep(pause)
        result = super()._generate(messages, *args, **kwargs)
        self.finished.append(key)
        return result


class TestToolSets:
    """Tool structure: per-call and per-result features, a base per tool set."""

    def test_second_use_of_a_tool_set_is_exact_for_an_exact_counter(self) -> None:
        """An exact counter puts a tool set's whole residual into its base."""
        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel.openai_like("gpt-4o", callbacks=[handler])
        tools = [lookup, convert]
        bound = llm.bind_tools(tools)
        rng = random.Random(3)
        bound.invoke([HumanMessage(_sentence(rng, 12))])
        for _ in range(5):
            prompt = [HumanMessage(_sentence(rng, rng.randint(3, 30)))]
            truth = llm.true_prompt_tokens(prompt, tools=tools)
            assert handler.count_messages(prompt, model="gpt-4o", tools=tools) == truth
            bound.invoke(prompt)

    def test_tool_calls_and_results_are_features(self) -> None:
        """A message's vector counts its tool calls and marks a tool result."""
        counter = create_counter("fake-claude", provider="anthropic")
        call = AIMessage(
            "",
            tool_calls=[
                {"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"},
                {"name": "lookup", "args": {"city": "Rome"}, "id": "c2"},
            ],
        )
        result = ToolMessage('{"t": 20}', tool_call_id="c1")
        plain = HumanMessage("hello")
        feats = counter.local.message_features([call, result, plain])
        assert [f.vector[FEATURE_TOOL_CALLS] for f in feats] == [2.0, 0.0, 0.0]
        assert [f.vector[FEATURE_TOOL_RESULT] for f in feats] == [0.0, 1.0, 0.0]

    def test_a_hidden_cost_per_tool_call_is_learned(self) -> None:
        """Agent turns with a fixed template cost per call and result are learned."""
        counter = create_counter("fake-agent", provider="vllm")
        rng = random.Random(4)
        errors = []
        for turn in range(40):
            city = rng.choice(WORDS).title()
            msgs: list[BaseMessage] = [
                HumanMessage(_sentence(rng, rng.randint(4, 20))),
                AIMessage(
                    "",
                    tool_calls=[{"name": "lookup", "args": {"city": city}, "id": "c"}],
                ),
                ToolMessage(json.dumps({"city": city, "t": turn}), tool_call_id="c"),
            ]
            local = counter.local(msgs)
            # Hidden: 48 tokens around each call, 38 around each result.
            truth = local + 48 + 38 + 10
            if turn >= 20:
                errors.append(_rel(counter.count(msgs), truth))
            counter.observe(msgs, truth)
        assert sum(errors) / len(errors) < 0.01


class TestEscapes:
    """JSON escapes are a content class of their own."""

    def test_escapes_are_not_digits(self) -> None:
        """An ensure_ascii dump of non-ASCII text is mostly escapes."""
        chars = class_chars(json.dumps("Zürich 東京"))
        assert chars[-1] == 6 * 3
        assert chars[7] == 0  # digits


class TestIntervals:
    """The interval scales with the estimated part's own uncertainty."""

    def test_a_new_tool_set_widens_the_interval_and_is_covered(self) -> None:
        """A tool set never seen has a wide interval that covers its hidden preamble."""
        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(model="fake-claude", tool_preamble_tokens=420)
        rng = random.Random(5)
        for _ in range(12):
            llm.invoke(
                [HumanMessage(_sentence(rng, 20))], config={"callbacks": [handler]}
            )
        prompt = [HumanMessage(_sentence(rng, 20))]
        plain = handler.estimate(prompt, model="fake-claude")
        with_tools = handler.estimate(prompt, model="fake-claude", tools=[lookup])
        truth = llm.true_prompt_tokens(prompt, tools=[lookup])
        assert with_tools.high - with_tools.tokens > 3 * (plain.high - plain.tokens)
        assert with_tools.high >= truth

    def test_a_long_known_kind_of_document_gets_a_narrow_interval(self) -> None:
        """After learning, a long prompt's half-width is a few percent, not tens."""
        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(model="fake-claude", callbacks=[handler])
        rng = random.Random(6)
        for _ in range(30):
            n = rng.randint(10, 400)
            llm.invoke(
                [HumanMessage(" ".join(_sentence(rng, 12) for _ in range(n // 12 + 1)))]
            )
        doc = [HumanMessage(" ".join(_sentence(rng, 12) for _ in range(300)))]
        est = handler.estimate(doc, model="fake-claude")
        truth = llm.true_prompt_tokens(doc)
        assert est.low <= truth <= est.high
        assert (est.high - est.tokens) / est.tokens < 0.06


def _legacy_fit() -> tuple[Any, ...]:
    # 13 features (before escapes and tool structure), residual, local.
    x = (1.0, 0.0, 0.0, 2.0, 100.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0)
    return (*x, 12.0, 130.0)


class TestOlderLogs:
    """Events written before these features replay."""

    def test_a_thirteen_feature_fit_replays(self) -> None:
        """A fit event of an older version is read with the new features zero."""
        counter = create_counter("fake-claude", provider="anthropic")
        event = LearnEvent("fake-claude", "fit", _legacy_fit(), "o", 0.0)
        assert counter.replay([event]) == 1
        assert counter.stats().observations == 1

    def test_a_message_event_without_weight_is_firm(self) -> None:
        """Three-value message events (older logs) set a firm cost."""
        counter = create_counter("fake-claude", provider="anthropic")
        (f,) = counter.local.message_features([HumanMessage("hello there")])
        event = LearnEvent("fake-claude", "message", (f.digest, 9.0, 0), "o", 0.0)
        assert counter.replay([event]) == 1
        assert counter.estimate([HumanMessage("hello there")]).known_messages == 1
