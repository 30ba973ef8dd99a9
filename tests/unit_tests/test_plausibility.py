"""Servers that misreport prompt tokens, through LangChain chat models.

Each misreporting server has a named rejection reason and a health warning
that says what it does, and what was learned before it is kept: the counts of
earlier prompts, the regression, the statistics.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, TokenUsage, create_counter
from langchain_tokencal._reasons import (
    SHRUNK_PREFIX,
    TRUNCATED,
    UNCACHED_ONLY,
)
from langchain_tokencal.testing import FakeUsageChatModel
from tests.unit_tests.servers import (
    OllamaServer,
    ScaledChatModel,
    StripReasoningChatModel,
    TruncatingChatModel,
    UncachedOnlyChatModel,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PLAUSIBILITY = {SHRUNK_PREFIX, TRUNCATED, UNCACHED_ONLY}
SERVER_CHECKS = {"truncated_context", "uncached_only", "shrunk_prefix"}


@pytest.fixture
def handler() -> TokenCalibrationHandler:
    """A fresh handler that raises its own errors."""
    h = TokenCalibrationHandler()
    h.raise_error = True
    return h


def converse(
    llm: Any,
    turns: int,
    *,
    seed: int = 0,
    words: int = 40,
    system: bool = True,
    history: list[BaseMessage] | None = None,
) -> list[BaseMessage]:
    """A growing conversation of ``turns`` calls; the history after the last."""
    if history is None:
        history = [SystemMessage(text(seed, 60))] if system else []
        history.append(HumanMessage(text(seed + 1, words)))
    for turn in range(turns):
        reply = llm.invoke(history)
        history = [*history, reply, HumanMessage(text(seed + 10 + turn, words))]
    return history


def snapshot(handler: TokenCalibrationHandler, model: str) -> tuple[Any, ...]:
    """What a model has learned: reports, coefficients, ledger sizes."""
    s = handler.stats()[model]
    return (
        s.observations,
        dict(s.coefficients),
        s.ledger.prompts.size,
        s.ledger.messages.size,
        s.ledger.bases.size,
    )


def issue(handler: TokenCalibrationHandler, check: str) -> Any:
    """The one health issue of a check."""
    found = [i for i in handler.health(log=False).issues if i.check == check]
    assert len(found) == 1, handler.health(log=False)
    return found[0]


class TestUncachedOnly:
    """A server that counts only the tokens its prompt cache missed."""

    def test_conversation_is_rejected_as_uncached(self, handler):
        """Every turn after the first is rejected, and none is learned."""
        llm = UncachedOnlyChatModel(model="m", callbacks=[handler])
        converse(llm, 8)
        stats = handler.stats()["m"]
        assert stats.observations == 1
        assert stats.rejected.get(UNCACHED_ONLY, 0) >= 4
        assert set(stats.rejected) <= {UNCACHED_ONLY, "implausible ratio"}

    def test_health_says_the_server_reports_only_uncached_tokens(self, handler):
        """The warning names what the server does and how many reports it cost."""
        llm = UncachedOnlyChatModel(model="m", callbacks=[handler])
        converse(llm, 8)
        found = issue(handler, "uncached_only")
        n = handler.stats()["m"].rejected[UNCACHED_ONLY]
        assert found.severity == "warning"
        assert "reports only uncached tokens" in found.message
        assert f"{n} report(s)" in found.message
        assert not handler.health(log=False).ok

    def test_counts_follow_the_prompt_not_the_cache(self, handler):
        """The count of a long history stays near the truth, not the cache misses."""
        llm = UncachedOnlyChatModel(model="m", callbacks=[handler])
        history = converse(llm, 10)
        truth = llm.true_prompt_tokens(history)
        est = handler.estimate(history, model="m")
        assert abs(est.tokens - truth) <= 0.05 * truth
        assert est.high >= truth

    def test_replies_left_out_of_the_cache(self, handler):
        """A cache that keeps only prompts still gets most turns rejected."""
        llm = UncachedOnlyChatModel(model="m", cache_replies=False, callbacks=[handler])
        converse(llm, 10)
        stats = handler.stats()["m"]
        assert (
            stats.rejected.get(UNCACHED_ONLY, 0) + stats.rejected.get(SHRUNK_PREFIX, 0)
            >= 6
        )

    def test_nothing_learned_before_is_lost(self, handler):
        """Honest reports learned first keep their counts, and the regression its fit."""
        honest = FakeUsageChatModel(model="m", callbacks=[handler])
        talks = [converse(honest, 4, seed=100 * k) for k in range(3)]
        prompts = [talk[: 2 * i + 2] for talk in talks for i in range(4)]
        counts = [handler.count_messages(p, model="m") for p in prompts]
        assert counts == [honest.true_prompt_tokens(p) for p in prompts]
        before = snapshot(handler, "m")
        # The server turns its prompt cache on; the conversations go on. Each
        # one's first call misses the cache and is honest: it is learned.
        cached = UncachedOnlyChatModel(model="m", callbacks=[handler])
        for k, talk in enumerate(talks):
            converse(cached, 5, seed=100 * k + 50, history=talk)
        stats = handler.stats()["m"]
        # The cache misses of long histories fall below 5% of the prompt: an
        # implausible ratio, which the health warning counts with them.
        assert stats.rejected.get(UNCACHED_ONLY, 0) >= 3
        assert sum(stats.rejected.values()) == 12
        assert set(stats.rejected) == {UNCACHED_ONLY, "implausible ratio"}
        assert "more below 5% of it" in issue(handler, "uncached_only").message
        assert stats.observations == before[0] + 3
        assert [handler.count_messages(p, model="m") for p in prompts] == counts
        for prompt in prompts:
            assert handler.estimate(prompt, model="m").source == "exact"

    def test_single_turn_calls_sharing_a_system_prompt(self, handler):
        """Calls that start like an earlier one are held to their local count."""
        llm = UncachedOnlyChatModel(model="m", callbacks=[handler])
        system = SystemMessage(text(7, 400))
        prompts = [[system, HumanMessage(text(20 + i, 30))] for i in range(6)]
        for prompt in prompts:
            llm.invoke(prompt)
        stats = handler.stats()["m"]
        assert stats.observations == 1
        assert stats.rejected == {UNCACHED_ONLY: 5}
        est = handler.estimate(prompts[-1], model="m")
        assert abs(est.tokens - llm.true_prompt_tokens(prompts[-1])) <= 0.1 * est.tokens

    def test_cache_reads_beside_an_uncached_input(self):
        """A report whose cache reads make up its prefix is named uncached."""
        counter = create_counter("m", provider="openai")
        first = [HumanMessage(text(1, 300))]
        prefix = counter(first)
        assert counter.observe(first, prefix) is None
        longer = [*first, AIMessage(text(2, 20)), HumanMessage(text(3, 20))]
        uncached = TokenUsage(
            input_tokens=prefix - 100, output_tokens=5, total_tokens=prefix - 95,
            cache_read=prefix - 200,
        )  # fmt: skip
        assert counter.observe(longer, uncached) == UNCACHED_ONLY
        honest_hit = TokenUsage(
            input_tokens=counter(longer), output_tokens=5,
            total_tokens=counter(longer) + 5, cache_read=prefix,
        )  # fmt: skip
        assert counter.observe(longer, honest_hit) is None

    def test_through_chat_ollama(self, handler):
        """ChatOllama against an Ollama that counts only cache misses."""
        ollama = pytest.importorskip("langchain_ollama")
        httpx = pytest.importorskip("httpx")
        server = OllamaServer(uncached_only=True)
        llm = ollama.ChatOllama(
            model="llama3.1",
            callbacks=[handler],
            sync_client_kwargs={"transport": httpx.MockTransport(server)},
        )
        history = converse(llm, 8)
        stats = handler.stats()["llama3.1"]
        assert stats.observations == 1
        assert stats.rejected.get(UNCACHED_ONLY, 0) >= 4
        assert "reports only uncached tokens" in issue(handler, "uncached_only").message
        est = handler.estimate(history[:-2], model="llama3.1")
        assert abs(est.tokens - server.truths[-1]) <= 0.1 * server.truths[-1]


class TestTruncation:
    """A server that cuts prompts to its context window and reports the cut size."""

    @pytest.mark.parametrize("drop_messages", [False, True], ids=["cut", "drop"])
    def test_conversation_past_the_window(self, handler, drop_messages):
        """Reports past num_ctx are rejected as truncated, and the window is named."""
        llm = TruncatingChatModel(
            model="m", num_ctx=2048, drop_messages=drop_messages, callbacks=[handler]
        )
        history = converse(llm, 18)
        stats = handler.stats()["m"]
        past = sum(
            llm.true_prompt_tokens(history[: 2 * i + 2]) > 2048 for i in range(18)
        )
        assert stats.rejected.get(TRUNCATED, 0) >= past - 1
        assert set(stats.rejected) <= {TRUNCATED, SHRUNK_PREFIX}
        assert stats.plausibility.ceiling == 2048
        assert stats.plausibility.truncating

    def test_health_names_the_ceiling_and_the_fix(self, handler):
        """The warning says near which count the server truncates, and what to raise."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        converse(llm, 18)
        found = issue(handler, "truncated_context")
        n = handler.stats()["m"].rejected[TRUNCATED]
        assert found.severity == "warning"
        assert "truncates prompts near 2,048 tokens" in found.message
        assert "num_ctx" in found.message
        assert "max_model_len" in found.message
        assert f"{n} report(s)" in found.message

    def test_counts_keep_growing_past_the_ceiling(self, handler):
        """The count of a history past the window follows the prompt, not the window."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        history = converse(llm, 18)
        truth = llm.true_prompt_tokens(history)
        assert truth > 3000
        est = handler.estimate(history, model="m")
        assert abs(est.tokens - truth) <= 0.03 * truth

    def test_long_documents(self, handler):
        """Single prompts far beyond the window are rejected as truncated."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        for i in range(5):
            llm.invoke([HumanMessage(text(40 + i, 2500 + 300 * i))])
        stats = handler.stats()["m"]
        assert stats.rejected == {TRUNCATED: 5}
        assert stats.plausibility.ceiling == 2048

    def test_nothing_learned_before_is_lost(self, handler):
        """Prompts learned under the window keep their counts; the regression holds."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        short = converse(llm, 6)
        assert llm.true_prompt_tokens(short) < 2048
        before = snapshot(handler, "m")
        prompts = [short[: 2 * i + 2] for i in range(6)]
        counts = [handler.count_messages(p, model="m") for p in prompts]
        converse(llm, 14, history=short)
        assert handler.stats()["m"].rejected.get(TRUNCATED, 0) >= 6
        assert [handler.count_messages(p, model="m") for p in prompts] == counts
        assert counts == [llm.true_prompt_tokens(p) for p in prompts]
        after = snapshot(handler, "m")
        assert after[0] >= before[0]

    def test_raising_the_window_ends_the_truncation(self, handler):
        """Once reports grow past the ceiling again, they are learned."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        history = converse(llm, 16)
        rejected = handler.stats()["m"].rejected[TRUNCATED]
        wide = TruncatingChatModel(model="m", num_ctx=32768, callbacks=[handler])
        converse(wide, 3, seed=500, history=history)
        stats = handler.stats()["m"]
        assert stats.rejected[TRUNCATED] == rejected
        assert not stats.plausibility.truncating
        assert stats.plausibility.ceiling == 2048

    def test_saved_and_loaded(self, handler, tmp_path):
        """A loaded handler keeps the rejections, learned counts and the warning."""
        llm = TruncatingChatModel(model="m", num_ctx=2048, callbacks=[handler])
        history = converse(llm, 16)
        stats = handler.stats()["m"]
        handler.save(tmp_path / "cal.jsonl")
        loaded = TokenCalibrationHandler.load(tmp_path / "cal.jsonl")
        again = loaded.stats()["m"]
        assert again.rejected == stats.rejected
        assert loaded.count_messages(history[:4], model="m") == (
            llm.true_prompt_tokens(history[:4])
        )
        # The ceiling is not an event: the warning says what it can.
        found = issue(loaded, "truncated_context")
        assert "truncates prompts to its context window" in found.message

    def test_through_chat_ollama(self, handler):
        """ChatOllama(num_ctx=2048) against an Ollama that drops old messages."""
        ollama = pytest.importorskip("langchain_ollama")
        httpx = pytest.importorskip("httpx")
        server = OllamaServer(drop_messages=True)
        llm = ollama.ChatOllama(
            model="llama3.1",
            num_ctx=2048,
            callbacks=[handler],
            sync_client_kwargs={"transport": httpx.MockTransport(server)},
        )
        history = converse(llm, 30, words=60)
        assert server.truths[-1] > 3000
        stats = handler.stats()["llama3.1"]
        assert stats.rejected.get(TRUNCATED, 0) >= 8
        assert stats.plausibility.ceiling == 2048
        found = issue(handler, "truncated_context")
        assert "truncates prompts near 2,048 tokens" in found.message
        est = handler.estimate(history[:-2], model="llama3.1")
        assert abs(est.tokens - server.truths[-1]) <= 0.05 * server.truths[-1]


class TestShrunkPrefix:
    """An extension reported no larger than the prompt it extends."""

    def test_extension_no_larger_than_its_prefix(self):
        """A reply and a question that add nothing are rejected; one token more is not."""
        counter = create_counter("m", provider="anthropic")
        first = [HumanMessage(text(1, 80))]
        assert counter.observe(first, 120) is None
        longer = [*first, AIMessage(text(2, 10)), HumanMessage(text(3, 10))]
        assert counter.observe(longer, 120) == SHRUNK_PREFIX
        assert counter.observe(longer, 100) == SHRUNK_PREFIX
        assert counter.observe(longer, 121) is None
        assert counter.stats().rejected == {SHRUNK_PREFIX: 2}

    def test_health_says_the_history_was_dropped(self, handler):
        """The warning says the server dropped part of the history."""
        llm = FakeUsageChatModel(model="m", callbacks=[handler])
        history = converse(llm, 1)
        prefix = handler.count_messages(history[:2], model="m")
        why = handler.observe(history, TokenUsage(prefix - 3, 1, prefix - 2), model="m")
        assert why == SHRUNK_PREFIX
        found = issue(handler, "shrunk_prefix")
        assert found.severity == "warning"
        assert "1 report(s)" in found.message
        assert "no larger than the count already reported" in found.message


class TestThresholds:
    """Where each check starts, and what honest servers do just short of it."""

    def test_hidden_preamble_on_a_tiny_prompt(self):
        """A tiny prompt reported 50 times its local count (a tool preamble) is fine."""
        counter = create_counter("m", provider="anthropic")
        assert counter.observe([HumanMessage("hi")], 400) is None

    def test_prior_ratio_leaves_tokenizers_room(self):
        """Before learning, a cache-shaped prompt at 0.35x its local count passes."""
        counter = create_counter("m", provider="anthropic")
        system = SystemMessage(text(5, 300))
        local = counter([system, HumanMessage("first")])
        assert counter.observe([system, HumanMessage("first")], local) is None
        second = [system, HumanMessage("second")]
        assert counter.observe(second, round(0.35 * counter.local(second))) is None
        third = [system, HumanMessage("third")]
        assert counter.observe(third, round(0.25 * counter.local(third))) == (
            UNCACHED_ONLY
        )

    def test_learned_ratio_tightens_the_bound(self):
        """After reports at 1x, a shared-prefix prompt at 0.45x is uncached."""
        counter = create_counter("m", provider="anthropic")
        system = SystemMessage(text(5, 300))
        for i in range(5):
            prompt = [system, HumanMessage(f"question {i}")]
            assert counter.observe(prompt, counter.local(prompt)) is None
        assert counter.stats().plausibility.ratio == pytest.approx(1.0)
        last = [system, HumanMessage("question 9")]
        assert counter.observe(last, round(0.45 * counter.local(last))) == UNCACHED_ONLY
        near = [system, HumanMessage("question 8")]
        assert counter.observe(near, round(0.6 * counter.local(near))) is None

    def test_a_new_prompt_is_never_held_to_its_local_count(self):
        """A prompt that starts like no earlier one cannot be a cache hit."""
        counter = create_counter("m", provider="anthropic")
        for i in range(5):
            prompt = [HumanMessage(text(60 + i, 300))]
            why = counter.observe(prompt, round(0.2 * counter.local(prompt)))
            assert why is None

    def test_repeat_reported_below_half_is_uncached(self):
        """A prompt reported again at under half its first count is uncached."""
        counter = create_counter("m", provider="anthropic")
        prompt = [HumanMessage(text(1, 200))]
        assert counter.observe(prompt, 300) is None
        assert counter.observe(prompt, 140) == UNCACHED_ONLY
        assert counter.observe(prompt, 200) is None
        assert counter(prompt) == 300

    def test_exactly_a_power_of_two_past_the_prompt(self):
        """A count of exactly 4096 for a prompt expected beyond it is truncated."""
        counter = create_counter("m", provider="anthropic")
        big = [HumanMessage(text(9, 4000))]
        assert counter.local(big) > 4096 * 1.1
        assert counter.observe(big, 4096) == TRUNCATED
        small = [HumanMessage(text(10, 2500))]
        assert counter.local(small) < 4096
        assert counter.observe(small, 4096) is None

    def test_images_hold_only_the_known_part(self):
        """A prompt with images is not held to a local count that cannot see them."""
        counter = create_counter("m", provider="anthropic")
        system = SystemMessage(text(3, 200))
        assert (
            counter.observe([system, HumanMessage("hi")], counter.local([system]))
            is None
        )
        image = {
            "type": "image",
            "source_type": "url",
            "url": "https://example.com/cat.png",
        }
        pictures = [system, HumanMessage(content=[image] * 12)]
        assert counter.observe(pictures, round(0.2 * counter.local(pictures))) is None


class TestLegitimateWorkloads:
    """Honest servers never trip the checks, whatever their tokenizer or cache."""

    MODELS: ClassVar[dict[str, Callable[[], FakeUsageChatModel]]] = {
        "anthropic-like": lambda: FakeUsageChatModel(model="m"),
        "openai-like": lambda: FakeUsageChatModel.openai_like("m"),
        "ratio-0.6": lambda: ScaledChatModel(model="m", scale=0.6),
        "ratio-1.6": lambda: ScaledChatModel(model="m", scale=1.6),
        "charclass": lambda: FakeUsageChatModel(model="m", tokenizer="charclass"),
        "cache-hits": lambda: FakeUsageChatModel(model="m", cache_read_tokens=10**6),
        "big-preamble": lambda: FakeUsageChatModel(
            model="m", tool_preamble_tokens=800, tokens_per_tool=40
        ),
        "strips-reasoning": lambda: StripReasoningChatModel(model="m"),
    }

    @pytest.fixture(params=sorted(MODELS))
    def llm(self, request, handler):
        """Each honest server, reporting to the handler."""
        model = self.MODELS[request.param]()
        model.callbacks = [handler]
        return model

    def test_mixed_workload(self, handler, llm):
        """Conversations, tiny prompts, tools, shared systems and long documents pass."""

        def weather(city: str) -> str:
            """Get the weather for a city."""
            return city

        tooled = llm.bind_tools([weather])
        for i in range(6):
            tooled.invoke([HumanMessage(f"hi {i}")])  # preamble >> prompt
        system = SystemMessage(text(77, 150))
        for i in range(5):
            llm.invoke([system, HumanMessage(text(200 + i, 20 + 10 * i))])
        a = [SystemMessage(text(1, 60)), HumanMessage(text(2, 40))]
        b = [HumanMessage(text(3, 300))]
        for turn in range(8):  # two interleaved conversations
            for history in (a, b):
                history += [llm.invoke(history), HumanMessage(text(30 + turn, 35))]
        for i in range(4):  # long documents, honestly counted
            llm.invoke([HumanMessage(text(90 + i, 2200 + 700 * i))])
        window = a[-7:]  # a trimmed history: extends nothing reported
        llm.invoke(window)
        stats = handler.stats()["m"]
        assert not set(stats.rejected) & PLAUSIBILITY, stats.rejected
        assert not stats.plausibility.ceiling
        checks = {i.check for i in handler.health(log=False).issues}
        assert not checks & SERVER_CHECKS

    @pytest.mark.parametrize("seed", range(8))
    def test_random_honest_workloads(self, handler, seed):
        """Random interleavings of honest conversations and one-shot prompts pass."""
        rng = random.Random(seed)
        llm = ScaledChatModel(
            model="m",
            scale=rng.uniform(0.6, 1.6),
            tokenizer=rng.choice(["cl100k_base", "o200k_base", "charclass"]),
            framing_tokens=rng.randrange(0, 40),
            tokens_per_message=rng.randrange(0, 12),
            cache_read_tokens=rng.choice([0, 50, 10**6]),
            callbacks=[handler],
        )
        shared = SystemMessage(text(seed, rng.randrange(5, 400)))
        talks: list[list[BaseMessage]] = []
        for call in range(60):
            kind = rng.random()
            if kind < 0.2 or not talks:
                start = [shared] if rng.random() < 0.5 else []
                talks.append([*start, HumanMessage(text(call, rng.randrange(1, 200)))])
                prompt = talks[-1]
            elif kind < 0.35:
                prompt = [shared, HumanMessage(text(call, rng.randrange(1, 3000)))]
            else:
                i = rng.randrange(len(talks))
                prompt = talks[i]
            reply = llm.invoke(prompt)
            if prompt in talks:
                i = talks.index(prompt)
                words = rng.choice([1, 5, 40, 300])
                talks[i] = [*prompt, reply, HumanMessage(text(1000 + call, words))]
        stats = handler.stats()["m"]
        assert not set(stats.rejected) & PLAUSIBILITY, stats.rejected
