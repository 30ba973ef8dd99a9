"""Tests for calibrated counting: `CalibratedCounter`, `create_counter` and the handler."""

from __future__ import annotations

import functools
import random
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    trim_messages,
)

from langchain_tokencal import (
    CalibratedCounter,
    ModelStats,
    TokenCalibrationHandler,
    TokenEstimate,
    TokenUsage,
    create_counter,
)
from langchain_tokencal._calibration import Observation
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel

WORDS = [
    *("river", "market", "bridge", "morning", "library", "garden", "journey"),
    *("question", "pattern", "detail", "budget", "context", "window", "request"),
    *("answer", "cache", "latency", "prompt", "history", "summary"),
]
CHINESE = (
    "这个问题的答案取决于上下文的长度我们可以先统计令牌再决定是否需要总结"
    "模型每次回应都会报告使用量天气晴朗适合出门散步"
)


def get_weather(city: str) -> str:
    """Get the current weather for a city, with wind and humidity."""
    return f"sunny in {city}"


def search_flights(origin: str, destination: str, date: str, passengers: int) -> str:
    """Search flights between two airports on a date for some passengers."""
    return "none"


def english(rng: random.Random, words: int) -> str:
    """Random English-like text of some words."""
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def chinese(rng: random.Random, chars: int) -> str:
    """Random Chinese text of some characters."""
    return "".join(rng.choice(CHINESE) for _ in range(chars)) + "。"


def strict_handler(**settings_: Any) -> TokenCalibrationHandler:
    """A handler that raises its own errors."""
    handler = TokenCalibrationHandler(**settings_)
    handler.raise_error = True
    return handler


def rel_error(estimate: int, truth: int) -> float:
    """Relative error of an estimate."""
    return abs(estimate - truth) / truth


class TestFreshCounter:
    """Before any report, a counter gives its local count."""

    def test_unknown_model_is_local_and_approximate(self):
        """A model without a local tokenizer counts approximately, with low confidence."""
        counter = create_counter("fake-claude", provider="anthropic")
        est = counter.estimate([HumanMessage("Hello there, how are you?")])
        assert est.source == "local"
        assert est.observations == 0
        assert est.confidence < 0.5
        assert counter.stats().counter.kind == "approximate"

    def test_openai_model_is_exact_and_confident(self):
        """gpt-4o counts exactly with tiktoken and says so with high confidence."""
        counter = create_counter("gpt-4o")
        prompt = [SystemMessage("Be brief."), HumanMessage("Hello there, how are you?")]
        est = counter.estimate(prompt)
        assert est.source == "local"
        assert est.confidence >= 0.9
        assert counter.stats().counter.kind == "exact"
        assert est.tokens == FakeUsageChatModel.openai_like(
            "gpt-4o"
        ).true_prompt_tokens(prompt)

    def test_never_seen_model_has_a_wide_interval(self):
        """An unseen non-OpenAI model's interval is wide (at least +-20%)."""
        handler = strict_handler()
        rng = random.Random(1)
        prompt = [HumanMessage(english(rng, 300))]
        est = handler.estimate(prompt, model="never-seen-model")
        assert est.source == "local"
        assert est.low <= 0.85 * est.tokens
        assert est.high >= 1.2 * est.tokens

    def test_estimate_orders_low_tokens_high(self):
        """The estimate lies in its interval, and the basis says nothing was reported."""
        est = create_counter("claude-sonnet-4-5").estimate([HumanMessage("hi")])
        assert est.low <= est.tokens <= est.high
        assert "no reports yet" in est.basis


class TestObserve:
    """Learning from reports directly, without callbacks."""

    def test_reported_prompt_is_exact(self):
        """A reported prompt is answered with its report."""
        counter = create_counter("m", provider="anthropic")
        prompt = [HumanMessage("What is 2 + 2?")]
        assert counter.observe(prompt, 19) is None
        est = counter.estimate(prompt)
        assert (est.source, est.tokens, est.low, est.high) == ("exact", 19, 19, 19)
        assert "exact prompt was reported" in est.basis

    def test_next_turn_is_anchored(self):
        """A prompt extending a reported one is anchored on it."""
        counter = create_counter("m", provider="anthropic")
        history: list[BaseMessage] = [HumanMessage("What is 2 + 2?")]
        counter.observe(history, 19)
        history += [AIMessage("4"), HumanMessage("And 3 + 3?")]
        est = counter.estimate(history)
        assert est.source == "anchored"
        assert est.known_messages >= 1
        assert est.tokens > 19

    def test_usage_without_counts_is_no_usage(self):
        """A payload parse_usage cannot read is rejected as 'no usage', never raised."""
        counter = create_counter("m")
        assert counter.observe([HumanMessage("x")], "19") == "no usage"
        assert counter.stats().rejected == {"no usage": 1}

    def test_zero_input_is_no_usage(self):
        """A report of zero input tokens is rejected as 'no usage'."""
        counter = create_counter("m")
        assert counter.observe([HumanMessage("x")], 0) == "no usage"
        assert counter.stats().rejected == {"no usage": 1}

    def test_submitted_observations_are_learned_on_the_next_count(self):
        """submit() defers learning until the next estimate."""
        counter = create_counter("m", provider="anthropic")
        prompt = [HumanMessage("Deferred learning works.")]
        counter.submit(Observation(prompt, None, TokenUsage(20, 1, 21)))
        assert counter.estimate(prompt).tokens == 20
        assert counter.stats().observations == 1

    def test_counter_works_in_trim_messages(self):
        """The counter is a whole-list counter that trim_messages accepts."""
        counter = create_counter("gpt-4o")
        history = [HumanMessage(f"message {i} " + "word " * 20) for i in range(50)]
        kept = trim_messages(history, max_tokens=200, token_counter=counter)
        assert kept
        assert counter(kept) <= 200


class TestPlausibility:
    """Reports that cannot be a prompt's count are rejected, odd ones are not."""

    def test_absurd_report_is_implausible(self):
        """A report of 10**8 tokens for a short prompt is rejected."""
        counter = create_counter("m", provider="anthropic")
        prompt = [HumanMessage("A short question about tides?")]
        assert counter.observe(prompt, 10**8) == "implausible ratio"
        assert counter.stats().rejected == {"implausible ratio": 1}
        assert counter.estimate(prompt).source == "local"

    def test_tiny_report_for_a_long_prompt_is_implausible(self):
        """A report of 1 token for a long prompt is rejected."""
        counter = create_counter("m", provider="anthropic")
        prompt = [HumanMessage(english(random.Random(2), 400))]
        assert counter.observe(prompt, 1) == "implausible ratio"

    def test_tiny_prompt_with_a_big_preamble_is_learned(self):
        """A 'hi' with an 800-token hidden tool preamble (ratio >> 2) is learned."""
        llm = FakeUsageChatModel(tool_preamble_tokens=800)
        counter = create_counter("fake-claude", provider="anthropic")
        prompt = [HumanMessage("hi")]
        truth = llm.true_prompt_tokens(prompt, [get_weather])
        local = counter.estimate(prompt, [get_weather]).local_tokens
        assert truth / local > 2.0
        assert counter.observe(prompt, truth, [get_weather]) is None
        assert counter.stats().rejected == {}
        assert counter.estimate(prompt, [get_weather]).tokens == truth


class TestLearning:
    """Calibration against a fake whose hidden tokenizer differs from ours."""

    @pytest.mark.parametrize("tokenizer", ["charclass", "cl100k_base"])
    def test_growing_conversation_is_anchored_within_two_percent(self, tokenizer):
        """Within 10 calls, the next prompt of a conversation is anchored and within 2%."""
        handler = strict_handler()
        llm = FakeUsageChatModel(tokenizer=tokenizer, callbacks=[handler])
        rng = random.Random(3)
        history: list[BaseMessage] = [SystemMessage("You answer questions carefully.")]
        errors = []
        for turn in range(10):
            history.append(HumanMessage(f"Question {turn}: {english(rng, 12)}"))
            if turn:
                est = handler.estimate(history, model="fake-claude")
                assert est.source == "anchored"
                errors.append(rel_error(est.tokens, llm.true_prompt_tokens(history)))
            history.append(llm.invoke(history))
        assert max(errors[3:]) < 0.02

    @staticmethod
    def _train_mixed(
        handler: TokenCalibrationHandler, rng: random.Random
    ) -> FakeUsageChatModel:
        llm = FakeUsageChatModel(tokenizer="charclass", callbacks=[handler])
        for i in range(30):
            if i % 2:
                text = chinese(rng, rng.randint(20, 200))
            else:
                text = english(rng, rng.randint(20, 150))
            llm.invoke([HumanMessage(text)])
        return llm

    def test_exact_tokenizer_learns_structure_not_rates(self):
        """On the model's own tokenizer, template costs move; content rates stay 0.

        A gpt-4o whose hidden template adds 9 tokens per call and 2 per
        message beyond OpenAI's rules: the framing and per-message terms take
        them, and a new prompt of long content is then exact.
        """
        handler = strict_handler()
        llm = FakeUsageChatModel(
            model="gpt-4o",
            provider="openai",
            tokenizer="o200k_base",
            framing_tokens=12,
            tokens_per_message=5,
            callbacks=[handler],
        )
        rng = random.Random(7)
        for i in range(12):
            text = english(rng, 20 + 15 * i) if i % 2 else chinese(rng, 30 + 10 * i)
            llm.invoke([SystemMessage("You are terse."), HumanMessage(text)])
        coefficients = handler.stats()["gpt-4o"].coefficients
        rates = {k: v for k, v in coefficients.items() if k.endswith("_rate")}
        assert all(abs(v) < 0.002 for v in rates.values()), rates
        prompt = [SystemMessage("You are terse."), HumanMessage(english(rng, 400))]
        assert handler.count_messages(prompt, model="gpt-4o") == llm.true_prompt_tokens(
            prompt
        )

    def test_rates_are_learned_per_content_class(self):
        """English and Chinese get their own rates: the hidden tokenizer differs on each."""
        handler = strict_handler()
        self._train_mixed(handler, random.Random(4))
        coefficients = handler.stats()["fake-claude"].coefficients
        # The hidden tokenizer spends about twice o200k's tokens on English
        # words and about as many on Chinese characters.
        assert coefficients["text_rate"] > 0.6
        assert abs(coefficients["cjk_rate"]) < 0.2

    def test_chinese_and_english_are_calibrated_per_class(self):
        """Mixed Chinese and English prompts are both estimated within 8% after training."""
        handler = strict_handler()
        rng = random.Random(4)
        llm = self._train_mixed(handler, rng)
        for make, size in ((chinese, 120), (english, 90)):
            calibrated, local = [], []
            for _ in range(10):
                prompt = [HumanMessage(make(rng, size))]
                est = handler.estimate(prompt, model="fake-claude")
                truth = llm.true_prompt_tokens(prompt)
                calibrated.append(rel_error(est.tokens, truth))
                local.append(rel_error(est.local_tokens, truth))
            assert est.source == "calibrated"
            assert sum(calibrated) / 10 < 0.08
            assert sum(calibrated) <= sum(local)

    @pytest.mark.parametrize("preamble", [300, 800])
    def test_hidden_tool_preamble_is_learned_after_one_call(self, preamble):
        """One call with tools teaches the hidden preamble to within 3% on a new prompt."""
        handler = strict_handler()
        llm = FakeUsageChatModel(tool_preamble_tokens=preamble, callbacks=[handler])
        tools = [get_weather, search_flights]
        other = [
            SystemMessage("Be brief."),
            HumanMessage("Any flights to Oslo on Friday?"),
        ]
        before = handler.estimate(other, model="fake-claude", tools=tools)
        llm.bind_tools(tools).invoke([HumanMessage("What is the weather in Paris?")])
        after = handler.estimate(other, model="fake-claude", tools=tools)
        truth = llm.true_prompt_tokens(other, tools)
        assert rel_error(after.tokens, truth) < 0.03
        assert rel_error(after.tokens, truth) < rel_error(before.tokens, truth) / 3

    def test_interval_covers_the_truth_after_twenty_calls(self):
        """After 20 calls, the interval covers the true count on most new prompts."""
        handler = strict_handler()
        llm = FakeUsageChatModel(tokenizer="charclass", callbacks=[handler])
        rng = random.Random(5)
        for _ in range(20):
            llm.invoke([HumanMessage(english(rng, rng.randint(10, 120)))])
        covered = 0
        for _ in range(30):
            prompt = [HumanMessage(english(rng, rng.randint(10, 120)))]
            est = handler.estimate(prompt, model="fake-claude")
            covered += est.low <= llm.true_prompt_tokens(prompt) <= est.high
        assert covered >= 24

    def test_learning_narrows_the_interval(self):
        """After training, the interval is narrower than the prior's."""
        handler = strict_handler()
        llm = FakeUsageChatModel(tokenizer="cl100k_base", callbacks=[handler])
        rng = random.Random(6)
        prompt = [HumanMessage(english(rng, 100))]
        before = handler.estimate(prompt, model="fake-claude")
        for _ in range(20):
            llm.invoke([HumanMessage(english(rng, rng.randint(10, 120)))])
        after = handler.estimate(prompt, model="fake-claude")
        assert after.high - after.low < before.high - before.low

    def test_conservative_counter_counts_high(self):
        """A conservative counter counts the interval's high end, never below tokens."""
        handler = strict_handler()
        llm = FakeUsageChatModel(callbacks=[handler])
        rng = random.Random(7)
        for _ in range(6):
            llm.invoke([HumanMessage(english(rng, 40))])
        counter = handler.counter("fake-claude", conservative=True)
        for _ in range(5):
            prompt = [HumanMessage(english(rng, 60))]
            est = handler.estimate(prompt, model="fake-claude")
            assert counter(prompt) == est.high >= est.tokens

    def test_stats_account_for_every_report(self):
        """Observations, repeats and rejections add up to the reports received."""
        handler = strict_handler()
        llm = FakeUsageChatModel(callbacks=[handler])
        prompts = [[HumanMessage(f"Question {i}.")] for i in range(4)]
        for prompt in prompts:
            llm.invoke(prompt)
        llm.invoke(prompts[0])
        handler.observe(
            prompts[1], TokenUsage(10**8, 1, 10**8 + 1), model="fake-claude"
        )
        stats = handler.stats()["fake-claude"]
        assert isinstance(stats, ModelStats)
        assert (stats.observations, stats.repeats) == (4, 1)
        assert stats.rejected == {"implausible ratio": 1}
        assert stats.last_usage is not None


class TestConcurrency:
    """Counting and learning from several threads at once."""

    def test_threads_count_and_learn_together(self):
        """Concurrent observe and estimate calls lose no observation."""
        counter = create_counter("m", provider="anthropic")
        prompts = [
            [HumanMessage(f"Thread question {i} about rivers.")] for i in range(200)
        ]
        errors: list[BaseException] = []

        def work(part: list[list[HumanMessage]]) -> None:
            try:
                for prompt in part:
                    counter.submit(Observation(prompt, None, TokenUsage(30, 1, 31)))
                    counter.estimate(prompt)
            except BaseException as err:  # noqa: BLE001 - collected for the assertion
                errors.append(err)

        threads = [
            threading.Thread(target=work, args=(prompts[i::4],)) for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        stats = counter.stats()
        assert stats.observations + stats.repeats == 200
        assert all(counter.estimate(p).tokens == 30 for p in prompts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=6),
    tools=st.booleans(),
)
def test_interval_always_contains_the_estimate(texts, tools):
    """For any prompt, low <= tokens <= high and tokens >= 0."""
    counter = _trained_counter()
    prompt = [HumanMessage(t) for t in texts]
    est: TokenEstimate = counter.estimate(prompt, [get_weather] if tools else None)
    assert 0 <= est.low <= est.tokens <= est.high


@functools.cache
def _trained_counter() -> CalibratedCounter:
    # Built on first use inside a test: at import time the autouse fixture has
    # not pointed TIKTOKEN_CACHE_DIR at the offline encodings yet.
    counter = create_counter("fake-claude", provider="anthropic")
    llm = FakeUsageChatModel(tokenizer="charclass")
    rng = random.Random(8)
    for _ in range(15):
        prompt = [HumanMessage(english(rng, rng.randint(5, 80)))]
        counter.observe(prompt, llm.true_prompt_tokens(prompt))
    return counter


class TestConfig:
    """Settings validation for create_counter and the handler."""

    def test_create_counter_applies_settings(self):
        """Settings given as keywords reach the counter's config."""
        counter = create_counter("gpt-4o", cache_size=10, min_points=3)
        assert (counter.config.cache_size, counter.config.min_points) == (10, 3)

    def test_create_counter_unknown_setting_lists_valid_ones(self):
        """An unknown setting raises ConfigError listing every valid setting."""
        with pytest.raises(ConfigError, match="cache_sise") as info:
            create_counter("gpt-4o", cache_sise=10)
        for name in CounterConfig.field_names():
            assert name in str(info.value)

    def test_create_counter_unknown_key_in_mapping(self):
        """An unknown key in a config mapping is refused the same way."""
        with pytest.raises(ConfigError, match="valid settings are"):
            create_counter("gpt-4o", config={"ttl": 5})

    @pytest.mark.parametrize(
        "setting",
        [
            pytest.param({"cache_size": 0}, id="zero-size"),
            pytest.param({"min_points": True}, id="bool"),
            pytest.param({"cache_ttl": -1}, id="negative-ttl"),
            pytest.param({"coverage": 1.0}, id="full-coverage"),
            pytest.param({"pending_ttl": None}, id="no-pending-ttl"),
        ],
    )
    def test_invalid_values_are_refused(self, setting):
        """A value out of range raises ConfigError naming the setting."""
        with pytest.raises(ConfigError, match=next(iter(setting))):
            create_counter("gpt-4o", **setting)

    def test_handler_from_config(self):
        """from_config builds a handler whose counters use the settings."""
        handler = TokenCalibrationHandler.from_config(
            {"cache_size": 100, "pending_size": 5, "min_points": 2}
        )
        assert handler.config == CounterConfig(
            cache_size=100, pending_size=5, min_points=2
        )
        handler.estimate([HumanMessage("hi")], model="m")
        assert handler._counters["m"].config.cache_size == 100

    def test_handler_from_config_refuses_unknown_keys(self):
        """from_config refuses an unknown key and lists the valid ones."""
        with pytest.raises(ConfigError, match="valid settings are"):
            TokenCalibrationHandler.from_config({"pending": 5})

    def test_handler_settings_override_config(self):
        """Keyword settings override those of the config."""
        handler = TokenCalibrationHandler(config={"cache_size": 100}, cache_size=7)
        assert handler.config.cache_size == 7

    def test_handler_without_model_needs_one_model(self):
        """estimate() without model= works with one known model and refuses otherwise."""
        handler = strict_handler()
        with pytest.raises(ConfigError, match="Pass model="):
            handler.estimate([HumanMessage("hi")])
        FakeUsageChatModel(callbacks=[handler]).invoke([HumanMessage("hi")])
        assert handler.estimate([HumanMessage("hi")]).model == "fake-claude"
