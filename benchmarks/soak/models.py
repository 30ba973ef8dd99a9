"""Memory across many models: M models x R reports through one handler.

Each model gets its own conversations, reported through ``handler.observe``
(the path callbacks take, without a chat model's overhead); resident memory
is read after every tenth of the models, so growth shows as a curve, not only
as an end point.
"""

import gc
import time
from dataclasses import dataclass
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, TokenUsage


def rss_mb() -> float:
    """This process's resident memory, in MB (Linux)."""
    statm = Path("/proc/self/statm").read_text(encoding="ascii")
    return int(statm.split()[1]) * 4096 / 1e6


@dataclass(frozen=True, slots=True)
class ModelsRun:
    """Resident memory while ``models`` x ``reports`` reports are learned."""

    models: int
    reports: int
    seconds: float
    rss_start_mb: float
    rss_end_mb: float
    curve_mb: tuple[float, ...]
    per_model_kb: float
    live: int
    parked: int


def run(models: int, reports: int) -> ModelsRun:
    """Learn ``reports`` reports for each of ``models`` models."""
    handler = TokenCalibrationHandler()
    # The tokenizer loaded first (o200k_base is ~80 MB on its own), so the
    # curve shows what the models cost, not the encoding.
    handler.count_messages(["hello"], model="warm-up", provider="anthropic")
    gc.collect()
    start = rss_mb()
    t0 = time.perf_counter()
    curve: list[float] = []
    step = max(1, models // 10)
    for m in range(models):
        name = f"soak-model-{m}"
        system = SystemMessage(f"You are assistant {m}; answer briefly.")
        convo: list[BaseMessage] = [system]
        for i in range(reports):
            if len(convo) > 30:
                convo = [system]
            convo.append(HumanMessage(f"model {m} turn {i}: anything new?"))
            size = 16 + 10 * len(convo) + (m + i) % 7
            usage = TokenUsage(size, 6, size + 6)
            handler.observe(list(convo), usage, name, provider="anthropic")
            convo.append(AIMessage(f"Turn {i}: nothing new."))
        if (m + 1) % step == 0:
            curve.append(round(rss_mb() - start, 1))
    seconds = time.perf_counter() - t0
    end = rss_mb()
    live, parked = len(handler.models), len(handler._registry.parking)  # noqa: SLF001
    handler.close()
    return ModelsRun(
        models,
        reports,
        round(seconds, 1),
        round(start, 1),
        round(end, 1),
        tuple(curve),
        round((end - start) * 1000 / models, 1),
        live,
        parked,
    )
