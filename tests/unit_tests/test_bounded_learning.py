"""Learning is bounded: a count never pays for a backlog, the queue never grows.

The latency itself (16 busy threads) is measured by ``benchmarks/soak``; these
tests pin the rules that bound it: what a count learns, what a reporting
callback learns, what the queue keeps and how a drop shows.
"""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, TokenUsage, create_counter
from langchain_tokencal._calibration import INBOX_CAPACITY, Inbox, Observation
from langchain_tokencal._reasons import BACKLOG
from langchain_tokencal.testing import FakeUsageChatModel

SYSTEM = SystemMessage("You answer in one short sentence.")


def _obs(i: int, tokens: int | None = None) -> Observation:
    messages: list[BaseMessage] = [SYSTEM, HumanMessage(f"question number {i}")]
    n = tokens if tokens is not None else 20 + i % 7
    return Observation(messages, None, TokenUsage(n, 3, n + 3), None)


class TestInbox:
    """The queue of reports waiting to be learned."""

    def test_drops_the_oldest_beyond_capacity_and_counts_them(self) -> None:
        """A full queue keeps the newest reports and counts each drop once."""
        inbox = Inbox(capacity=3)
        observations = [_obs(i) for i in range(5)]
        for obs in observations:
            inbox.put(obs)
        assert len(inbox) == 3
        assert inbox.take_dropped() == 2
        assert inbox.take_dropped() == 0  # counted once
        taken = inbox.take(10, lambda obs: ())
        assert {id(o) for o in taken} == {id(o) for o in observations[2:]}

    def test_take_orders_by_size_then_content_whatever_the_arrival(self) -> None:
        """Taken reports are in one order, whichever thread queued first."""
        a = Observation([SYSTEM], None, TokenUsage(10, 1, 11), None)
        b = Observation([SYSTEM, HumanMessage("x")], None, TokenUsage(30, 1, 31), None)
        c = Observation([SYSTEM, HumanMessage("y")], None, TokenUsage(40, 1, 41), None)
        for order in ((a, b, c), (c, b, a), (b, c, a)):
            inbox = Inbox()
            for obs in order:
                inbox.put(obs)
            # Fewer messages first; among as many, the larger count first.
            assert inbox.take(3, lambda obs: ()) == [a, c, b]

    def test_give_back_restores_the_front_in_order(self) -> None:
        """Reports given back are taken again first, in their order."""
        inbox = Inbox()
        observations = [_obs(i, 20) for i in range(4)]
        for obs in observations:
            inbox.put(obs)
        taken = inbox.take(2, lambda obs: (obs.messages[1].content,))
        inbox.give_back(taken)
        again = inbox.take(4, lambda obs: (obs.messages[1].content,))
        assert again == observations


class TestCountsLearnAFixedAmount:
    """What a count learns before it counts."""

    def test_a_short_queue_is_learned_by_the_next_count(self) -> None:
        """One caller's recent reports are reflected in its next count."""
        counter = create_counter("claude-bounded", provider="anthropic")
        for i in range(10):
            counter.submit(_obs(i), learn=False)
        counter.count([SYSTEM, HumanMessage("hello")])
        assert counter.stats().observations == 10
        assert not counter._inbox

    def test_a_long_queue_is_not_the_counts_to_learn(self) -> None:
        """A count under a backlog learns none of it; stats learns it all."""
        counter = create_counter("claude-bounded", provider="anthropic")
        for i in range(200):
            counter.submit(_obs(i), learn=False)
        counter.count([SYSTEM, HumanMessage("hello")])
        assert len(counter._inbox) == 200  # the reporters learn it, in chunks
        assert counter.stats().observations == 200  # stats learns everything

    def test_reporters_learn_a_long_queue_in_chunks_as_they_report(self) -> None:
        """Callbacks keep the queue short by learning chunks."""
        counter = create_counter("claude-bounded", provider="anthropic")
        for i in range(500):
            counter.submit(_obs(i))
        # Each report past the threshold learns a chunk: the queue stays short.
        assert len(counter._inbox) < 100
        assert counter.stats().observations == 500

    def test_an_overflowing_queue_drops_the_oldest_with_a_named_reason(self) -> None:
        """A drop is a rejection with its own reason, never silent."""
        counter = create_counter("claude-bounded", provider="anthropic")
        extra = 37
        for i in range(INBOX_CAPACITY + extra):
            counter.submit(_obs(i), learn=False)
        stats = counter.stats()
        assert stats.rejected.get(BACKLOG) == extra
        assert stats.observations == INBOX_CAPACITY


def test_a_handler_under_a_burst_keeps_every_report_it_can_learn() -> None:
    """A batch of 300 at 8 threads is learned whole: nothing is dropped."""
    handler = TokenCalibrationHandler()
    llm = FakeUsageChatModel(model="claude-burst", provider="anthropic")
    prompts = [[SYSTEM, HumanMessage(f"burst {i}")] for i in range(300)]
    llm.batch(prompts, config={"callbacks": [handler], "max_concurrency": 8})  # type: ignore[arg-type]
    n = handler.count_messages(prompts[0], model="claude-burst")
    assert n > 0
    stats = handler.stats()["claude-burst"]
    assert stats.observations + sum(stats.rejected.values()) == 300
    assert BACKLOG not in stats.rejected
