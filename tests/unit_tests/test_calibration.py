"""The residual regression: priors, recency, robustness."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_tokencal._calibration.regression import (
    COEFFICIENT_NAMES,
    N_COEFFICIENTS,
    Calibrator,
    Prior,
)
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

N = N_COEFFICIENTS


# Short names of the features, in `COEFFICIENT_NAMES` order.
_FEATURES = (
    "framing", "tools", "schema", "messages", "text", "code", "cjk",
    "european", "arabic", "indic", "other", "digits", "escapes", "image",
    "tool_calls", "tool_results",
)  # fmt: skip


def _x(**features: float) -> tuple[float, ...]:
    """A feature vector: one framed prompt of two messages, plus ``features``."""
    assert set(features) <= set(_FEATURES), features
    values = {"framing": 1.0, "messages": 2.0, **features}
    return tuple(float(values.get(name, 0.0)) for name in _FEATURES)


def _predict(cal: Calibrator, x: tuple[float, ...]) -> float:
    """The predicted residual: the coefficients dotted with the features."""
    return sum(c * v for c, v in zip(cal.coefficients, x, strict=True))


class _Truth:
    """A hidden provider: residual = framing + preamble + per-class rate gaps."""

    def __init__(self, coef: dict[str, float]) -> None:
        self.coef = tuple(coef.get(n, 0.0) for n in COEFFICIENT_NAMES)

    def residual(self, x: tuple[float, ...]) -> float:
        return sum(c * v for c, v in zip(self.coef, x, strict=True))


def _random_prompt(rng: random.Random, *, tools: bool = False) -> tuple[float, ...]:
    text = rng.uniform(20, 3000)
    return _x(
        tools=1.0 if tools else 0.0,
        schema=rng.uniform(50, 600) if tools else 0.0,
        messages=rng.randint(1, 30),
        text=text,
        code=rng.uniform(0, 800) * rng.random(),
        cjk=rng.uniform(0, 1500) * (rng.random() < 0.3),
        digits=rng.uniform(0, 100),
    )


def _local(x: tuple[float, ...]) -> float:
    return 3.0 + 4.0 * x[3] + sum(x[4:])


class TestCalibrator:
    """The regression on residual tokens."""

    def test_starts_at_the_prior_mean(self) -> None:
        """With no observations the residual is the prior's: zero for an exact counter."""
        prior = Prior.approximate()
        cal = Calibrator(prior)
        x = _x(text=500)
        expected = sum(m * v for m, v in zip(prior.means, x, strict=True))
        assert _predict(cal, x) == pytest.approx(expected)
        assert 0.0 < expected < 0.1 * 500  # other vocabularies spend a little more
        assert _predict(Calibrator(Prior.exact()), x) == 0.0
        assert cal.points == 0

    def test_first_call_with_tools_goes_to_the_preamble(self) -> None:
        """A large residual on a small prompt with tools is read as a hidden preamble."""
        cal = Calibrator(Prior.approximate())
        x = _x(tools=1, schema=150, text=60)
        cal.add(x, residual=346.0, local=250.0)
        coef = dict(zip(COEFFICIENT_NAMES, cal.coefficients, strict=True))
        assert coef["tool_preamble"] > 250
        assert abs(coef["text_rate"]) < 0.2

    def test_recovers_per_class_rates(self) -> None:
        """Varied English and Chinese prompts recover different per-class rates."""
        truth = _Truth(
            {"framing": 7, "per_message": 2, "text_rate": 0.05, "cjk_rate": 0.45}
        )
        rng = random.Random(1)
        cal = Calibrator(Prior.approximate(), window=500)
        for _ in range(200):
            x = _random_prompt(rng)
            cal.add(x, truth.residual(x), _local(x))
        coef = dict(zip(COEFFICIENT_NAMES, cal.coefficients, strict=True))
        assert coef["cjk_rate"] == pytest.approx(0.45, abs=0.02)
        assert coef["text_rate"] == pytest.approx(0.05, abs=0.01)
        assert coef["per_message"] == pytest.approx(2.0, abs=0.5)

    def test_error_is_small_after_learning(self) -> None:
        """On held-out prompts the calibrated residual is within 1% of the prompt."""
        truth = _Truth(
            {"framing": 10, "tool_preamble": 320, "text_rate": 0.12, "code_rate": 0.3}
        )
        rng = random.Random(2)
        cal = Calibrator(Prior.approximate())
        for _ in range(100):
            x = _random_prompt(rng, tools=rng.random() < 0.5)
            cal.add(x, truth.residual(x), _local(x))
        for _ in range(50):
            x = _random_prompt(rng, tools=rng.random() < 0.5)
            total = _local(x) + truth.residual(x)
            assert abs(_predict(cal, x) - truth.residual(x)) / total < 0.01

    def test_outlier_is_downweighted(self) -> None:
        """One absurd report among consistent ones barely moves the fit."""
        truth = _Truth({"text_rate": 0.1})
        rng = random.Random(3)
        cal = Calibrator(Prior.approximate())
        for _ in range(50):
            x = _random_prompt(rng)
            cal.add(x, truth.residual(x), _local(x))
        before = cal.coefficients
        x = _random_prompt(rng)
        weight = cal.add(x, residual=50_000.0, local=_local(x))
        assert weight < 0.05
        assert cal.downweighted == 1
        assert cal.coefficients[4] == pytest.approx(before[4], abs=0.02)

    def test_recency_follows_a_change(self) -> None:
        """When the provider changes its tokenizer, recent reports win."""
        rng = random.Random(4)
        cal = Calibrator(Prior.approximate(), window=50)
        old, new = _Truth({"text_rate": 0.0}), _Truth({"text_rate": 0.2})
        for _ in range(200):
            x = _random_prompt(rng)
            cal.add(x, old.residual(x), _local(x))
        for _ in range(150):
            x = _random_prompt(rng)
            cal.add(x, new.residual(x), _local(x))
        assert cal.coefficients[4] == pytest.approx(0.2, abs=0.02)

    def test_anthropic_prior_expects_the_documented_tool_preamble(self) -> None:
        """Before any report, an Anthropic model with tools expects 346 hidden tokens."""
        prior = Prior.approximate("anthropic")
        cal = Calibrator(prior)
        text = 50 * prior.means[COEFFICIENT_NAMES.index("text_rate")]
        assert _predict(cal, _x(tools=1, schema=120, text=50)) == pytest.approx(
            346.0 + text
        )
        assert _predict(Calibrator(Prior.approximate()), _x(tools=1)) == 0.0

    def test_exact_prior_resists_noise(self) -> None:
        """An exact counter's prior keeps content rates near zero on tiny data."""
        cal = Calibrator(Prior.exact())
        cal.add(_x(text=100), residual=5.0, local=110.0)
        assert abs(cal.coefficients[4]) < 0.01

    @pytest.mark.parametrize(
        ("window", "prior", "match"),
        [
            pytest.param(0, Prior.approximate(), "max_points", id="window-below-one"),
            pytest.param(
                500,
                Prior(stds=(1.0,), noise_rel=0.1, noise_abs=1.0),
                "standard deviations",
                id="short-prior",
            ),
        ],
    )
    def test_rejects_bad_configuration(
        self, window: int, prior: Prior, match: str
    ) -> None:
        """A window below one or a prior of the wrong length is a ConfigError."""
        with pytest.raises(ConfigError, match=match):
            Calibrator(prior, window=window)

    @pytest.mark.parametrize(
        "use",
        [
            pytest.param(lambda cal: cal.add((1.0, 2.0), 1.0, 1.0), id="add-short"),
            pytest.param(
                lambda cal: cal.variance((1.0,) * (N + 1)), id="variance-long"
            ),
        ],
    )
    def test_rejects_wrong_feature_length(
        self, use: Callable[[Calibrator], object]
    ) -> None:
        """A feature vector of the wrong length is refused with its size."""
        with pytest.raises(ConfigError, match=str(N_COEFFICIENTS)):
            use(Calibrator(Prior.approximate()))

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.lists(
                    st.floats(0, 5000), min_size=N_COEFFICIENTS, max_size=N_COEFFICIENTS
                ),
                st.floats(-5000, 5000),
            ),
            min_size=1,
            max_size=20,
        )
    )
    def test_any_data_gives_finite_coefficients(self, data: list) -> None:
        """Whatever the reports, the solve yields finite coefficients."""
        cal = Calibrator(Prior.approximate())
        for x, r in data:
            cal.add(tuple(x), r, sum(x))
        assert all(abs(c) < float("inf") for c in cal.coefficients)

    @settings(max_examples=50, deadline=None)
    @given(st.randoms(use_true_random=False))
    def test_order_of_equal_weight_data_does_not_matter_without_decay(
        self, rng: random.Random
    ) -> None:
        """With a huge window, shuffling the reports leaves the fit unchanged."""
        truth = _Truth({"text_rate": 0.1, "framing": 5})
        xs = [_random_prompt(random.Random(i)) for i in range(12)]
        a = Calibrator(Prior.approximate(), window=10**9)
        for x in xs:
            a.add(x, truth.residual(x), _local(x))
        rng.shuffle(xs)
        b = Calibrator(Prior.approximate(), window=10**9)
        for x in xs:
            b.add(x, truth.residual(x), _local(x))
        for ca, cb in zip(a.coefficients, b.coefficients, strict=True):
            assert ca == pytest.approx(cb, rel=1e-6, abs=1e-6)

    def test_unseen_feature_has_its_prior_variance(self) -> None:
        """A feature no report has touched keeps its prior spread exactly."""
        prior = Prior.approximate()
        cal = Calibrator(prior)
        rng = random.Random(6)
        for _ in range(30):
            x = _random_prompt(rng)
            cal.add(x, 0.1 * x[4], _local(x))
        # Arabic (index 8) never appeared: its variance is std^2 per token^2.
        assert cal.variance(_x(framing=0, messages=0, arabic=100)) == pytest.approx(
            (100 * prior.stds[8]) ** 2, rel=1e-12
        )
        learned = _x(framing=0, messages=0, text=100)
        assert cal.variance(learned) < (100 * prior.stds[4]) ** 2

    def test_window_of_one_remembers_only_the_last_report(self) -> None:
        """With window=1 the fit is that of the newest report alone."""
        prior = Prior.approximate()
        cal = Calibrator(prior, window=1)
        cal.add(_x(text=500), residual=40.0, local=503.0)
        x = _x(code=200, messages=1)
        cal.add(x, residual=-10.0, local=207.0)
        fresh = Calibrator(prior, window=1)
        fresh.add(x, residual=-10.0, local=207.0)
        assert cal.coefficients == pytest.approx(fresh.coefficients, rel=1e-12)
        assert cal.variance(x) == pytest.approx(fresh.variance(x), rel=1e-12)
        # The text report is forgotten: its feature is back to its prior spread.
        text = _x(framing=0, messages=0, text=100)
        assert cal.variance(text) == pytest.approx(
            (100 * prior.stds[4]) ** 2, rel=1e-12
        )
