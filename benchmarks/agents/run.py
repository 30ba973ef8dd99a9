"""Agents: when do LangChain v1 middlewares fire, with which counter?

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.agents            # about a minute on 2 cores
    .venv/bin/python -m benchmarks.agents --quick    # two providers

A ``create_agent`` agent with a system prompt and three tools talks to a
hidden model of the accuracy benchmark (real tokenizers and chat templates the
package does not have: Llama 3.1, Qwen 3, a Claude-like BPE, Mistral's v7
request encoder, DeepSeek V3). Each question takes one to four tool rounds; the
tools answer with corpus text in English, code, JSON or Chinese. The middleware
counts only the state's messages; the provider bills the system prompt and the
tools as well.

For ``SummarizationMiddleware(trigger=("tokens", T))`` and
``ContextEditingMiddleware(ClearToolUsesEdit(trigger=T))`` the benchmark
records the first model call where each fires, and the true prompt the agent
would have sent there (the hidden template over system prompt, messages and
tools): ``true/T`` near 1.0 is on time, above 1.1 late (the request had
already outgrown ``T``). ``due`` is the first counted call whose true request
reached ``T``: a counter that fires there is exactly on time. It also scores ``TokenCalibrationMiddleware``'s
count before every call against the input tokens the model then reports.

Counters: ``ours`` (``TokenCalibrationMiddleware.counter()``); ``default``
(``SummarizationMiddleware``'s own: ``count_tokens_approximately`` scaled by
the last reported usage, and its fallback on the last reported total);
``approx`` (``count_tokens_approximately`` as passed by hand, and
``ContextEditingMiddleware``'s default).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    SummarizationMiddleware,
)
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from benchmarks.accuracy.corpus import Corpus, build_corpus
from benchmarks.accuracy.providers import PROVIDERS, HiddenChatModel, make_model
from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.middleware import TokenCalibrationMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.messages import BaseMessage

RESULTS = Path(__file__).resolve().parents[1] / "results" / "agents.json"
MODELS = (
    "llama-3.1-8b",
    "qwen3-8b",
    "claude-like",
    "mistral-large-latest",
    "deepseek-chat",
)
QUICK_MODELS = ("llama-3.1-8b", "claude-like")
TURNS = 25
TRIGGER = 12_000
SYSTEM = (
    "You are a research assistant for a software team. Answer with evidence: "
    "search the documentation first, fetch the pages you cite, and run the "
    "code you propose. Quote file names and versions exactly. When a tool "
    "fails, say so and try another source. Keep answers under 300 words "
    "unless asked for more, and end with the sources you used. "
) * 6
KINDS = ("en", "code", "json", "zh")


def make_tools(corpus: Corpus) -> list[StructuredTool]:
    """Three tools answering with corpus text, deterministic per arguments."""

    def answer(kind: str, key: str, chars: int) -> str:
        rng = random.Random(key)
        return corpus.text(kind, rng, chars)

    def search_docs(query: str, limit: int = 5) -> str:
        """Search the team's documentation; returns the top passages."""
        return answer(KINDS[len(query) % 4], f"s{query}{limit}", 1800)

    def fetch_page(url: str) -> str:
        """Fetch a web page and return its main text."""
        return answer("en" if len(url) % 3 else "zh", f"f{url}", 2400)

    def run_code(source: str, timeout: float = 10.0) -> str:
        """Run Python code in a sandbox; returns stdout and stderr."""
        return answer("code", f"r{source}{timeout}", 1200)

    return [
        StructuredTool.from_function(f) for f in (search_docs, fetch_page, run_code)
    ]


def questions(corpus: Corpus, seed: int) -> list[str]:
    """The user's turns: short questions, some in Chinese, some with a paste."""
    rng = random.Random(seed)
    out = []
    for i in range(TURNS):
        kind = rng.choice(("en", "en", "zh", "code"))
        size = rng.choice((80, 160, 400))
        out.append(f"Question {i}: {corpus.text(kind, rng, size)}")
    return out


class Probe(AgentMiddleware[Any, Any, Any]):
    """Counts each request before the model runs; reads the reported usage."""

    def __init__(self, count: Callable[[Sequence[BaseMessage]], int]) -> None:
        """Count with ``count``."""
        super().__init__()
        self.count = count
        self.pairs: list[tuple[int, int]] = []

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        """Count, call, record (count, reported input tokens)."""
        predicted = self.count(request.messages)
        response = handler(request)
        usage = response.result[-1].usage_metadata or {}
        self.pairs.append((predicted, int(usage.get("input_tokens", 0))))
        return response


class Recording:
    """A counter that records each list it counted and its answer."""

    def __init__(self, inner: Callable[..., int]) -> None:
        """Record the calls of ``inner``."""
        self.inner = inner
        self.calls: list[tuple[list[BaseMessage], int]] = []

    def __call__(self, messages: Sequence[BaseMessage], **kwargs: Any) -> int:
        """Count with the inner counter and record the call."""
        n = self.inner(messages, **kwargs)
        self.calls.append((list(messages), n))
        return n


class FirstSummary(BaseCallbackHandler):
    """How many counts had been made when the summary model first started."""

    def __init__(self, recording: Recording) -> None:
        """Watch ``recording``."""
        self.recording = recording
        self.at: int | None = None

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:  # noqa: ARG002
        """The summary model starts: the last count is the one that fired."""
        if self.at is None:
            self.at = len(self.recording.calls)


class Summary(HiddenChatModel):
    """The summarization model: a short fixed summary."""

    def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
        del messages, stop, kwargs  # one answer for every prompt
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage("Summary so far."))]
        )


def true_cost(
    llm: HiddenChatModel, tools: list[dict[str, Any]], messages: Sequence[BaseMessage]
) -> int:
    """What the provider bills for the request the agent sends."""
    return llm.true_prompt_tokens([SystemMessage(SYSTEM), *messages], tools)


def converse(agent: Any, turns: list[str]) -> None:
    """Run the conversation, one user turn at a time."""
    messages: list[Any] = []
    for q in turns:
        state = agent.invoke(
            {"messages": [*messages, ("user", q)]}, {"recursion_limit": 60}
        )
        messages = state["messages"]


def summarization(
    spec_model: str, corpus: Corpus, counter_kind: str, seed: int
) -> dict[str, Any]:
    """One summarizing conversation; where the summary first fired."""
    spec = next(s for s in PROVIDERS if s.model == spec_model)
    llm = make_model(spec, corpus)
    tools = make_tools(corpus)
    schemas = [convert_to_openai_tool(t) for t in tools]
    calibration = TokenCalibrationMiddleware(
        TokenCalibrationHandler(), model=llm, tools=tools, system_prompt=SYSTEM
    )
    inner: Callable[..., int]
    if counter_kind == "ours":
        inner = calibration.counter()
    elif counter_kind == "approx":
        # Not the function itself, which the middleware would replace.
        inner = functools.partial(count_tokens_approximately)
    else:
        inner = count_tokens_approximately  # replaced by the middleware's own
    recording = Recording(inner)
    watch = FirstSummary(recording)
    summarizer = Summary(
        model=spec.model,
        provider=spec.provider,
        served=spec.served,
        template_name=spec.template,
        callbacks=[watch],
    )
    kwargs: dict[str, Any] = {}
    if counter_kind != "default":
        kwargs["token_counter"] = recording
    summarize = SummarizationMiddleware(
        summarizer,
        trigger=("tokens", TRIGGER),
        keep=("messages", 6),
        trim_tokens_to_summarize=None,
        **kwargs,
    )
    if counter_kind == "default":
        # Record the middleware's own counter (as it built it).
        recording.inner = summarize.token_counter
        summarize.token_counter = recording
    probe = Probe(calibration.counter())
    middleware = [summarize, probe, calibration]
    agent = create_agent(llm, tools, system_prompt=SYSTEM, middleware=middleware)
    converse(agent, questions(corpus, seed))
    out: dict[str, Any] = {"calls": len(probe.pairs)}
    errors = [abs(c - t) / t for c, t in probe.pairs[5:] if t]
    if counter_kind == "ours":
        out["mape_after_5"] = statistics.fmean(errors) if errors else None
        out["max_after_5"] = max(errors) if errors else None
    out["oracle"] = _oracle(llm, schemas, recording.calls)
    if watch.at is None:
        out["fired"] = None
        return out
    messages, n = recording.calls[watch.at - 1]
    true = true_cost(llm, schemas, messages)
    out.update(fired=watch.at, count=n, true=true, ratio=true / TRIGGER)
    return out


def _oracle(
    llm: HiddenChatModel,
    schemas: list[dict[str, Any]],
    calls: list[tuple[list[BaseMessage], int]],
) -> int | None:
    """The first counted call whose true request reached the trigger."""
    for i, (messages, _) in enumerate(calls):
        if true_cost(llm, schemas, messages) >= TRIGGER:
            return i + 1
    return None


def context_editing(
    spec_model: str, corpus: Corpus, counter_kind: str, seed: int
) -> dict[str, Any]:
    """One conversation with tool-result clearing; where it first fired."""
    spec = next(s for s in PROVIDERS if s.model == spec_model)
    llm = make_model(spec, corpus)
    tools = make_tools(corpus)
    schemas = [convert_to_openai_tool(t) for t in tools]
    calibration = TokenCalibrationMiddleware(
        TokenCalibrationHandler(), model=llm, tools=tools, system_prompt=SYSTEM
    )
    inner = (
        calibration.counter() if counter_kind == "ours" else count_tokens_approximately
    )
    recording = Recording(inner)
    editing = ContextEditingMiddleware(
        edits=[ClearToolUsesEdit(trigger=TRIGGER, keep=3)], token_counter=recording
    )
    agent = create_agent(
        llm, tools, system_prompt=SYSTEM, middleware=[editing, calibration]
    )
    converse(agent, questions(corpus, seed))
    oracle = _oracle(llm, schemas, recording.calls)
    for i, (messages, n) in enumerate(recording.calls):
        if n > TRIGGER:
            true = true_cost(llm, schemas, messages)
            return {
                "fired": i + 1,
                "oracle": oracle,
                "count": n,
                "true": true,
                "ratio": true / TRIGGER,
            }
    return {"fired": None, "oracle": oracle}


def main(argv: list[str] | None = None) -> int:
    """Run, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two providers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    corpus = build_corpus()
    models = QUICK_MODELS if args.quick else MODELS
    rows: list[dict[str, Any]] = []
    print(f"trigger T = {TRIGGER:,} tokens; {TURNS} user turns; 3 tools")
    print(
        f"{'middleware':<16} {'model':<22} {'counter':<8} {'fired':>6} {'due':>4} "
        f"{'count':>7} {'true':>7} {'true/T':>7}  ours: MAPE / max err after call 5"
    )
    for model in models:
        for what, run in (
            ("summarization", summarization),
            ("context-edit", context_editing),
        ):
            kinds = (
                ("ours", "default", "approx")
                if what == "summarization"
                else ("ours", "approx")
            )
            for kind in kinds:
                r = run(model, corpus, kind, args.seed)
                rows.append({"middleware": what, "model": model, "counter": kind, **r})
                fired = "never" if r.get("fired") is None else str(r["fired"])
                extra = ""
                if r.get("mape_after_5") is not None:
                    extra = f"  {r['mape_after_5']:.2%} / {r['max_after_5']:.2%}"
                print(
                    f"{what:<16} {model:<22} {kind:<8} {fired:>6} "
                    f"{r.get('oracle') or '-'!s:>4} "
                    f"{r.get('count', 0):>7,} {r.get('true', 0):>7,} "
                    f"{r.get('ratio', float('nan')):>7.3f}{extra}"
                )
    elapsed = time.perf_counter() - started
    print(f"time: {elapsed:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "machine": platform.platform(),
                "python": sys.version.split()[0],
                "command": "python -m benchmarks.agents"
                + (" --quick" if args.quick else ""),
                "trigger": TRIGGER,
                "rows": rows,
                "seconds": elapsed,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")
    return 0
