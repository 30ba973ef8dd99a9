"""Play one stream of calls through LangChain with one handler; one record per call.

Before each call (or each batch), ``handler.estimate(messages, model=,
tools=)`` is taken once and every baseline predicts the same prompt; then the
model is called with ``config={"callbacks": [handler]}`` (through
``bind_tools`` when tools are bound, through ``.batch()`` for a batch), so the
handler learns only through the real callback path.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, ToolMessage

from benchmarks.accuracy.baselines import Call, make_methods
from benchmarks.accuracy.batchorder import run_batch
from benchmarks.accuracy.providers import make_model
from langchain_tokencal import TokenCalibrationHandler, local_counter

if TYPE_CHECKING:
    from benchmarks.accuracy.corpus import Corpus
    from benchmarks.accuracy.providers import ProviderSpec
    from benchmarks.accuracy.sessions import Prompt
    from benchmarks.accuracy.workloads import Workload

__all__ = ["run_stream"]


def _tool_msgs(prompt: Prompt) -> tuple[int, bool]:
    """(tool calls + tool results in the prompt, any result with \\uXXXX escapes)."""
    n = 0
    escaped = False
    for m in prompt.messages:
        if isinstance(m, AIMessage):
            n += len(m.tool_calls)
        elif isinstance(m, ToolMessage):
            n += 1
            escaped = escaped or "\\u" in str(m.content)
    return n, escaped


class _Stream:
    def __init__(
        self, spec: ProviderSpec, corpus: Corpus, stream: str, replica: int, seed: int
    ) -> None:
        self.spec = spec
        self.stream = stream
        self.replica = replica
        # The hidden truths of Mistral (mistral-common) and gpt-oss (harmony)
        # are the tokenizers the package itself now counts those models with:
        # its own tokenizers are off so the benchmark still measures learning.
        self.handler = TokenCalibrationHandler(own_tokenizers=False)
        self.handler.raise_error = True  # a failing callback must fail the benchmark
        self.model = make_model(spec, corpus)
        self.methods = make_methods()
        self.records: list[dict[str, Any]] = []
        self.bound: dict[int, Any] = {}
        self.toolsets_seen: dict[str, int] = {}
        self.rng = random.Random(f"{seed}:{spec.model}:{stream}:{replica}")
        self._local: Any = None

    def local(self, est: Any, prompt: Prompt) -> int:
        value = getattr(est, "local_tokens", None)
        if value is not None:
            return int(value)
        if self._local is None:
            self._local = local_counter(self.spec.model, self.spec.provider)
        return int(self._local(prompt.messages, prompt.tools))

    def predict(self, prompt: Prompt) -> tuple[Call, dict[str, Any]]:
        est = self.handler.estimate(
            prompt.messages, model=self.spec.model, tools=prompt.tools
        )
        call = Call(
            self.spec.model, prompt.messages, prompt.tools, est, self.local(est, prompt)
        )
        tool_msgs, escaped = _tool_msgs(prompt)
        toolset = prompt.toolset
        record = {
            "provider": self.spec.model,
            "replica": self.replica,
            "stream": self.stream,
            "call": len(self.records) + 1,
            "kind": prompt.kind,
            "profile": prompt.profile,
            "session": prompt.session,
            "messages": len(prompt.messages),
            "known": getattr(est, "known_messages", -1),
            "tools": bool(prompt.tools),
            "toolset": toolset,
            "toolset_seen": self.toolsets_seen.get(toolset, 0) if toolset else 0,
            "tool_msgs": tool_msgs,
            "escaped": escaped,
            "source": est.source,
            "low": est.low,
            "pred": {m.name: int(m.predict(call)) for m in self.methods},
        }
        return call, record

    def learn(self, call: Call, record: dict[str, Any], reply: AIMessage) -> None:
        usage = reply.usage_metadata or {}
        true = int(usage["input_tokens"])
        for m in self.methods:
            m.learn(call, true)
        record["true"] = true
        if record["toolset"]:
            self.toolsets_seen[record["toolset"]] = (
                self.toolsets_seen.get(record["toolset"], 0) + 1
            )

    def runnable(self, prompt: Prompt) -> Any:
        if not prompt.tools:
            return self.model
        key = id(prompt.tools)
        if key not in self.bound:
            self.bound[key] = self.model.bind_tools(prompt.tools)
        return self.bound[key]

    def single(self, prompt: Prompt) -> AIMessage:
        call, record = self.predict(prompt)
        reply = self.runnable(prompt).invoke(
            prompt.messages, config={"callbacks": [self.handler]}
        )
        self.learn(call, record, reply)
        self.records.append(record)
        return reply

    def batch(self, prompts: list[Prompt]) -> list[AIMessage]:
        # Every prediction is made before the batch: an app does not know
        # which of its calls finishes first.
        predicted = [self.predict(p) for p in prompts]
        for _, record in predicted:
            record["call"] = len(self.records) + 1
            record["batch"] = True
        order = list(range(len(prompts)))
        self.rng.shuffle(order)
        replies = run_batch(
            self.model, self.handler, [p.messages for p in prompts], order
        )
        for (call, record), reply in zip(predicted, replies, strict=True):
            self.learn(call, record, reply)
            self.records.append(record)
        return replies


def run_stream(
    spec: ProviderSpec,
    corpus: Corpus,
    workload: Workload,
    *,
    stream: str,
    replica: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Play a workload with a fresh handler and return its call records."""
    s = _Stream(spec, corpus, stream, replica, seed)
    for session, item in workload.prompts():
        if isinstance(item, list):
            s.batch(item)
            continue
        reply = s.single(item)
        session.feed(reply)
    return s.records
