"""Reports are parsed and billed after the call, at the next read or sync."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._callbacks import SETTLE_AT
from langchain_tokencal.storage import open_store
from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from pathlib import Path

PROMPT = [SystemMessage("Be brief."), HumanMessage("Name three rivers in Europe.")]
MODEL = "fake-claude"


def _strict(**kwargs: object) -> TokenCalibrationHandler:
    handler = TokenCalibrationHandler(**kwargs)  # type: ignore[arg-type]
    handler.raise_error = True
    return handler


def _settled(handler: TokenCalibrationHandler) -> bool:
    """Whether the model's run was settled: repr reads without settling."""
    return f"models=[{MODEL!r}]" in repr(handler)


class TestDeferredSettling:
    """What the callback leaves for later, and who picks it up."""

    def test_the_callback_only_queues_a_chat_reply(self) -> None:
        """After invoke the run is queued, not yet parsed; a read settles it."""
        handler = _strict()
        FakeUsageChatModel(callbacks=[handler]).invoke(PROMPT)
        assert handler.pending_runs == 0
        assert not _settled(handler)
        assert handler.usage[MODEL]["input_tokens"] > 0
        assert _settled(handler)

    def test_the_queue_is_bounded_when_nothing_reads(self) -> None:
        """The SETTLE_AT-th call with no read in between settles inside its callback."""
        handler = _strict()
        llm = FakeUsageChatModel(callbacks=[handler])
        for _ in range(SETTLE_AT - 1):
            llm.invoke(PROMPT)
        assert not _settled(handler)
        llm.invoke(PROMPT)
        assert _settled(handler)

    def test_every_call_is_learned_across_bounded_settles(self) -> None:
        """Calls past several in-callback settles are each learned once."""
        handler = _strict()
        llm = FakeUsageChatModel(callbacks=[handler])
        for _ in range(3 * SETTLE_AT + 5):
            llm.invoke(PROMPT)
        stats = handler.stats()[MODEL]
        assert stats.observations + stats.repeats == 3 * SETTLE_AT + 5

    def test_every_read_settles_first(self) -> None:
        """count, estimate, stats, models, usage, flush and health see the last call."""
        llm = FakeUsageChatModel()
        # Without model=, a count that did not settle would find no model.
        readers = {
            "count_messages": lambda h: h.count_messages(PROMPT),
            "estimate": lambda h: h.estimate(PROMPT),
            "stats": lambda h: h.stats(),
            "models": lambda h: h.models,
            "usage": lambda h: h.usage,
            "flush": lambda h: h.flush(),
            "health": lambda h: h.health(log=False),
        }
        for name, read in readers.items():
            handler = _strict()
            llm.invoke(PROMPT, config={"callbacks": [handler]})
            read(handler)
            assert _settled(handler), name

    def test_the_model_is_resolved_after_settling(self) -> None:
        """count_messages without model= finds the model the call just used."""
        handler = _strict()
        llm = FakeUsageChatModel(callbacks=[handler])
        llm.invoke(PROMPT)
        est = handler.estimate(PROMPT)
        assert (est.model, est.source) == (MODEL, "exact")
        assert est.tokens == llm.true_prompt_tokens(PROMPT)

    def test_a_store_push_settles_first(self, tmp_path: Path) -> None:
        """The sync thread's push bills what calls reported, with no read at all."""
        url = f"sqlite:///{tmp_path / 'calibration.db'}"
        handler = _strict(store=url, sync_interval=3600)
        llm = FakeUsageChatModel(callbacks=[handler])
        replies = [llm.invoke(PROMPT) for _ in range(3)]
        assert not _settled(handler)
        assert handler._sync.sync()  # what the background thread runs
        assert _settled(handler)
        store = open_store(url)
        try:
            billed = store.usage()[MODEL][0]
        finally:
            store.close()
        assert billed == sum(r.usage_metadata["input_tokens"] for r in replies)  # type: ignore[index]
        handler.close()

    def test_threads_settling_at_once_lose_nothing(self) -> None:
        """Readers on many threads drain one queue: each report is billed once."""
        handler = _strict()
        llm = FakeUsageChatModel(callbacks=[handler])
        reply = llm.invoke(PROMPT)
        per_call = reply.usage_metadata["input_tokens"]  # type: ignore[index]
        calls_per_thread = 40

        def work() -> None:
            for _ in range(calls_per_thread):
                llm.invoke(PROMPT)
                handler.count_messages(PROMPT, model=MODEL)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = 1 + 8 * calls_per_thread
        assert handler.usage[MODEL]["input_tokens"] == total * per_call
        stats = handler.stats()[MODEL]
        assert stats.observations + stats.repeats == total
