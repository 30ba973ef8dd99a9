"""A prompt reported again in a row is learned like any report, only cheaper."""

from __future__ import annotations

import gc
import weakref
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import CalibratedCounter, TokenUsage, create_counter
from langchain_tokencal._calibration import Inbox, Observation, ReplyParts

if TYPE_CHECKING:
    from langchain_tokencal.events import LearnEvent

PROMPT: list[BaseMessage] = [
    SystemMessage("You answer briefly and cite a source."),
    HumanMessage("What is the tallest mountain in Africa, and how tall is it?"),
]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a fact up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def _usage(tokens: int, out: int = 12) -> TokenUsage:
    return TokenUsage(input_tokens=tokens, output_tokens=out, total_tokens=tokens + out)


def _obs(
    messages: list[BaseMessage],
    tokens: int,
    *,
    tools: list[Any] | None = None,
    reply: str = "Kilimanjaro, 5,895 m.",
) -> Observation:
    return Observation(messages, tools, _usage(tokens), ReplyParts(reply, []))


def _learned(
    counter: CalibratedCounter,
) -> tuple[list[tuple[str, tuple[Any, ...]]], dict[str, int]]:
    """What a counter learned, in order, without each event's wall-clock time.

    Rejections are summed by reason: they are published once per drain.
    """
    events = _PUBLISHED[counter]
    rejects: dict[str, int] = {}
    for e in events:
        if e.kind == "reject":
            rejects[e.values[0]] = rejects.get(e.values[0], 0) + e.values[1]
    return [(e.kind, e.values) for e in events if e.kind != "reject"], rejects


# What each counter published to its listener (the seam a store syncs through).
_PUBLISHED: weakref.WeakKeyDictionary[CalibratedCounter, list[LearnEvent]] = (
    weakref.WeakKeyDictionary()
)


def _listened() -> CalibratedCounter:
    counter = create_counter("claude-test", provider="anthropic")
    events: list[LearnEvent] = []
    counter.listener = events.extend
    _PUBLISHED[counter] = events
    return counter


def _one_by_one(observations: list[Observation]) -> CalibratedCounter:
    """Learn each observation alone: the path that never spots a repeat.

    In the canonical order a drain learns queued reports in, so that the two
    paths see the same sequence.
    """
    counter = _listened()
    inbox = Inbox()
    for obs in observations:
        inbox.put(obs)
    for obs in inbox.take(len(inbox), counter._learner.content_key):
        counter.submit(obs)
        counter.flush()
    return counter


def _queued(observations: list[Observation]) -> CalibratedCounter:
    """Learn the observations in one drain: the path that spots repeats."""
    counter = _listened()
    for obs in observations:
        counter.submit(obs)
    counter.flush()
    return counter


def _assert_same_learning(observations: list[Observation]) -> CalibratedCounter:
    alone, together = _one_by_one(observations), _queued(observations)
    assert _learned(together) == _learned(alone)
    a, b = alone.stats(), together.stats()
    assert (b.observations, b.repeats, b.rejected) == (
        a.observations,
        a.repeats,
        a.rejected,
    )
    assert b.coefficients == a.coefficients
    assert b.calibrated_error == a.calibrated_error
    assert together.estimate(PROMPT) == alone.estimate(PROMPT)
    return together


class TestRepeatedReports:
    """Consecutive reports of one prompt: same events, stats and estimates."""

    def test_repeats_of_a_new_prompt_learn_what_one_at_a_time_learns(self) -> None:
        """The first report is learned in full, the rest as exact repeats."""
        counter = _assert_same_learning([_obs(PROMPT, 61)] * 6)
        assert counter.stats().repeats == 5

    def test_repeats_after_calibration_carry_a_zero_residual(self) -> None:
        """Once the model has reports, a repeat's record holds a zero residual."""
        warmup = [
            _obs([HumanMessage(f"Warm-up question {i} about rivers.")], 20 + i)
            for i in range(6)
        ]
        _assert_same_learning([*warmup, *[_obs(PROMPT, 61)] * 4])

    def test_equal_copies_are_repeats_too(self) -> None:
        """Messages equal by value (not the same objects) are a repeat."""
        copies = [_obs([m.model_copy(deep=True) for m in PROMPT], 61) for _ in range(4)]
        counter = _assert_same_learning(copies)
        assert counter.stats().repeats == 3

    def test_a_different_count_is_learned_in_full(self) -> None:
        """The same prompt reported with another count is no repeat."""
        _assert_same_learning([_obs(PROMPT, 61), _obs(PROMPT, 64), _obs(PROMPT, 61)])

    def test_different_tools_are_no_repeat(self) -> None:
        """The same messages with tools bound are another prompt."""
        _assert_same_learning(
            [_obs(PROMPT, 61), _obs(PROMPT, 61, tools=[TOOL]), _obs(PROMPT, 61)]
        )

    def test_a_different_message_is_no_repeat(self) -> None:
        """Same count, different content: learned in full."""
        other = [PROMPT[0], HumanMessage("What is the longest river in Africa?")]
        _assert_same_learning([_obs(PROMPT, 61), _obs(other, 61), _obs(PROMPT, 61)])

    def test_new_replies_to_a_repeated_prompt_are_learned(self) -> None:
        """A repeat with a new reply still learns that reply's cost."""
        observations = [_obs(PROMPT, 61, reply=f"Answer number {i}.") for i in range(4)]
        counter = _assert_same_learning(observations)
        grown = [*PROMPT, AIMessage("Answer number 3."), HumanMessage("Thanks!")]
        assert counter.estimate(grown).known_messages == 3

    def test_a_rejected_report_is_never_a_template(self) -> None:
        """After an implausible report, the next one is learned in full."""
        _assert_same_learning(
            [_obs(PROMPT, 60_000), _obs(PROMPT, 61), _obs(PROMPT, 61)]
        )

    def test_no_messages_are_kept_after_a_drain(self) -> None:
        """No reference to a learned prompt outlives the drain that learned it."""
        prompt = [HumanMessage("A prompt that is dropped after learning.")]
        probe = weakref.ref(prompt[0])
        counter = _queued([_obs(prompt, 61)] * 3)
        counter.observe([HumanMessage("another")], 12)
        del prompt
        gc.collect()
        assert probe() is None
