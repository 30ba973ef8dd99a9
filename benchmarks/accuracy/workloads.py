"""Deterministic workloads: the streams of calls one handler sees, built from the corpus.

A stream is one handler's life. Per provider and replica there are two:

- the **main** stream: blocks of sessions (`sessions`) shuffled together, a
  block's sessions interleaved round-robin until all are done. It holds
  one-shots from a few tokens to ~28k (the first always ~28k), tiny prompts,
  one-shots under novel system prompts, tool-bound one-shots, growing,
  interleaved and trimmed conversations, agents, and pipelines batched five
  at a time; tool-bound sessions cycle through every tool set (`toolsets`);
- the **pipeline** stream: a fresh handler serving one single-turn pipeline
  (a shared system prompt, a new user message per call).

Everything is drawn from seeded ``random.Random`` instances per provider,
replica and session.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.accuracy.fixtures import PROFILES
from benchmarks.accuracy.sessions import (
    Agent,
    BatchGroup,
    Interleaved,
    Novel,
    OneShot,
    Pipeline,
    Session,
    Tiny,
    ToolShot,
    Trimmed,
    log_uniform,
)
from benchmarks.accuracy.toolsets import TOOLSETS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from benchmarks.accuracy.corpus import Corpus
    from benchmarks.accuracy.sessions import Prompt

__all__ = ["SIZES", "Size", "Workload", "build_pipeline", "build_workload"]


@dataclass(frozen=True)
class Size:
    """How many sessions of each kind one provider's streams hold."""

    oneshots: int
    tiny: int
    novel: int
    toolshots: int
    growing: int
    growing_turns: tuple[int, int]
    # Each interleaved block runs `interleaved_per_block` conversations in turn.
    interleaved_blocks: int
    interleaved_per_block: int
    interleaved_turns: tuple[int, int]
    trimmed: int
    trimmed_turns: tuple[int, int]
    budgets: tuple[int, ...]
    agents: int
    agent_questions: tuple[int, int]
    batches: int
    pipeline_calls: int


SIZES = {
    "quick": Size(
        3, 12, 6, 8, 1, (5, 8), 1, 2, (4, 6), 1, (12, 14), (1500,), 2, (2, 2), 1, 30
    ),
    "full": Size(
        10, 48, 30, 16, 5, (6, 16), 2, 3, (5, 9), 2, (20, 28), (2500, 6000), 4, (2, 3), 3, 100
    ),
}  # fmt: skip


@dataclass
class Workload:
    """Blocks of sessions; a block's sessions are interleaved round-robin."""

    blocks: list[list[Session]]

    def prompts(self) -> Iterator[tuple[Session, Prompt | list[Prompt]]]:
        """Yield (session, prompt or batch of prompts); the caller feeds each reply."""
        for block in self.blocks:
            active = list(block)
            while active:
                for session in list(active):
                    item: Prompt | list[Prompt] | None
                    if isinstance(session, BatchGroup):
                        item = session.next_batch()
                    else:
                        item = session.next_prompt()
                    if item is None:
                        active.remove(session)
                        continue
                    yield session, item


def _rngs(seed: int, provider_index: int) -> tuple[random.Random, Any]:
    rng = random.Random(seed * 1000 + provider_index)

    def child(tag: str) -> random.Random:
        return random.Random(f"{seed}:{provider_index}:{tag}")

    return rng, child


def build_workload(
    corpus: Corpus, seed: int, size: str, provider_index: int
) -> Workload:
    """The deterministic main stream of one provider."""
    spec = SIZES[size]
    rng, child = _rngs(seed, provider_index)

    def profile() -> str:
        return rng.choice(PROFILES)

    # Tool-bound one-shots walk through every tool set from a per-stream start,
    # and agents walk the same way: most tool sets are used more than once.
    offset = rng.randrange(len(TOOLSETS))

    def toolset(i: int) -> list[dict[str, Any]]:
        return list(TOOLSETS[(offset + i) % len(TOOLSETS)])

    blocks: list[list[Session]] = []
    for i in range(spec.oneshots):
        # Sizes spread from a few tokens to ~30k; the first is always large.
        tokens = log_uniform(rng, 4, 30000) if i else 28000.0
        blocks.append(
            [
                OneShot(
                    corpus,
                    child(f"oneshot{i}"),
                    profile(),
                    f"oneshot{i}",
                    tokens=tokens,
                )
            ]
        )
    blocks.extend(
        [Tiny(corpus, child(f"tiny{i}"), profile(), f"tiny{i}")]
        for i in range(spec.tiny)
    )
    blocks.extend(
        [Novel(corpus, child(f"novel{i}"), profile(), f"novel{i}", tokens=log_uniform(rng, 8, 3000))]
        for i in range(spec.novel)
    )  # fmt: skip
    blocks.extend(
        [ToolShot(corpus, child(f"toolshot{i}"), profile(), f"toolshot{i}", tools=toolset(i))]
        for i in range(spec.toolshots)
    )  # fmt: skip
    blocks.extend(
        [Session(corpus, child(f"growing{i}"), profile(), f"growing{i}", turns=rng.randint(*spec.growing_turns))]
        for i in range(spec.growing)
    )  # fmt: skip
    blocks.extend(
        [
            Interleaved(corpus, child(f"inter{i}.{j}"), profile(), f"inter{i}.{j}", turns=rng.randint(*spec.interleaved_turns))
            for j in range(spec.interleaved_per_block)
        ]
        for i in range(spec.interleaved_blocks)
    )  # fmt: skip
    blocks.extend(
        [
            Trimmed(
                corpus, child(f"trim{i}"), profile(), f"trim{i}",
                turns=rng.randint(*spec.trimmed_turns), budget=spec.budgets[i % len(spec.budgets)],
            )
        ]
        for i in range(spec.trimmed)
    )  # fmt: skip
    blocks.extend(
        [
            Agent(
                corpus, child(f"agent{i}"), profile(), f"agent{i}",
                questions=rng.randint(*spec.agent_questions), tools=toolset(i),
            )
        ]
        for i in range(spec.agents)
    )  # fmt: skip
    blocks.extend(
        [BatchGroup(corpus, child(f"batch{i}"), profile(), f"batch{i}")]
        for i in range(spec.batches)
    )
    rng.shuffle(blocks)
    # A first call with tools bound is common (an agent's first step): one
    # tool-bound one-shot goes among the first blocks, so cold starts have some.
    shots = [b for b in blocks if isinstance(b[0], ToolShot)]
    if shots:
        blocks.remove(shots[0])
        blocks.insert(rng.randrange(min(3, len(blocks) + 1)), shots[0])
    return Workload(blocks)


def build_pipeline(
    corpus: Corpus, seed: int, size: str, provider_index: int
) -> Workload:
    """The pipeline stream of one provider: one shared system prompt, single turns.

    Even seeds (replicas) get an ``examples`` pipeline, odd ones a
    ``documents`` pipeline (`sessions.Pipeline`).
    """
    spec = SIZES[size]
    rng, child = _rngs(seed, provider_index)
    style = "documents" if seed % 2 else "examples"
    session = Pipeline(
        corpus,
        child("pipeline"),
        rng.choice(PROFILES),
        f"pipeline-{style}",
        turns=spec.pipeline_calls,
        style=style,
    )
    return Workload([[session]])
