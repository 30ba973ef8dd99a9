"""Stress tests: the handler under many threads, many tasks and many failures."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.testing import FakeUsageChatModel

THREADS = 16
CALLS_PER_THREAD = 200
ASYNC_CALLS = 500


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"sunny in {city}"


def strict_handler(**settings: Any) -> TokenCalibrationHandler:
    """A handler that raises its own errors."""
    handler = TokenCalibrationHandler(**settings)
    handler.raise_error = True
    return handler


def prompt_number(call: int) -> int:
    """Every tenth call repeats the call four before it (same model, same tools)."""
    return call - 4 if call % 10 == 9 else call


def prompt_for(worker: int, number: int) -> list[BaseMessage]:
    """The prompt of one worker's question."""
    return [
        SystemMessage("You answer in one short paragraph."),
        HumanMessage(
            f"Worker {worker}, question {number}: how do rivers shape cities?"
        ),
    ]


class TestConcurrentCalls:
    """Sync threads and async tasks share one handler."""

    def test_threads_and_tasks_account_exactly(self):
        """16 threads x 200 invokes plus 500 concurrent ainvokes: exact totals, no leaks."""
        handler = strict_handler()
        models = {
            "stress-claude": FakeUsageChatModel(
                model="stress-claude", callbacks=[handler]
            ),
            "gpt-4o-mini": FakeUsageChatModel.openai_like(
                "gpt-4o-mini", callbacks=[handler]
            ),
        }
        names = sorted(models)
        expected = {name: {"input": 0, "output": 0, "calls": 0} for name in names}
        lock = threading.Lock()
        done = threading.Event()
        errors: list[BaseException] = []

        def record(name: str, prompt: list[BaseMessage], tools, reply) -> None:
            llm = models[name]
            truth = llm.true_prompt_tokens(prompt, tools)
            usage = reply.usage_metadata
            assert usage is not None
            assert usage["input_tokens"] == truth
            with lock:
                expected[name]["input"] += truth
                expected[name]["output"] += usage["output_tokens"]
                expected[name]["calls"] += 1

        def worker(index: int) -> None:
            try:
                for call in range(CALLS_PER_THREAD):
                    name = names[(index + call) % 2]
                    number = prompt_number(call)
                    prompt = prompt_for(index, number)
                    tools = [get_weather] if number % 7 == 0 else None
                    llm = models[name]
                    runnable = llm.bind_tools(tools) if tools else llm
                    record(name, prompt, tools, runnable.invoke(prompt))
            except BaseException as err:  # noqa: BLE001 - reported by the assertion
                errors.append(err)

        def reader() -> None:
            # Counting while others learn: estimates must never fail.
            try:
                i = 0
                while not done.is_set():
                    name = names[i % 2]
                    handler.estimate(prompt_for(99, i % 50), model=name)
                    i += 1
            except BaseException as err:  # noqa: BLE001 - reported by the assertion
                errors.append(err)

        counting = threading.Thread(target=reader)
        counting.start()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(worker, range(THREADS)))

        async def many() -> None:
            prompts = [
                [HumanMessage(f"Async question {i} about tides and harbours.")]
                for i in range(ASYNC_CALLS)
            ]
            llm_names = [names[i % 2] for i in range(ASYNC_CALLS)]
            replies = await asyncio.gather(
                *(
                    models[name].ainvoke(prompt)
                    for name, prompt in zip(llm_names, prompts, strict=True)
                )
            )
            for name, prompt, reply in zip(llm_names, prompts, replies, strict=True):
                record(name, prompt, None, reply)

        try:
            asyncio.run(many())
        finally:
            done.set()
            counting.join()

        assert errors == []
        assert sum(e["calls"] for e in expected.values()) == (
            THREADS * CALLS_PER_THREAD + ASYNC_CALLS
        )
        assert handler.pending_runs == 0
        usage = handler.usage
        assert set(usage) == set(names)
        for name in names:
            assert usage[name]["input_tokens"] == expected[name]["input"]
            assert usage[name]["output_tokens"] == expected[name]["output"]
            assert usage[name]["total_tokens"] == (
                expected[name]["input"] + expected[name]["output"]
            )
        stats = handler.stats()
        assert set(stats) == set(names)
        for name in names:
            s = stats[name]
            accounted = s.observations + s.repeats + sum(s.rejected.values())
            assert accounted == expected[name]["calls"], (name, s.rejected)
            assert s.rejected == {}
            assert s.repeats > 0
            # A prompt worker 0 sent this model without tools is known exactly.
            prompt = prompt_for(0, 2 - names.index(name))
            est = handler.estimate(prompt, model=name)
            assert (est.source, est.tokens) == (
                "exact",
                models[name].true_prompt_tokens(prompt),
            )


def _tokencal_bytes(snapshot: tracemalloc.Snapshot) -> int:
    filtered = snapshot.filter_traces(
        [tracemalloc.Filter(inclusive=True, filename_pattern="*langchain_tokencal*")]
    )
    return sum(stat.size for stat in filtered.statistics("filename"))


class TestMemory:
    """Failures and abandoned runs leave memory flat."""

    def test_failing_calls_leave_memory_flat(self):
        """10,000 failing calls hold no more memory than 1,000 did."""
        handler = strict_handler()
        llm = FakeUsageChatModel(fail_with=ValueError, callbacks=[handler])
        prompt = [HumanMessage("This call always fails.")]

        def fail_once() -> None:
            with contextlib.suppress(ValueError):
                llm.invoke(prompt)

        def fail(times: int) -> None:
            for _ in range(times):
                fail_once()

        fail(50)  # warm up imports and caches
        tracemalloc.start()
        try:
            fail(950)
            gc.collect()
            after_1k = _tokencal_bytes(tracemalloc.take_snapshot())
            fail(9_000)
            gc.collect()
            after_10k = _tokencal_bytes(tracemalloc.take_snapshot())
        finally:
            tracemalloc.stop()
        assert after_10k - after_1k < 16_384, after_10k - after_1k
        assert handler.pending_runs == 0
        assert handler.stats()["fake-claude"].rejected == {"model error": 10_000}

    def test_abandoned_runs_are_bounded(self):
        """Runs that never end (cancelled) keep at most pending_size entries."""
        now = [0.0]
        handler = strict_handler(
            clock=lambda: now[0], pending_size=100, pending_ttl=60.0
        )
        prompt = [[HumanMessage("Abandoned.")]]
        for _ in range(10_000):
            handler.on_chat_model_start({}, prompt, run_id=uuid4())
        assert handler.pending_runs == 100
        now[0] = 61.0
        assert handler.pending_runs == 0
