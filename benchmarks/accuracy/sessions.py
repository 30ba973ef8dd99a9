"""Sessions: how an application builds its prompts, call after call.

Every session asks for its next prompt (`Session.next_prompt`), the driver
calls the model, and the session takes the reply (`Session.feed`), as an
application does. `BatchGroup` hands out five prompts at once, for
``Runnable.batch``. Kinds (the ``kind`` label of every call):

| kind | what |
|---|---|
| ``growing`` | a conversation whose every call sends the whole history so far |
| ``interleaved`` | growing conversations advanced in turn |
| ``trimmed`` | a long conversation sent through ``trim_messages(strategy="last")`` |
| ``agent`` | tools bound; AI tool calls answered by ``ToolMessage`` results (JSON, often ASCII-escaped non-English text) |
| ``oneshot`` | a system prompt (sometimes) and one user message, a few tokens to ~30k |
| ``tiny`` | a one-shot of a few tokens (a greeting, a router's question) |
| ``novel`` | a one-shot under a system prompt nobody sent before |
| ``toolshot`` | a tool-bound one-shot (extraction, routing): one call, one tool call back |
| ``pipeline`` | single-turn calls sharing one long system prompt, different user messages |
| ``batch`` | five single-turn calls of a pipeline through ``.batch()`` |
"""

from __future__ import annotations

import math
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
from benchmarks.accuracy.fixtures import (
    ASKS,
    PERSONAS,
    PIPELINE_TASKS,
    SYSTEMS,
    TINY,
    TINY_ASKS,
)
from benchmarks.accuracy.toolsets import toolset_name

if TYPE_CHECKING:
    import random

    from benchmarks.accuracy.corpus import Corpus

__all__ = [
    "CPT",
    "MAX_PROMPT",
    "Agent",
    "BatchGroup",
    "Interleaved",
    "Novel",
    "OneShot",
    "Pipeline",
    "Prompt",
    "Session",
    "Tiny",
    "ToolShot",
    "Trimmed",
    "log_uniform",
    "novel_system",
    "pipeline_system",
]

# Characters per token of each kind on the least efficient hidden tokenizer,
# to turn token targets into text lengths that stay within the target.
CPT = {
    "en": 4.3,
    "code": 4.3,
    "json": 3.0,
    "zh": 1.3,
    "ja": 1.2,
    "ru": 2.5,
    "ar": 1.4,
    "hi": 1.05,
}
MAX_PROMPT = 28000  # rough tokens: sessions stop growing past this


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


@dataclass
class Prompt:
    """One call's input, with labels for the diagnosis."""

    messages: list[BaseMessage]
    tools: list[dict[str, Any]] | None
    kind: str
    profile: str
    session: str

    @property
    def toolset(self) -> str | None:
        return toolset_name(self.tools)


def pipeline_system(corpus: Corpus, rng: random.Random, profile: str) -> str:
    """A pipeline's system prompt: fixed instructions plus worked examples."""
    kind = profile if profile in (*LANGUAGES, "en", "code") else "en"
    parts = [rng.choice(PIPELINE_TASKS), "", "Examples:"]
    for i in range(rng.randint(2, 8)):
        tokens = log_uniform(rng, 40, 300)
        sample = corpus.text(kind, rng, int(tokens * CPT[kind]))
        parts.append(f"\n### Example {i + 1}\nInput:\n{sample}\nOutput: (as specified)")
    return "\n".join(parts)


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
        self.tools: list[dict[str, Any]] | None = None
        roll = rng.random()
        if roll < 0.7:
            self.history.append(SystemMessage(rng.choice(SYSTEMS)))
        elif roll < 0.85:
            doc = corpus.document(
                rng.choice(("en", "code")), rng, int(log_uniform(rng, 2000, 16000))
            )
            self.history.append(
                SystemMessage(f"{rng.choice(SYSTEMS)}\n\nReference material:\n\n{doc}")
            )

    def size(self) -> float:
        """Rough tokens of the history on the least efficient tokenizer.

        ASCII costs a token per 4 characters, anything else a token per
        character (Devanagari on the worst vocabularies is about that).
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
                log_uniform(rng, 3000, 12000) if paste else log_uniform(rng, 6, 500)
            )
            if paste and self.size() > MAX_PROMPT - 16000:
                tokens = log_uniform(rng, 6, 500)
        profile = self.profile
        if profile == "mixed":
            kind = rng.choice(("code", "json", "en"))
            return f"{rng.choice(ASKS)}\n\n{self._body(kind, tokens)}"
        body = self._body(profile, tokens)
        if profile in ("en", "code") or rng.random() < 0.3:
            return f"{rng.choice(ASKS)}\n\n{body}"
        return body

    def _body(self, kind: str, tokens: float) -> str:
        chars = max(int(tokens * CPT[kind]), 8)
        if kind == "json":
            return self.corpus.json_result(self.rng, chars)
        if tokens > 1500 and kind in ("en", "code"):
            return self.corpus.document(kind, self.rng, chars)
        return self.corpus.text(kind, self.rng, chars)

    def prompt(self, messages: list[BaseMessage]) -> Prompt:
        return Prompt(messages, self.tools, self.kind, self.profile, self.sid)

    def next_prompt(self) -> Prompt | None:
        if self.waiting:
            msg = "feed() the previous reply first"
            raise RuntimeError(msg)
        if self.turns_left <= 0 or (
            self.kind != "trimmed" and self.size() > MAX_PROMPT
        ):
            return None
        self.turns_left -= 1
        self.history.append(HumanMessage(self.user_text()))
        self.waiting = True
        return self.prompt(self.prompt_messages())

    def prompt_messages(self) -> list[BaseMessage]:
        return list(self.history)

    def feed(self, reply: AIMessage) -> None:
        self.waiting = False
        self.history.append(reply)


class Interleaved(Session):
    kind = "interleaved"


class OneShot(Session):
    """One call: the session's system prompt (if any) and one user message."""

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

    def first_text(self) -> str:
        return self.user_text(self.tokens)

    def next_prompt(self) -> Prompt | None:
        if self.turns_left <= 0:
            return None
        self.turns_left -= 1
        return self.prompt([*self.history, HumanMessage(self.first_text())])

    def feed(self, reply: AIMessage) -> None:
        pass


class Tiny(OneShot):
    """A few tokens, with no or a one-line system prompt."""

    kind = "tiny"

    def __init__(
        self, corpus: Corpus, rng: random.Random, profile: str, sid: str
    ) -> None:
        super().__init__(corpus, rng, profile, sid, tokens=0)
        self.history = [SystemMessage(SYSTEMS[0])] if rng.random() < 0.4 else []

    def first_text(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.35:
            return rng.choice(TINY)  # the same few words again: apps repeat these
        if self.profile in LANGUAGES and roll < 0.8:
            return self.corpus.text(self.profile, rng, rng.randint(2, 14))[:14]
        words = self.corpus.text("en", rng, 200).split()
        start = rng.randrange(max(len(words) - 8, 1))
        return f"{rng.choice(TINY_ASKS)} {' '.join(words[start : start + rng.randint(1, 7)])}"


def novel_system(
    corpus: Corpus, rng: random.Random, lo: float, hi: float
) -> SystemMessage:
    """A system prompt nobody sent before: a persona and some context."""
    context = corpus.text("en", rng, int(log_uniform(rng, lo, hi) * CPT["en"]))
    return SystemMessage(f"{rng.choice(PERSONAS)}.\n\nContext:\n{context}")


class Novel(OneShot):
    """A one-shot under a system prompt of its own (no known prefix)."""

    kind = "novel"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        tokens: float,
    ) -> None:
        super().__init__(corpus, rng, profile, sid, tokens=tokens)
        self.history = [novel_system(corpus, rng, 60, 900)]


class ToolShot(OneShot):
    """A tool-bound one-shot: the model answers with a tool call, and that is all."""

    kind = "toolshot"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        tools: list[dict[str, Any]],
    ) -> None:
        super().__init__(corpus, rng, profile, sid, tokens=log_uniform(rng, 8, 600))
        self.tools = tools
        if rng.random() < 0.5:
            self.history = [novel_system(corpus, rng, 30, 300)]
        elif self.history and len(self.history[0].content) > 2000:
            self.history[0] = SystemMessage(rng.choice(SYSTEMS))


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
        return super().user_text(tokens or log_uniform(self.rng, 6, 400))

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
            return self.prompt(list(self.history))
        return super().next_prompt()

    def tool_result(self) -> str:
        rng = self.rng
        tokens = log_uniform(rng, 20, 2500)
        tokens = min(tokens, max(20.0, (MAX_PROMPT - self.size()) / 2))
        roll = rng.random()
        lang = self.profile if self.profile in LANGUAGES else rng.choice(LANGUAGES)
        if roll < 0.2 and self.profile in LANGUAGES:
            return self.corpus.text(self.profile, rng, int(tokens * CPT[self.profile]))
        if roll < 0.55 and (self.profile in LANGUAGES or roll < 0.3):
            # json.dumps' default: every non-ASCII character as a \\uXXXX escape.
            return self.corpus.records(lang, rng, int(tokens * CPT["json"]))
        return self.corpus.json_result(rng, int(tokens * CPT["json"]))

    def feed(self, reply: AIMessage) -> None:
        super().feed(reply)
        if reply.tool_calls:
            for call in reply.tool_calls:
                self.history.append(
                    ToolMessage(
                        self.tool_result(), tool_call_id=call["id"], name=call["name"]
                    )
                )
            self.pending_tool = True


class Pipeline(Session):
    """Single-turn calls: one shared system prompt, a new user message each time.

    Two styles: ``examples`` (instructions and worked examples, hundreds to
    thousands of tokens, then short user messages) and ``documents`` (a
    one-paragraph instruction, then a document of a few hundred to a few
    thousand tokens per call, as a summarizing or extracting step sends).
    """

    kind = "pipeline"

    def __init__(
        self,
        corpus: Corpus,
        rng: random.Random,
        profile: str,
        sid: str,
        *,
        turns: int,
        style: str = "examples",
    ) -> None:
        super().__init__(corpus, rng, profile, sid, turns=turns)
        self.style = style
        if style == "documents":
            self.system = SystemMessage(rng.choice(PIPELINE_TASKS))
        else:
            self.system = SystemMessage(pipeline_system(corpus, rng, profile))

    def next_prompt(self) -> Prompt | None:
        if self.turns_left <= 0:
            return None
        self.turns_left -= 1
        if self.style == "documents":
            text = self.user_text(log_uniform(self.rng, 150, 4000))
        else:
            text = self.user_text(log_uniform(self.rng, 8, 700))
        return self.prompt([self.system, HumanMessage(text)])

    def feed(self, reply: AIMessage) -> None:
        pass


class BatchGroup(Pipeline):
    """Five calls of a pipeline, sent together through ``Runnable.batch``."""

    kind = "batch"
    SIZE = 5

    def __init__(
        self, corpus: Corpus, rng: random.Random, profile: str, sid: str
    ) -> None:
        super().__init__(corpus, rng, profile, sid, turns=self.SIZE)

    def next_batch(self) -> list[Prompt] | None:
        prompts = []
        while (p := Pipeline.next_prompt(self)) is not None:
            prompts.append(p)
        return prompts or None
