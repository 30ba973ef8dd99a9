"""Per-model regression of reported prompt tokens on local features.

A provider's true prompt count differs from the local count in structured
ways: a fixed framing (BOS, template headers), a hidden tool preamble of
hundreds of tokens, a per-message template cost, and per-content-class rates
(a vocabulary that splits Chinese or JSON more finely than ``o200k_base``).
A single median ratio cannot express that, so the `Calibrator` fits the
*residual* ``reported - local`` as a linear function of thirteen features:

| index | feature | prior std |
|---|---|---|
| 0 | framing (1 per prompt) | tokens |
| 1 | tools present (1 when tools are bound) | tokens |
| 2 | tool-schema tokens | rate |
| 3 | messages | tokens per message |
| 4-11 | content tokens by class (`features.CONTENT_CLASSES`) | rate |
| 12 | image tokens | rate |

The fit is Bayesian ridge regression with a zero-mean Gaussian prior (so the
first call moves the coefficient whose prior is widest relative to its feature,
e.g. the tool preamble when tools are bound), exponential forgetting of old
observations (recency), and Huber down-weighting of outliers against a robust
scale of recent residuals. Each observation is weighted by the inverse square
of its expected noise, so exact small deltas between consecutive prompts
count for more than large whole prompts.

The solve is a 10x10 Cholesky in pure Python: about a hundred microseconds,
done lazily outside callbacks.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "COEFFICIENT_NAMES",
    "N_COEFFICIENTS",
    "Calibrator",
    "Prior",
]

COEFFICIENT_NAMES: tuple[str, ...] = (
    "framing",
    "tool_preamble",
    "tool_schema_rate",
    "per_message",
    "text_rate",
    "code_rate",
    "cjk_rate",
    "european_rate",
    "arabic_rate",
    "indic_rate",
    "other_rate",
    "digits_rate",
    "image_rate",
)
N_COEFFICIENTS = len(COEFFICIENT_NAMES)

# Huber threshold in robust standard deviations: a residual beyond it is
# down-weighted in proportion, so one corrupted report cannot drag the fit.
_HUBER_K = 3.0
# Residuals kept for the robust scale (MAD) used by the Huber weights.
_SCALE_WINDOW = 64
_MIN_FOR_HUBER = 8


@dataclass(frozen=True, slots=True)
class Prior:
    """Prior standard deviations of the residual coefficients.

    Each value says how far the true provider may plausibly be from the local
    counter on that coefficient, in tokens (framing, tool preamble, per
    message) or as a rate difference (tokens per local token).

    Example:
        ```python
        from langchain_tokencal.calibration import Prior

        prior = Prior.approximate()
        assert prior.stds[1] > prior.stds[0]  # tool preambles vary most
        ```
    """

    stds: tuple[float, ...]
    noise_rel: float
    noise_abs: float
    means: tuple[float, ...] = (0.0,) * N_COEFFICIENTS

    @classmethod
    def approximate(cls, provider: str | None = None) -> Prior:
        """Wide prior for a model whose tokenizer is not known locally.

        Args:
            provider: Where a provider documents a hidden cost, the prior is
                centred on it.

        Note:
            Anthropic documents the system prompt it adds when tools are bound:
            346 tokens for current Claude models with ``tool_choice`` auto or
            none (313 for any/tool; 159-530 for Claude 3 models), on top of the
            schemas. That is the prior mean of the tool preamble for
            ``provider="anthropic"``; the data moves it from the first call.
        """
        means = [0.0] * N_COEFFICIENTS
        if provider == "anthropic":
            means[1] = 346.0
        return cls(
            # Indic scripts vary most between vocabularies (cl100k_base spends
            # 2.7x the tokens o200k_base does on Hindi), then CJK and Arabic.
            stds=(30.0, 600.0, 0.5, 6.0, 0.35, 0.45, 0.8, 0.6, 0.8, 1.5, 0.8, 0.6, 1.5),
            noise_rel=0.01,
            noise_abs=2.0,
            means=tuple(means),
        )

    @classmethod
    def exact(cls) -> Prior:
        """Narrow prior for a model whose local tokenizer is its own."""
        return cls(
            stds=(2.0, 40.0, 0.1, 1.0, *(0.01,) * 8, 0.3),
            noise_rel=0.002,
            noise_abs=1.0,
        )


def _cholesky(a: list[list[float]]) -> list[list[float]]:
    """Lower-triangular ``L`` with ``L L^T = a``, for a symmetric positive ``a``."""
    n = len(a)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        row_i = low[i]
        for j in range(i + 1):
            row_j = low[j]
            s = a[i][j] - sum(row_i[k] * row_j[k] for k in range(j))
            if i == j:
                # The prior keeps the matrix positive definite; the floor only
                # guards against rounding on extreme feature scales.
                row_i[i] = math.sqrt(max(s, 1e-12))
            else:
                row_i[j] = s / row_j[j]
    return low


def _forward(low: list[list[float]], b: Sequence[float]) -> list[float]:
    """Solve ``L y = b``."""
    y = [0.0] * len(b)
    for i in range(len(b)):
        y[i] = (b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    return y


def _backward(low: list[list[float]], y: Sequence[float]) -> list[float]:
    """Solve ``L^T x = y``."""
    n = len(y)
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


class Calibrator:
    """Recency-weighted, robust Bayesian regression of residual tokens.

    Not thread-safe on its own: `CalibratedCounter` serializes access.

    Args:
        prior: Prior standard deviations and the observation noise model.
        window: Effective number of recent observations kept by the
            exponential forgetting (``max_points``).

    Example:
        ```python
        from langchain_tokencal.calibration import Calibrator, Prior

        cal = Calibrator(Prior.approximate(), window=200)
        x = (1.0, 0.0, 0.0, 2.0, 900.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 0.0)
        for _ in range(5):
            cal.add(x, residual=120.0, local=1000.0)
        assert abs(cal.predict(x) - 120.0) < 10
        ```
    """

    def __init__(self, prior: Prior, window: int = 500) -> None:
        """Create a calibrator with no observations."""
        if window < 1:
            msg = f"window must be >= 1, got {window!r}; use e.g. max_points=500."
            raise ConfigError(msg)
        if len(prior.stds) != N_COEFFICIENTS or len(prior.means) != N_COEFFICIENTS:
            msg = f"Prior needs {N_COEFFICIENTS} standard deviations and means."
            raise ConfigError(msg)
        self._prior = prior
        self._decay = 1.0 - 1.0 / window
        self._precision = [1.0 / (s * s) for s in prior.stds]
        self._ata = [[0.0] * N_COEFFICIENTS for _ in range(N_COEFFICIENTS)]
        self._atb = [0.0] * N_COEFFICIENTS
        self._coef: tuple[float, ...] = tuple(prior.means)
        self._low: list[list[float]] | None = None
        self._dirty = False
        self._scaled: deque[float] = deque(maxlen=_SCALE_WINDOW)
        self.points = 0
        self.downweighted = 0

    @property
    def coefficients(self) -> tuple[float, ...]:
        """The current residual coefficients, in `COEFFICIENT_NAMES` order."""
        if self._dirty:
            self._solve()
        return self._coef

    def predict(self, x: Sequence[float]) -> float:
        """Predicted residual (true minus local tokens) for feature vector ``x``."""
        coef = self.coefficients
        return sum(c * v for c, v in zip(coef, x, strict=True))

    def noise(self, local: float) -> float:
        """Expected noise standard deviation of an observation of this size."""
        return self._prior.noise_rel * abs(local) + self._prior.noise_abs

    def add(self, x: Sequence[float], residual: float, local: float) -> float:
        """Add one observation; return the weight it received (0..1].

        Args:
            x: Feature vector of the observed prompt or prompt delta.
            residual: Reported tokens minus local tokens for it.
            local: The local token count, which sets the noise scale.
        """
        if len(x) != N_COEFFICIENTS:
            msg = f"feature vector needs {N_COEFFICIENTS} values, got {len(x)}."
            raise ConfigError(msg)
        sigma = self.noise(local)
        # Standardize by the predictive spread (noise plus what the fit does
        # not know yet), so that a first report on new kinds of content is
        # surprising only in proportion to how little is known about it.
        error = (residual - self.predict(x)) / math.sqrt(
            sigma * sigma + self.variance(x)
        )
        weight = 1.0
        if len(self._scaled) >= _MIN_FOR_HUBER:
            ordered = sorted(abs(v) for v in self._scaled)
            scale = max(1.4826 * ordered[len(ordered) // 2], 1.0)
            if abs(error) > _HUBER_K * scale:
                weight = _HUBER_K * scale / abs(error)
                self.downweighted += 1
        self._scaled.append(error)
        w = weight / (sigma * sigma)
        decay = self._decay
        ata, atb = self._ata, self._atb
        for i in range(N_COEFFICIENTS):
            xi = x[i]
            row = ata[i]
            wxi = w * xi
            for j in range(N_COEFFICIENTS):
                row[j] = row[j] * decay + wxi * x[j]
            atb[i] = atb[i] * decay + wxi * residual
        self.points += 1
        self._dirty = True
        return weight

    def _solve(self) -> None:
        a = [row[:] for row in self._ata]
        b = self._atb[:]
        means = self._prior.means
        for i, p in enumerate(self._precision):
            a[i][i] += p
            b[i] += p * means[i]
        self._low = _cholesky(a)
        self._coef = tuple(_backward(self._low, _forward(self._low, b)))
        self._dirty = False

    def variance(self, x: Sequence[float]) -> float:
        """Posterior variance of the predicted residual for ``x`` (tokens squared)."""
        if self._dirty or self._low is None:
            self._solve()
        low = self._low
        if low is None:  # pragma: no cover - _solve always sets it
            return 0.0
        return sum(v * v for v in _forward(low, x))

    def state(self) -> dict[str, object]:
        """Sufficient statistics, for persistence (numbers only)."""
        return {
            "ata": [row[:] for row in self._ata],
            "atb": self._atb[:],
            "points": self.points,
            "downweighted": self.downweighted,
            "scaled": list(self._scaled),
        }
