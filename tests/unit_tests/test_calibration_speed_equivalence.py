"""The fast calibrator gives the textbook calibrator's results.

`Calibrator` stores the forgetting as one running scale, solves only over the
features seen so far, and runs generated straight-line Cholesky kernels. Here a
plain reference (dense decayed normal equations, a loop-written Cholesky per
solve, exactly as the regression is defined) runs beside it on the same reports,
and the weights, coefficients, predictions, the whole posterior covariance (read
through `Calibrator.variance`) and the counts must agree to a relative 1e-9.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_tokencal._calibration.kernels import kernels as _kernels
from langchain_tokencal._calibration.regression import N_COEFFICIENTS, Calibrator, Prior

if TYPE_CHECKING:
    from collections.abc import Callable

N = N_COEFFICIENTS
REL = 1e-9
Vector = tuple[float, ...]


class _Reference:
    """The regression as written down: no scale trick, no sparsity, no codegen."""

    def __init__(self, prior: Prior, window: int) -> None:
        self.prior = prior
        self.decay = 1.0 - 1.0 / window
        self.precision = [1.0 / (s * s) for s in prior.stds]
        self.ata = [[0.0] * N for _ in range(N)]
        self.atb = [0.0] * N
        self.scaled: deque[float] = deque(maxlen=64)
        self.points = 0
        self.downweighted = 0
        self.factored: tuple[list[list[float]], list[float]] | None = None

    def _factor(self) -> tuple[list[list[float]], list[float]]:
        # Cached until the next report: probing many variances costs one factor.
        if self.factored is None:
            self.factored = self._solve()
        return self.factored

    def _solve(self) -> tuple[list[list[float]], list[float]]:
        a = [row[:] for row in self.ata]
        b = self.atb[:]
        for i in range(N):
            a[i][i] += self.precision[i]
            b[i] += self.precision[i] * self.prior.means[i]
        low = _textbook_cholesky(a)
        return low, b

    def coefficients(self) -> list[float]:
        low, b = self._factor()
        return _textbook_backward(low, _textbook_forward(low, b))

    def predict(self, x: tuple[float, ...]) -> float:
        return sum(c * v for c, v in zip(self.coefficients(), x, strict=True))

    def variance(self, x: tuple[float, ...]) -> float:
        low, _ = self._factor()
        return sum(v * v for v in _textbook_forward(low, list(x)))

    def add(self, x: tuple[float, ...], residual: float, local: float) -> float:
        sigma = self.prior.noise_rel * abs(local) + self.prior.noise_abs
        error = (residual - self.predict(x)) / math.sqrt(
            sigma * sigma + self.variance(x)
        )
        weight = 1.0
        if len(self.scaled) >= 8:
            ordered = sorted(abs(v) for v in self.scaled)
            scale = max(1.4826 * ordered[len(ordered) // 2], 1.0)
            if abs(error) > 3.0 * scale:
                weight = 3.0 * scale / abs(error)
                self.downweighted += 1
        self.scaled.append(error)
        w = weight / (sigma * sigma)
        for i in range(N):
            for j in range(N):
                self.ata[i][j] = self.ata[i][j] * self.decay + w * x[i] * x[j]
            self.atb[i] = self.atb[i] * self.decay + w * x[i] * residual
        self.points += 1
        self.factored = None
        return weight


def _textbook_cholesky(
    a: list[list[float]], ridge: list[float] | None = None, floor: float = 1e-12
) -> list[list[float]]:
    n = len(a)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = sum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                d = a[i][i] + (ridge[i] if ridge else 0.0) - s
                low[i][i] = math.sqrt(max(d, floor))
            else:
                low[i][j] = (a[i][j] - s) / low[j][j]
    return low


def _textbook_forward(low: list[list[float]], b: list[float]) -> list[float]:
    y = [0.0] * len(b)
    for i in range(len(b)):
        y[i] = (b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    return y


def _textbook_backward(low: list[list[float]], y: list[float]) -> list[float]:
    n = len(y)
    c = [0.0] * n
    for i in reversed(range(n)):
        c[i] = (y[i] - sum(low[k][i] * c[k] for k in range(i + 1, n))) / low[i][i]
    return c


def _close(actual: float, expected: float, scale: float = 0.0) -> bool:
    """Equal to a relative 1e-9, or within 1e-9 of ``scale`` near zero."""
    return abs(actual - expected) <= REL * max(abs(expected), scale)


def _dot(coefficients: tuple[float, ...], x: Vector) -> float:
    """The predicted residual: the coefficients dotted with the features."""
    return sum(c * v for c, v in zip(coefficients, x, strict=True))


def _unit(*indices: int) -> Vector:
    """The feature vector with ones at ``indices`` and zeros elsewhere."""
    return tuple(float(i in indices) for i in range(N))


PAIRS = list(itertools.combinations(range(N), 2))


def _assert_same_covariance(cal: Calibrator, ref: _Reference) -> None:
    """The posterior covariances agree entry by entry.

    The variances of the unit vectors are the diagonal, and those of their
    pairwise sums give each off-diagonal entry; an entry is compared on the
    scale of its diagonal (Cauchy-Schwarz bounds it by that).
    """
    diag = [cal.variance(_unit(i)) for i in range(N)]
    for i, d in enumerate(diag):
        assert _close(d, ref.variance(_unit(i))), i
    for i, j in PAIRS:
        got = cal.variance(_unit(i, j)) - diag[i] - diag[j]
        want = (
            ref.variance(_unit(i, j)) - ref.variance(_unit(i)) - ref.variance(_unit(j))
        )
        assert _close(got, want, math.sqrt(diag[i] * diag[j])), (i, j)


def _assert_same(cal: Calibrator, ref: _Reference, probes: list) -> None:
    """Coefficients, predictions, variances, covariance and counts agree."""
    coefficients, ref_coefficients = cal.coefficients, ref.coefficients()
    for c, r, std in zip(coefficients, ref_coefficients, ref.prior.stds, strict=True):
        # A coefficient the data pins near zero is compared on its prior scale.
        assert _close(c, r, std), (coefficients, ref_coefficients)
    for x in probes:
        assert _close(_dot(coefficients, x), ref.predict(x), 1.0), x  # tokens
        assert _close(cal.variance(x), ref.variance(x)), x
    _assert_same_covariance(cal, ref)
    assert (cal.points, cal.downweighted) == (ref.points, ref.downweighted)


def _realistic(rng: random.Random, classes: dict[int, float]) -> Vector:
    """A prompt's features: mostly zero content classes, as reports are."""
    x = [0.0] * N
    x[0] = float(rng.random() < 0.7)
    x[1] = float(rng.random() < 0.4)
    x[2] = float(rng.randint(100, 600)) if x[1] and x[0] else 0.0
    x[3] = float(rng.randint(1, 50))
    x[4] = float(rng.randint(10, 3000))
    for c, p in classes.items():
        if rng.random() < p:
            x[c] = float(rng.randint(1, 800))
    x[11] = float(rng.randint(0, 60)) if rng.random() < 0.5 else 0.0
    return tuple(x)


def _dense(rng: random.Random) -> Vector:
    """Every feature nonzero, the image one included."""
    return tuple(float(rng.randint(1, 4000)) for _ in range(N))


def _run(
    prior: Prior, window: int, reports: list, probes: list, every: int = 250
) -> tuple[Calibrator, _Reference]:
    cal, ref = Calibrator(prior, window=window), _Reference(prior, window)
    for k, (x, residual, local) in enumerate(reports, 1):
        got, want = cal.add(x, residual, local), ref.add(x, residual, local)
        assert _close(got, want), (k, got, want)
        if k % every == 0:
            _assert_same(cal, ref, probes)
    _assert_same(cal, ref, probes)
    return cal, ref


def _reports(
    rng: random.Random, n: int, make: Callable[[random.Random], Vector]
) -> list:
    """Reports from a hidden provider, with 2% corrupted ones."""
    out = []
    for _ in range(n):
        x = make(rng)
        local = 3 + 4 * x[3] + sum(x[4:]) + x[2]
        residual = 7 * x[0] + 320 * x[1] + 0.05 * x[2] + 2 * x[3] + 0.1 * x[4]
        residual += 0.3 * x[5] + 0.45 * x[6] + rng.gauss(0, 3)
        if rng.random() < 0.02:
            residual += rng.choice((-1, 1)) * rng.uniform(1000, 50_000)
        out.append((x, residual, local))
    return out


ENGLISH = {5: 0.3, 7: 0.02, 10: 0.05}
EVERY_CLASS = dict.fromkeys(range(5, 11), 0.3)
english = functools.partial(_realistic, classes=ENGLISH)
every_class = functools.partial(_realistic, classes=EVERY_CLASS)
text_only = functools.partial(_realistic, classes={})


@st.composite
def _report(draw: st.DrawFn) -> tuple[Vector, float, float]:
    """A report shaped like the counter's: flags, counts, mostly-zero classes."""
    framing = draw(st.booleans())
    tools = draw(st.booleans())
    schema = draw(st.integers(1, 2000)) if tools and framing else 0
    messages = draw(st.integers(1, 60) if framing else st.integers(1, 3))
    content = draw(
        st.lists(st.one_of(st.just(0), st.integers(1, 5000)), min_size=9, max_size=9)
    )
    x = (float(framing), float(tools), float(schema), float(messages))
    x += (*map(float, content), 0.0, 0.0, 0.0)
    local = (3 * framing + 4 * messages + schema + sum(content)) * draw(
        st.floats(0.8, 1.25)
    )
    residual = draw(st.floats(-0.5, 0.5)) * local + draw(st.floats(-400, 400))
    return x, residual, local


def _exact_variance(prior: Prior, window: int, reports: list, probe: Vector) -> float:
    """x^T A^-1 x in rational arithmetic, for fewer than eight reports (weights 1)."""
    decay = 1 - Fraction(1, window)
    a = [[Fraction(0)] * N for _ in range(N)]
    for k, (x, _, local) in enumerate(reports):
        sigma = prior.noise_rel * abs(local) + prior.noise_abs
        w = Fraction(1.0 / (sigma * sigma)) * decay ** (len(reports) - 1 - k)
        for i in range(N):
            for j in range(N):
                a[i][j] += w * Fraction(x[i]) * Fraction(x[j])
    for i in range(N):
        a[i][i] += Fraction(1.0 / (prior.stds[i] * prior.stds[i]))
    m = [[*row, Fraction(v)] for row, v in zip(a, probe, strict=True)]
    for c in range(N):  # Gauss-Jordan; the matrix is positive definite
        for r in range(N):
            if r != c and m[r][c]:
                f = m[r][c] / m[c][c]
                m[r] = [p - f * q for p, q in zip(m[r], m[c], strict=True)]
    return float(sum(Fraction(v) * m[i][N] / m[i][i] for i, v in enumerate(probe)))


class TestKernels:
    """The generated straight-line kernels."""

    @pytest.mark.parametrize("n", range(1, N + 1))
    def test_factor_and_solves_equal_the_textbook_loops_bit_for_bit(
        self, n: int
    ) -> None:
        """On the same matrix, factor, forward and back solves are bit-identical."""
        rng = random.Random(n)
        rows = [[rng.uniform(-5, 5) for _ in range(n)] for _ in range(2 * n)]
        a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
        ridge = [rng.uniform(0.01, 2.0) for _ in range(n)]
        means = [rng.uniform(-1, 1) for _ in range(n)]
        scale = rng.uniform(0.1, 1.0)
        ridge_scaled = [p / scale for p in ridge]
        atb = [rng.uniform(-100, 100) for _ in range(n)]
        b = [t + r * m for t, r, m in zip(atb, ridge_scaled, means, strict=True)]
        flat = [a[i][j] for i in range(n) for j in range(i + 1)]
        kern = _kernels(n)
        low, yb = kern.factor(flat, atb, tuple(ridge), tuple(means), scale, 1e-12)
        want = _textbook_cholesky(a, ridge_scaled)
        assert list(low) == [want[i][j] for i in range(n) for j in range(i + 1)]
        assert list(yb) == _textbook_forward(want, b)
        assert list(kern.backward(low, yb)) == _textbook_backward(want, list(yb))
        x = [float(rng.randint(0, 500)) for _ in range(n)]
        y = _textbook_forward(want, x)
        fitted, spread = kern.project(low, yb, x)
        assert fitted == sum(p * q for p, q in zip(yb, y, strict=True))
        assert spread == sum(v * v for v in y)

    @pytest.mark.parametrize("n", [1, 4, N])
    def test_accumulate_adds_the_weighted_outer_product(self, n: int) -> None:
        """accumulate() adds w x x^T and w r x, skipping zero features."""
        rng = random.Random(n)
        x = [float(rng.randint(0, 3)) * (rng.random() < 0.5) for _ in range(n)]
        ata = [rng.uniform(0, 9) for _ in range(n * (n + 1) // 2)]
        atb = [rng.uniform(-9, 9) for _ in range(n)]
        want_a = [
            ata[i * (i + 1) // 2 + j] + 0.5 * x[i] * x[j]
            for i in range(n)
            for j in range(i + 1)
        ]
        want_b = [v + 0.5 * x[i] * 7.0 for i, v in enumerate(atb)]
        _kernels(n).accumulate(ata, atb, x, 0.5, 7.0)
        assert ata == pytest.approx(want_a, rel=1e-15)
        assert atb == pytest.approx(want_b, rel=1e-15)

    def test_kernels_are_compiled_once_per_size(self) -> None:
        """The kernels of one size are shared by every calibrator."""
        assert _kernels(5) is _kernels(5)


class TestEquivalence:
    """Long report sequences give the reference's results to 1e-9."""

    @pytest.mark.parametrize(
        ("window", "n"),
        [
            pytest.param(500, 1500, id="default-window"),
            pytest.param(50, 1500, id="short-window"),
            pytest.param(10**9, 600, id="no-forgetting"),
        ],
    )
    @pytest.mark.parametrize(
        "classes", [ENGLISH, EVERY_CLASS], ids=["english", "every-class"]
    )
    def test_realistic_sparse_reports(
        self, window: int, n: int, classes: dict[int, float]
    ) -> None:
        """Sparse realistic reports with outliers: same weights, fit and statistics."""
        rng = random.Random(window + n)
        reports = _reports(rng, n, functools.partial(_realistic, classes=classes))
        probes = [every_class(rng) for _ in range(3)]
        _, ref = _run(Prior.approximate(), window, reports, probes)
        assert ref.downweighted > 0  # the outliers did exercise Huber weights

    @pytest.mark.parametrize("window", [2, 3, 7])
    def test_thousands_of_reports_with_a_tiny_window(self, window: int) -> None:
        """Forgetting that compounds past the float range keeps the reference's fit.

        (1 - 1/2)^4000 is about 1e-1204: a forgetting factor kept as one running
        product would underflow to zero long before the last report.
        """
        rng = random.Random(window)
        reports = _reports(rng, 4000, english)
        probes = [english(rng) for _ in range(2)]
        cal, _ = _run(Prior.approximate(), window, reports, probes, every=500)
        assert all(math.isfinite(c) for c in cal.coefficients)
        assert all(0.0 < cal.variance(x) < math.inf for x in probes)

    def test_window_of_one_keeps_the_last_report_alone(self) -> None:
        """window=1 forgets everything but the newest report, like the reference."""
        rng = random.Random(1)
        reports = _reports(rng, 300, english)
        _run(Prior.approximate(), 1, reports, [reports[0][0]], every=50)

    @pytest.mark.parametrize("prior", [Prior.approximate("anthropic"), Prior.exact()])
    def test_dense_reports_with_every_feature(self, prior: Prior) -> None:
        """All sixteen features nonzero in every report (the full 16x16 solve)."""
        rng = random.Random(13)
        reports = _reports(rng, 800, _dense)
        _run(prior, 200, reports, [_dense(rng)], every=100)

    def test_features_that_appear_late_join_the_solve(self) -> None:
        """Content classes first seen after hundreds of reports change nothing else."""
        rng = random.Random(5)
        reports = _reports(rng, 400, text_only)
        reports += _reports(rng, 400, functools.partial(_realistic, classes={6: 0.5}))
        reports += _reports(rng, 400, every_class)
        probes = [every_class(rng)]
        _run(Prior.approximate(), 300, reports, probes, every=100)

    @settings(max_examples=60, deadline=None)
    @given(
        window=st.sampled_from([1, 2, 3, 10, 500, 10**9]),
        reports=st.lists(_report(), min_size=1, max_size=60),
    )
    def test_any_report_sequence(self, window: int, reports: list) -> None:
        """Any sequence of plausibly shaped reports agrees with the reference."""
        probes = [tuple(1.0 for _ in range(N)), reports[-1][0]]
        _run(Prior.approximate(), window, reports, probes, every=10)

    def test_ill_conditioned_reports_are_as_accurate_as_the_reference(self) -> None:
        """Where the two differ past 1e-9, the exact answer shows rounding, not a bug.

        Thousands of tokens reported with a local count of zero (so a noise of
        two tokens) pin some directions a billion times harder than the prior:
        both implementations then lose about eight digits to cancellation.
        """
        # The approximate prior these reports were found with: 6 tokens per
        # message, a noise of 2 tokens + 1%.
        stds = list(Prior.approximate().stds)
        stds[3] = 6.0
        prior = Prior(stds=tuple(stds), noise_rel=0.01, noise_abs=2.0)
        xs = [[0.0] * N, [0.0] * N]
        xs[0][10] = 3962.0
        xs[1][1], xs[1][3], xs[1][9] = 51.0, 3806.0, 399.0
        reports = [(tuple(xs[0]), 442.02980240887064, 4632.0), (tuple(xs[1]), 0.0, 0.0)]
        cal, ref = Calibrator(prior, window=500), _Reference(prior, 500)
        for x, r, local in reports:
            cal.add(x, r, local)
            ref.add(x, r, local)
        probe = (1.0,) * N
        exact = _exact_variance(prior, 500, reports, probe)
        fast, textbook = cal.variance(probe), ref.variance(probe)
        assert abs(fast - textbook) > REL * exact  # they do differ here...
        assert abs(fast - exact) <= abs(textbook - exact)  # ...and fast is closer


class TestInactiveFeatures:
    """Features no report has touched stay out of the solve."""

    def test_unseen_features_keep_the_prior_mean_exactly(self) -> None:
        """A feature no report has touched keeps its prior mean, bit for bit."""
        prior = Prior(
            stds=Prior.approximate().stds,
            noise_rel=0.01,
            noise_abs=2.0,
            means=tuple(0.1 * (i + 1) for i in range(N)),
        )
        cal = Calibrator(prior)
        rng = random.Random(4)
        for x, r, loc in _reports(rng, 50, text_only):
            cal.add(x, r, loc)
        coef = cal.coefficients
        for i in (5, 6, 7, 8, 9, 10, 12):
            assert coef[i] == prior.means[i]
