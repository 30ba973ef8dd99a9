"""Deterministic workloads: the prompts an application sends, built from the corpus.

A workload is a list of blocks; a block is one or more `Session` objects run
round-robin (several conversations interleaved) until all are done. Every
session asks for its next prompt (`Session.next_prompt`), the driver calls the
model, and the session takes the reply (`Session.feed`) into its history, as
an application does. Kinds:

- ``oneshot``: a system prompt (sometimes) and one user message, from a few
  tokens to ~30k (a pasted document);
- ``growing``: a conversation whose every call sends the whole history so far;
- ``interleaved``: three growing conversations advanced in turn;
- ``trimmed``: a long conversation sent through ``trim_messages(strategy="last",
  max_tokens=budget, start_on="human", include_system=True)`` with langchain's
  approximate counter, so the front of the history changes from call to call;
- ``agent``: tools bound, AI tool calls answered by ``ToolMessage`` JSON results,
  several questions in one growing history.

Everything is drawn from one seeded ``random.Random`` per provider and session.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.messages.utils import count_tokens_approximately

from benchmarks.accuracy.corpus import LANGUAGES
from benchmarks.accuracy.fixtures import ASKS, PROFILES, SYSTEMS, TOOLSETS

if TYPE_CHECKING:
    from benchmarks.accuracy.corpus import Corpus

__all__ = ["SIZES", "Prompt", "Session", "Size", "Workload", "build_workload"]

# Characters per token of each kind on the least efficient hidden tokenizer
# (cl100k_base for most scripts), to turn token targets into text lengths
# that stay within the target on every provider.
_CPT = {
    "en": 4.3,
    "code": 4.3,
    "json": 3.0,
    "zh": 1.3,
    "ja": 1.2,
    "ru": 2.5,
    "ar": 1.4,
    "hi": 1.05,
}
_MAX_PROMPT = 28000  # rough tokens: sessions stop growing past this


@dataclass(frozen=True)
class Size:
    """How many sessions of each kind one provider's workload holds."""

    oneshots: int
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


SIZES = {
    "quick": Size(4, 2, (5, 8), 1, 2, (4, 6), 1, (12, 14), (1500,), 1, (2, 2)),
    "full": Size(14, 6, (6, 18), 2, 3, (5, 10), 2, (24, 32), (2500, 6000), 3, (2, 3)),
}


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


@dataclass
class Prompt:
    """One call's input, with labels for the diagnosis."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] | None
    kind: str
    profile: str
    session: str


class Session:
    """A growing conversation; subclasses change how prompts are built."""

    kind = "growing"

    def __init__(
        self, corpus: Corpus, rng: random.Random, profile: str, sid: str, *, turns: int
    ) -> None:
        self.corpus = corpus
        self.rng = rng
        self.profile = profile
        self.turns_left = turns
        self.sid = sid
        self.history: list[BaseMessage] = []
        self.waiting = False
        roll = rng.random()
        if roll < 0.7:
            self.history.append(SystemMessage(rng.choice(SYSTEMS)))
        elif roll < 0.85:
            doc = corpus.document(
                rng.choice(("en", "code")), rng, int(_log_uniform(rng, 2000, 16000))
            )
            self.history.append(
                SystemMessage(f"{rng.choice(SYSTEMS)}\n\nReference material:\n\n{doc}")
            )

    def size(self) -> float:
        """Rough tokens of the history on the least efficient tokenizer.

        ASCII costs a token per 4 characters, anything else a token per
        character (Devanagari on cl100k_base is about that).
        """
        total = 0.0
        for m in self.history:
            text = str(m.content)
            ascii_chars = len(text.encode("ascii", "ignore"))
            total += ascii_chars / 4 + (len(text) - ascii_chars)
        return total

    def user_text(self, tokens: float | None = None) -> str:
        rng = self.rng
        if tokens is None:
            # Mostly short turns, now and then a paste of a few thousand tokens.
            paste = rng.random() < 0.08
            tokens = (
                _log_uniform(rng, 3000, 12000) if paste else _log_uniform(rng, 6, 500)
            )
            if paste and self.size() > _MAX_PROMPT - 16000:
                tokens = _log_uniform(rng, 6, 500)
        profile = self.profile
        if profile == "mixed":
            kind = rng.choice(("code", "json", "en"))
            body = self._body(kind, tokens)
            return f"{rng.choice(ASKS)}\n\n{body}"
        body = self._body(profile, tokens)
        if profile in ("en", "code") or rng.random() < 0.3:
            return f"{rng.choice(ASKS)}\n\n{body}"
        return body

    def _body(self, kind: str, tokens: float) -> str:
        chars = max(int(tokens * _CPT[kind]), 8)
        if kind == "json":
            return self.corpus.json_result(self.rng, chars)
        if tokens > 1500 and kind in ("en", "code"):
            return self.corpus.document(kind, self.rng, chars)
        return self.corpus.text(kind, self.rng, chars)

    def next_prompt(self) -> Prompt | None:
        if self.waiting:
            msg = "feed() the previous reply first"
            raise RuntimeError(msg)
        if self.turns_left <= 0 or (
            self.kind != "trimmed" and self.size() > _MAX_PROMPT
        ):
            return None
        self.turns_left -= 1
        self.history.append(HumanMessage(self.user_text()))
        self.waiting = True
        return Prompt(self.prompt_messages(), None, self.kind, self.profile, self.sid)

    def prompt_messages(self) -> list[BaseMessage]:
        return list(self.history)

    def feed(self, reply: AIMessage) -> None:
        self.waiting = False
        self.history.append(reply)


class Interleaved(Session):
    kind = "interleaved"


class OneShot(Session):
    kind = "oneshot"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        tokens: float,
    ) -> None:
        super().__init__(corpus, rng, profile, sid, turns=1)
        self.tokens = tokens
        if self.history and len(self.history[0].content) > 2000 and tokens > 2000:
            self.history[0] = SystemMessage(rng.choice(SYSTEMS))

    def next_prompt(self) -> Prompt | None:
        if self.turns_left <= 0:
            return None
        self.turns_left -= 1
        self.history.append(HumanMessage(self.user_text(self.tokens)))
        return Prompt(list(self.history), None, self.kind, self.profile, self.sid)

    def feed(self, reply: AIMessage) -> None:
        pass


class Trimmed(Session):
    """A long conversation sent trimmed to a token budget, newest turns kept."""

    kind = "trimmed"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        turns: int,
        budget: int,
    ) -> None:
        super().__init__(corpus, rng, profile, sid, turns=turns)
        self.budget = budget
        # The system prompt stays short here: a budget must leave room for turns.
        if self.history and len(self.history[0].content) > 2000:
            self.history[0] = SystemMessage(rng.choice(SYSTEMS))

    def user_text(self, tokens: float | None = None) -> str:
        return super().user_text(tokens or _log_uniform(self.rng, 6, 400))

    def prompt_messages(self) -> list[BaseMessage]:
        kept = trim_messages(
            self.history,
            max_tokens=self.budget,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            include_system=True,
        )
        if not any(isinstance(m, HumanMessage) for m in kept):
            # The newest question alone is over budget: an app still sends it.
            system = [m for m in self.history[:1] if isinstance(m, SystemMessage)]
            kept = [*system, self.history[-1]]
        return kept


class Agent(Session):
    """Questions answered through tool calls; the history keeps every step."""

    kind = "agent"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        questions: int,
        tools: list[dict[str, Any]],
    ) -> None:
        super().__init__(corpus, rng, profile, sid, turns=questions)
        self.tools = tools
        self.pending_tool = False

    def next_prompt(self) -> Prompt | None:
        if self.pending_tool:
            self.pending_tool = False
            self.waiting = True
            return Prompt(
                list(self.history), self.tools, self.kind, self.profile, self.sid
            )
        prompt = super().next_prompt()
        if prompt is not None:
            prompt.tools = self.tools
        return prompt

    def feed(self, reply: AIMessage) -> None:
        super().feed(reply)
        if reply.tool_calls:
            for call in reply.tool_calls:
                tokens = _log_uniform(self.rng, 20, 2500)
                tokens = min(tokens, max(20.0, (_MAX_PROMPT - self.size()) / 2))
                if self.rng.random() < 0.25 and self.profile in LANGUAGES:
                    content = self.corpus.text(
                        self.profile, self.rng, int(tokens * _CPT[self.profile])
                    )
                else:
                    content = self.corpus.json_result(
                        self.rng, int(tokens * _CPT["json"])
                    )
                self.history.append(
                    ToolMessage(content, tool_call_id=call["id"], name=call["name"])
                )
            self.pending_tool = True


@dataclass
class Workload:
    """Blocks of sessions; a block's sessions are interleaved round-robin."""

    blocks: list[list[Session]]

    def prompts(self) -> Any:
        """Yield (session, prompt) pairs; the caller must `feed` each reply."""
        for block in self.blocks:
            active = list(block)
            while active:
                for session in list(active):
                    prompt = session.next_prompt()
                    if prompt is None:
                        active.remove(session)
                        continue
                    yield session, prompt


def build_workload(
    corpus: Corpus, seed: int, size: str, provider_index: int
) -> Workload:
    """The deterministic workload of one provider."""
    spec = SIZES[size]
    rng = random.Random(seed * 1000 + provider_index)

    def child(tag: str) -> random.Random:
        return random.Random(f"{seed}:{provider_index}:{tag}")

    def profile() -> str:
        return rng.choice(PROFILES)

    blocks: list[list[Session]] = []
    for i in range(spec.oneshots):
        # Sizes spread from a few tokens to ~30k; the first is always large.
        tokens = _log_uniform(rng, 4, 30000) if i else 28000.0
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
        [
            Session(
                corpus,
                child(f"growing{i}"),
                profile(),
                f"growing{i}",
                turns=rng.randint(*spec.growing_turns),
            )
        ]
        for i in range(spec.growing)
    )
    blocks.extend(
        [
            Interleaved(
                corpus,
                child(f"inter{i}.{j}"),
                profile(),
                f"inter{i}.{j}",
                turns=rng.randint(*spec.interleaved_turns),
            )
            for j in range(spec.interleaved_per_block)
        ]
        for i in range(spec.interleaved_blocks)
    )
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
                questions=rng.randint(*spec.agent_questions),
                tools=list(TOOLSETS[(provider_index + i) % len(TOOLSETS)]),
            )
        ]
        for i in range(spec.agents)
    )  # fmt: skip
    rng.shuffle(blocks)
    return Workload(blocks)
