"""Worst ``count_messages`` latency while busy threads invoke and report.

Workers invoke an offline chat model with the handler attached, as fast as
they can, each growing its own conversation; the measuring thread counts a
fixed history over and over and records how long each count took. The same
run without the handler on the workers is the baseline: what the GIL and the
scheduler cost a count when nothing is learned.
"""

import statistics
import threading
import time
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._reasons import BACKLOG
from langchain_tokencal.testing import FakeUsageChatModel

MODEL = "soak-model"


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-count latencies of one run, in milliseconds."""

    label: str
    threads: int
    seconds: float
    counts: int
    reports: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    learned: int
    dropped: int


def _history(n: int) -> list[BaseMessage]:
    out: list[BaseMessage] = [SystemMessage("You answer questions about soak tests.")]
    for i in range(n):
        out += [HumanMessage(f"Question {i}: how long?"), AIMessage(f"Answer {i}.")]
    return out


def _worker(
    llm: FakeUsageChatModel,
    handler: TokenCalibrationHandler | None,
    stop: threading.Event,
    seed: int,
    done: list[int],
) -> None:
    config = {"callbacks": [handler]} if handler is not None else {}
    convo: list[BaseMessage] = [SystemMessage(f"You are worker {seed}.")]
    n = 0
    while not stop.is_set():
        convo.append(HumanMessage(f"worker {seed} turn {n}: say something new"))
        reply = llm.invoke(convo, config=config)  # type: ignore[arg-type]
        convo.append(reply)
        if len(convo) > 40:  # a trimmed window, so prompts stay small
            convo = [convo[0], *convo[-20:]]
        n += 1
    done.append(n)


def run(threads: int, seconds: float, *, with_handler: bool) -> Latency:
    """Count for ``seconds`` while ``threads`` workers invoke."""
    handler = TokenCalibrationHandler()
    llm = FakeUsageChatModel(model=MODEL)
    history = _history(20)
    # Warm: the model is known and the history memoized before timing.
    llm.invoke(history, config={"callbacks": [handler]})
    handler.count_messages(history, model=MODEL)
    stop = threading.Event()
    done: list[int] = []
    workers = [
        threading.Thread(
            target=_worker,
            args=(llm, handler if with_handler else None, stop, i, done),
            daemon=True,
        )
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        handler.count_messages(history, model=MODEL)
        samples.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.001)  # a caller between counts, not a spin
    stop.set()
    for w in workers:
        w.join(timeout=30)
    stats = handler.stats()[MODEL]
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return Latency(
        "handler on workers" if with_handler else "no handler on workers",
        threads,
        seconds,
        len(samples),
        sum(done),
        round(statistics.median(samples), 3),
        round(p99, 3),
        round(samples[-1], 3),
        stats.observations,
        stats.rejected.get(BACKLOG, 0),
    )
