"""Per-model regression of reported prompt tokens on local features.

A provider's true prompt count differs from the local count in structured
ways: a fixed framing (BOS, template headers), a hidden tool preamble of
hundreds of tokens, a per-message template cost, and per-content-class rates
(a vocabulary that splits Chinese or JSON more finely than ``o200k_base``).
A single median ratio cannot express that, so the `Calibrator` fits the
*residual* ``reported - local`` as a linear function of sixteen features:

| index | feature | prior std |
|---|---|---|
| 0 | framing (1 per prompt) | tokens |
| 1 | tools present (1 when tools are bound) | tokens |
| 2 | tool-schema tokens | rate |
| 3 | messages | tokens per message |
| 4-12 | content tokens by class (`features.CONTENT_CLASSES`) | rate |
| 13 | image tokens | rate |
| 14 | tool calls | tokens per call |
| 15 | tool results | tokens per result |

The fit is Bayesian ridge regression with a Gaussian prior, centred on zero or
on a hidden cost the provider documents (`Prior.approximate`), so that the
first call moves the coefficient whose prior is widest relative to its feature
(e.g. the tool preamble when tools are bound). Old observations are forgotten
exponentially (recency), and outliers are down-weighted (Huber) against a
robust scale of recent residuals. Each observation is weighted by the inverse
square of its expected noise, so exact small deltas between consecutive
prompts count for more than large whole prompts.

Only features that have been nonzero in some report enter the solve; the
others keep their prior mean exactly. Every report refactors the normal
equations (a Cholesky of at most 16x16, pure Python, with straight-line kernels
generated per size). Measured on a 2-core VM with CPython 3.11, the median `add`
costs 17-28 us with the 9 features of English and code traffic, 25-42 us with
12 and 30-50 us with 13 (the loop-written 13x13 solve before it: 160-300
us); reading `coefficients` afterwards adds 2-5 us. It runs when a counter
learns from its queued reports, not per count.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from langchain_tokencal._calibration.kernels import Kernels, kernels, tri
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "escape_rate",
    "image_rate",
    "tool_call",
    "tool_result",
)
N_COEFFICIENTS = len(COEFFICIENT_NAMES)

# Prior of the content-class rates of an approximate counter, in tokens per
# o200k_base token beyond it. Measured for seven real vocabularies (Llama 3,
# Qwen 3, DeepSeek V3, Mistral Tekken and SentencePiece, the legacy Claude
# BPE, cl100k_base) on package metadata prose, pydantic's sources and gettext
# catalogues (zh_TW+ko, uk+bg, fa+he, bn+mr; ru+ja dumped with escapes),
# 2026-12-02, the rates beyond o200k_base were: text -0.01..0.24 (mean
# 0.06), code 0..0.26, CJK -0.02..0.39, European 0.04..0.52, Arabic
# 0.05..0.49, Indic 0.21..2.49 (mean 1.28), digits -0.24..0.92 (Qwen and
# Mistral split digits one by one), escapes 0..0.74. o200k-family models
# (gpt-oss) sit at zero and a server that decodes escapes before tokenizing
# charges far less for them, so the means are pulled towards zero and the
# spreads cover the whole range.
_CLASS_MEANS = (0.04, 0.05, 0.1, 0.15, 0.15, 0.5, 0.1, 0.2, 0.0)
_CLASS_STDS = (0.12, 0.12, 0.3, 0.3, 0.3, 1.0, 0.5, 0.6, 0.6)
# Huber threshold in robust standard deviations: a residual beyond it is
# down-weighted in proportion, so one corrupted report cannot drag the fit.
_HUBER_K = 3.0
# Residuals kept for the robust scale (MAD) used by the Huber weights.
_SCALE_WINDOW = 64
_MIN_FOR_HUBER = 8
# Forgetting multiplies a running scale, not the stored statistics (true =
# stored * scale); when the scale falls below this it is folded back in, long
# before stored values could approach overflow.
_RESCALE_BELOW = 1e-64
# Largest coefficient a restored calibrator may solve to (tokens or rates):
# a server-side prompt of millions of tokens is already absurd.
_MAX_COEFFICIENT = 1e7
# Smallest Cholesky pivot, in true units.
_PIVOT_FLOOR = 1e-12


@dataclass(frozen=True, slots=True)
class Prior:
    """Prior standard deviations of the residual coefficients.

    Each value says how far the true provider may plausibly be from the local
    counter on that coefficient, in tokens (framing, tool preamble, per
    message) or as a rate difference (tokens per local token).

    Example:
        ```python
        from langchain_tokencal._calibration.regression import Prior

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
        means = [0.0, 0.0, 0.0, 0.0, *_CLASS_MEANS, 0.0, 0.0, 0.0]
        if provider == "anthropic":
            means[1] = 346.0
        return cls(
            # Templates wrap each tool call and tool result in tens of tokens
            # (a JSON envelope, role headers, ids). The per-message prior
            # is tight so that early reports move the tool and class terms
            # they are about, not the intercept shared by every message.
            stds=(30.0, 600.0, 0.5, 4.0, *_CLASS_STDS, 1.5, 30.0, 30.0),
            # A few tokens plus a few percent: one report alone cannot
            # reshape every coefficient to fit itself.
            noise_rel=0.02,
            noise_abs=1.0,
            means=tuple(means),
        )

    @classmethod
    def exact(cls) -> Prior:
        """Narrow prior for a model whose local tokenizer is its own."""
        return cls(
            # The content is tokenized by the model's own vocabulary: what the
            # reports add is template structure (framing, per message, tools),
            # so the content-class rates are pinned near 0. Looser (0.01), they
            # soaked up structure residuals at 0.004 a token, and a later
            # prompt of long content missed by a few tokens.
            stds=(2.0, 40.0, 0.1, 1.0, *(0.001,) * 8, 0.05, 0.3, 3.0, 3.0),
            noise_rel=0.002,
            noise_abs=1.0,
        )


class Calibrator:
    """Recency-weighted, robust Bayesian regression of residual tokens.

    Not thread-safe on its own: `CalibratedCounter` serializes access.

    Args:
        prior: Prior standard deviations and the observation noise model.
        window: Effective number of recent observations kept by the
            exponential forgetting (``max_points``).

    Example:
        ```python
        from langchain_tokencal._calibration.regression import Calibrator, Prior

        cal = Calibrator(Prior.approximate(), window=200)
        x = (1.0, 0.0, 0.0, 2.0, 900.0, 50.0, *(0.0,) * 5, 10.0, *(0.0,) * 4)
        for _ in range(5):
            cal.add(x, residual=120.0, local=1000.0)
        predicted = sum(c * v for c, v in zip(cal.coefficients, x, strict=True))
        assert abs(predicted - 120.0) < 10
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
        self._precision = tuple(1.0 / (s * s) for s in prior.stds)
        # Only features that were nonzero in some report enter the solve. The
        # others have no data: their rows of the normal equations hold the
        # prior alone, so they decouple exactly and keep the prior mean.
        self._active: tuple[int, ...] = ()
        self._idle = tuple(range(N_COEFFICIENTS))
        self._kernels: Kernels | None = None
        self._take: Callable[[Sequence[float]], Sequence[float]] = tuple
        self._prior_active: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
        # Normal equations over the active features (flat lower triangle of
        # A^T W A, and A^T W b), stored divided by _scale: forgetting
        # multiplies the scale alone instead of every entry.
        self._ata: list[float] = []
        self._atb: list[float] = []
        self._scale = 1.0
        # The last factor L of the normal equations plus the prior (stored
        # units), L^-1 b, and the coefficients once they are read.
        self._low: tuple[float, ...] = ()
        self._yb: tuple[float, ...] = ()
        self._coef: tuple[float, ...] | None = tuple(prior.means)
        # The coefficients last solved: what a count that cannot wait for the
        # lock reads (one tuple, swapped whole, so never half updated).
        self.last_coefficients: tuple[float, ...] = self._coef
        self._dirty = False
        self._scaled: deque[float] = deque(maxlen=_SCALE_WINDOW)
        self._ranked: list[float] = []  # abs(_scaled), sorted, for the median
        self.points = 0
        self.downweighted = 0

    @property
    def prior(self) -> Prior:
        """The prior and noise model this calibrator was made with."""
        return self._prior

    @property
    def coefficients(self) -> tuple[float, ...]:
        """The current residual coefficients, in `COEFFICIENT_NAMES` order."""
        if self._dirty:
            self._factor()
        coef = self._coef
        if coef is None:
            # Back substitution only when the coefficients are read: add()
            # needs the factor and forward solves alone.
            full = list(self._prior.means)
            if self._kernels is not None:
                solved = self._kernels.backward(self._low, self._yb)
                for i, c in zip(self._active, solved, strict=True):
                    full[i] = c
            coef = self._coef = self.last_coefficients = tuple(full)
        return coef

    @property
    def learned(self) -> frozenset[str]:
        """Names of the coefficients some report informed (the rest: the prior)."""
        return frozenset(COEFFICIENT_NAMES[i] for i in self._active)

    def variance(self, x: Sequence[float]) -> float:
        """Posterior variance of the predicted residual for ``x`` (tokens squared).

        Raises:
            ConfigError: If ``x`` does not have `N_COEFFICIENTS` values.
        """
        _check(x)
        return self._posterior(x)[1]

    def noise(self, local: float) -> float:
        """Expected noise standard deviation of an observation of this size."""
        return self._prior.noise_rel * abs(local) + self._prior.noise_abs

    def add(self, x: Sequence[float], residual: float, local: float) -> float:
        """Add one observation; return the weight it received (0..1].

        Args:
            x: Feature vector of the observed prompt or prompt delta.
            residual: Reported tokens minus local tokens for it.
            local: The local token count, which sets the noise scale.

        Raises:
            ConfigError: If ``x`` does not have `N_COEFFICIENTS` values.
        """
        _check(x)
        sigma = self.noise(local)
        noise_var = sigma * sigma
        # Standardize by the predictive spread (noise plus what the fit does
        # not know yet), so that a first report on new kinds of content is
        # surprising only in proportion to how little is known about it.
        predicted, variance = self._posterior(x)
        error = (residual - predicted) / math.sqrt(noise_var + variance)
        weight = 1.0
        ranked = self._ranked
        if len(ranked) >= _MIN_FOR_HUBER:
            scale = max(1.4826 * ranked[len(ranked) // 2], 1.0)
            if abs(error) > _HUBER_K * scale:
                weight = _HUBER_K * scale / abs(error)
                self.downweighted += 1
        self._remember(error)
        s = self._scale * self._decay
        if s < _RESCALE_BELOW:
            self._rescale(s)
            s = 1.0
        self._scale = s
        new = [i for i in self._idle if x[i]]
        if new:
            self._activate(new)
        kernels = self._kernels
        if kernels is not None:
            kernels.accumulate(
                self._ata, self._atb, self._take(x), weight / noise_var / s, residual
            )
        self.points += 1
        self._dirty = True
        return weight

    def export(self) -> dict[str, Any]:
        """The observations' sufficient statistics, as JSON-ready numbers.

        `restore` on a calibrator with any prior rebuilds them exactly: the
        prior is added when the equations are solved, not stored in them.
        """
        return {
            "active": list(self._active),
            "ata": list(self._ata),
            "atb": list(self._atb),
            "scale": self._scale,
            "scaled": list(self._scaled),
            "points": self.points,
            "downweighted": self.downweighted,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the observations by those `export` returned.

        Raises:
            ValueError: ``data`` does not hold statistics of this shape
                (also ``TypeError``/``KeyError`` for malformed values).
        """
        active = sorted({int(i) for i in data["active"]})
        if any(not 0 <= i < N_COEFFICIENTS for i in active):
            msg = "active features out of range"
            raise ValueError(msg)
        ata = [_finite(v) for v in data["ata"]]
        atb = [_finite(v) for v in data["atb"]]
        scale = _finite(data["scale"])
        if len(ata) != tri(len(active), 0) or len(atb) != len(active) or scale <= 0:
            msg = "normal equations of the wrong size"
            raise ValueError(msg)
        if not scale <= 1.0:
            msg = "a forgetting scale above 1"
            raise ValueError(msg)
        scaled = [_finite(v) for v in data["scaled"]][-_SCALE_WINDOW:]
        points, downweighted = int(data["points"]), int(data["downweighted"])
        before = self.export() if self.points else None
        self._assign(active, (ata, atb, scale), scaled, (points, downweighted))
        if not all(
            math.isfinite(c) and abs(c) <= _MAX_COEFFICIENT for c in self.coefficients
        ):
            # Statistics no run of reports could produce (a crafted store):
            # refused whole, the calibrator left as it was.
            if before is None:
                self._assign([], ([], [], 1.0), [], (0, 0))
            else:
                self.restore(before)
            msg = "statistics whose solution is not finite or absurdly large"
            raise ValueError(msg)

    def _assign(
        self,
        active: list[int],
        equations: tuple[list[float], list[float], float],
        scaled: list[float],
        counts: tuple[int, int],
    ) -> None:
        """Replace the statistics (checked by `restore`) and solve."""
        ata, atb, scale = equations
        points, downweighted = counts
        self._active, self._idle = (), tuple(range(N_COEFFICIENTS))
        self._kernels = None
        if active:
            self._activate(active)
        self._ata, self._atb, self._scale = ata, atb, scale
        self._scaled = deque(scaled, maxlen=_SCALE_WINDOW)
        self._ranked = sorted(map(abs, scaled))
        self.points, self.downweighted = max(points, 0), max(downweighted, 0)
        self._dirty = True
        self._coef = None
        self.last_coefficients = self.coefficients

    def _posterior(self, x: Sequence[float]) -> tuple[float, float]:
        """Predicted residual for ``x`` and its posterior variance."""
        if self._dirty:
            self._factor()
        means, prec = self._prior.means, self._precision
        predicted = variance = 0.0
        for i in self._idle:
            v = x[i]
            if v:
                predicted += means[i] * v
                variance += v * v / prec[i]
        if self._kernels is not None:
            # With y = L^-1 x: x.c = (L^-1 b).y and x^T A^-1 x = y.y (stored
            # units), so neither needs the back substitution.
            fitted, spread = self._kernels.project(self._low, self._yb, self._take(x))
            predicted += fitted
            variance += spread / self._scale
        return predicted, variance

    def _factor(self) -> None:
        """Factor the normal equations plus the prior, and solve ``L y = b``."""
        self._coef = None
        self._dirty = False
        if self._kernels is not None:
            # In stored units the prior precision and the pivot floor are
            # divided by the scale too.
            s = self._scale
            self._low, self._yb = self._kernels.factor(
                self._ata, self._atb, *self._prior_active, s, _PIVOT_FLOOR / s
            )

    def _remember(self, error: float) -> None:
        """Keep ``error`` for the robust scale, and its magnitude in rank order."""
        scaled, ranked = self._scaled, self._ranked
        if len(scaled) == scaled.maxlen:
            old = abs(scaled[0])
            k = bisect_left(ranked, old)
            if k < len(ranked) and ranked[k] == old:
                del ranked[k]
            else:  # a NaN defeats bisection: rebuild instead
                scaled.append(error)
                self._ranked = sorted(map(abs, scaled))
                return
        scaled.append(error)
        insort(ranked, abs(error))

    def _rescale(self, factor: float) -> None:
        """Fold ``factor`` into the stored statistics (the scale becomes 1)."""
        self._ata = [v * factor for v in self._ata]
        self._atb = [v * factor for v in self._atb]

    def _activate(self, features: Iterable[int]) -> None:
        """Give ``features`` rows and columns in the normal equations."""
        old, old_ata, old_atb = self._active, self._ata, self._atb
        active = tuple(sorted({*old, *features}))
        at = {i: k for k, i in enumerate(active)}
        ata = [0.0] * tri(len(active), 0)
        atb = [0.0] * len(active)
        for a, i in enumerate(old):
            atb[at[i]] = old_atb[a]
            for b in range(a + 1):
                ata[tri(at[i], at[old[b]])] = old_ata[tri(a, b)]
        self._active, self._ata, self._atb = active, ata, atb
        self._idle = tuple(i for i in range(N_COEFFICIENTS) if i not in at)
        self._kernels = kernels(len(active))
        # itemgetter of one index returns the item, not a 1-tuple.
        self._take = itemgetter(*active) if len(active) > 1 else _single(active[0])
        self._prior_active = (
            tuple(self._precision[i] for i in active),
            tuple(self._prior.means[i] for i in active),
        )
        self._dirty = True


def _single(index: int) -> Callable[[Sequence[float]], tuple[float]]:
    """Like ``itemgetter(index)``, but returning a 1-tuple."""
    return lambda x: (x[index],)


def _finite(value: object) -> float:
    """A float that is finite, or ValueError."""
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        msg = f"not a finite number: {value!r}"
        raise ValueError(msg)
    return number


def _check(x: Sequence[float]) -> None:
    """Refuse a feature vector of the wrong length."""
    if len(x) != N_COEFFICIENTS:
        msg = f"feature vector needs {N_COEFFICIENTS} values, got {len(x)}."
        raise ConfigError(msg)
