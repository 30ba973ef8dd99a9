"""Memory stays bounded across models: idle counters parked, the journal capped.

A handler that sees more models than ``max_models`` keeps that many live
counters; the least recently used idle ones are parked compressed and come
back, with what they learned, on their next use. The journal behind `save`
holds at most `_JOURNAL_TOTAL` events in all.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, TokenUsage
from langchain_tokencal._callbacks.parking import Parking
from langchain_tokencal.storage import MemoryStore
from langchain_tokencal.storage._sync import _JOURNAL_TOTAL


def feed(handler: TokenCalibrationHandler, m: int, reports: int = 12) -> None:
    """Learn a short conversation for model ``m``."""
    system = SystemMessage(f"You are assistant {m}.")
    convo: list[object] = [system]
    for i in range(reports):
        convo = [*convo, HumanMessage(f"model {m} turn {i}?")]
        size = 16 + 10 * len(convo) + m % 3
        handler.observe(convo, TokenUsage(size, 4, size + 4), f"m{m}", provider="x")
        convo = [*convo, AIMessage("ok")]


def probe(m: int) -> list[object]:
    """A prompt of model ``m`` that its reports anchor."""
    return [
        SystemMessage(f"You are assistant {m}."),
        HumanMessage(f"model {m} turn 0?"),
    ]


class TestParking:
    """Past max_models, idle counters are parked and restored intact."""

    def test_live_counters_are_bounded(self) -> None:
        """30 models through a handler of 5: 5 live, the rest parked."""
        handler = TokenCalibrationHandler(max_models=5)
        for m in range(30):
            feed(handler, m)
        assert len(handler._registry.counters) <= 6
        assert len(handler._registry.parking) >= 24

    def test_parked_model_comes_back_knowing_what_it_learned(self) -> None:
        """A parked model's count equals the count it gave while live."""
        handler = TokenCalibrationHandler(max_models=3)
        feed(handler, 0)
        before = handler.estimate(probe(0), model="m0")
        for m in range(1, 10):
            feed(handler, m)
        assert "m0" not in handler._registry.counters
        after = handler.estimate(probe(0), model="m0")
        assert (after.tokens, after.low, after.high, after.source) == (
            before.tokens,
            before.low,
            before.high,
            before.source,
        )
        assert after.observations == before.observations

    def test_budget_drops_oldest(self) -> None:
        """Past the byte budget the oldest parked state goes, counted."""
        parking = Parking(budget=200)
        for i in range(20):
            parking.park(f"m{i}", f'{{"n": {i}, "pad": "{"x" * 50}{i}"}}')
        assert parking.dropped > 0
        assert parking.size <= 200
        assert parking.take("m0") is None
        assert parking.take("m19") is not None


class TestJournal:
    """The journal behind save() is capped in all, not only per model."""

    def test_total_cap(self) -> None:
        """The oldest events of any model go first, and reads stay ordered."""
        store = MemoryStore(max_events=50, max_total=120)
        from langchain_tokencal.events import LearnEvent  # noqa: PLC0415

        for i in range(400):
            store.append([LearnEvent(f"m{i % 7}", "residual", (i,), "me", 0.0)])
        events, _ = store.read()
        assert len(events) == 120
        assert [e.values[0] for e in events] == list(range(280, 400))

    def test_handler_journal_is_capped(self) -> None:
        """The handler's journal uses the total cap."""
        handler = TokenCalibrationHandler()
        assert handler._sync.journal.max_total == _JOURNAL_TOTAL
