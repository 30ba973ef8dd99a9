"""A staged rollout: a baseline measured beside ours, and shadow mode.

``baseline=`` is measured against every learned report; ``mode="shadow"``
answers with the baseline while ours keeps learning, so the gain on one's own
traffic is visible before switching.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.testing import FakeUsageChatModel

SYSTEM = SystemMessage("You answer questions about a harbour's shipping schedule. " * 4)


def drive(handler: TokenCalibrationHandler, calls: int = 12) -> str:
    """Calls through a fake model whose hidden costs the handler learns."""
    llm = FakeUsageChatModel(callbacks=[handler])
    history: list[object] = [SYSTEM]
    for i in range(calls):
        history = [*history, HumanMessage(f"When does vessel {i} leave berth {i % 4}?")]
        reply = llm.invoke(history)
        history = [*history, reply]
    (model,) = handler.stats()
    return model


class TestBaseline:
    """The baseline's error is measured on the same reports as ours."""

    def test_error_beside_ours(self) -> None:
        """stats() holds both; calibrated beats characters/4 on this traffic."""
        handler = TokenCalibrationHandler(baseline=count_tokens_approximately)
        model = drive(handler)
        stats = handler.stats()[model]
        assert stats.baseline == "count_tokens_approximately"
        assert stats.baseline_error is not None
        assert stats.calibrated_error is not None
        assert stats.calibrated_error < stats.baseline_error
        assert "baseline count_tokens_approximately" in str(stats)
        row = handler.stats_frame().loc[model]
        assert row["baseline_error_%"] == pytest.approx(
            100 * stats.baseline_error, abs=1e-3
        )

    def test_counts_are_ours(self) -> None:
        """In the default mode the handler still counts with ours."""
        handler = TokenCalibrationHandler(baseline=lambda messages: 1)
        model = drive(handler)
        assert handler.count_messages([SYSTEM, HumanMessage("hi")], model=model) > 1

    def test_a_failing_baseline_breaks_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """One warning; ours learns as before; no baseline error is made up."""

        def broken(messages: object) -> int:
            msg = "boom"
            raise RuntimeError(msg)

        handler = TokenCalibrationHandler(baseline=broken)
        handler.raise_error = True
        model = drive(handler, calls=3)
        stats = handler.stats()[model]
        assert stats.observations == 3
        assert stats.baseline_error is None
        assert caplog.text.count("baseline counter broken failed") == 1

    def test_bad_arguments(self) -> None:
        """A baseline that is not callable and an unknown mode are ConfigErrors."""
        with pytest.raises(ConfigError, match="baseline="):
            TokenCalibrationHandler(baseline=5)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="mode must be"):
            TokenCalibrationHandler(mode="canary")  # type: ignore[arg-type]


class TestShadow:
    """Shadow mode answers with the baseline while ours learns."""

    def test_counts_are_the_baselines(self) -> None:
        """count_messages, counter() and trim use the baseline; estimate is ours."""
        handler = TokenCalibrationHandler(mode="shadow")
        model = drive(handler)
        prompt = [SYSTEM, HumanMessage("When does the last vessel leave?")]
        assert handler.count_messages(
            prompt, model=model
        ) == count_tokens_approximately(prompt)
        counter = handler.counter(model)
        assert counter(prompt) == count_tokens_approximately(prompt)
        budget = count_tokens_approximately(prompt) // 2
        kept = handler.trim(prompt, budget, model=model)
        assert kept == trim_messages(
            prompt,
            max_tokens=budget,
            token_counter=count_tokens_approximately,
            strategy="last",
        )
        ours = handler.estimate(prompt, model=model)
        assert ours.observations == 12
        stats = handler.stats()[model]
        assert stats.calibrated_error is not None
        assert stats.baseline_error is not None
        assert stats.calibrated_error < stats.baseline_error

    def test_switching_keeps_what_was_learned(self, tmp_path: object) -> None:
        """A store learned in shadow mode counts with ours once switched."""
        url = f"sqlite:///{tmp_path}/shadow.db"
        shadow = TokenCalibrationHandler(store=url, mode="shadow")
        model = drive(shadow)
        shadow.close()
        live = TokenCalibrationHandler(store=url)
        try:
            prompt = [SYSTEM, HumanMessage("When does vessel 3 leave berth 3?")]
            est = live.estimate(prompt, model=model)
            assert est.observations == 12
            assert live.count_messages(prompt, model=model) == est.tokens
        finally:
            live.close()
