"""What a count says: the estimate, its interval, its source and confidence.

A count splits a prompt into a *known* part (tokens taken from reports: an
anchoring prefix, learned message costs, a learned tool-set base) and an
*estimated* part (calibrated estimates, and provisional costs still being
refined). The interval is put around the estimated part, in units of its own
predictive standard deviation (``sd``: the regression's uncertainty for that
very content, each message's noise, the provisional costs' variances), so a
pasted document the fit knows well gets a narrow interval and a new tool set's
unseen preamble a wide one. The multiples of ``sd`` are the quantiles of this
model's recent standardized residuals (``(reported - predicted) / sd``), made
once the regression had ``min_points`` reports; before there are
``min_points`` of those, a normal quantile widened by a quarter.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from langchain_tokencal._counting import CounterInfo

__all__ = [
    "RESIDUAL_FLOOR",
    "CounterKind",
    "Source",
    "TokenEstimate",
    "counter_kind",
    "model_confidence",
    "standard_interval",
]

Source = Literal["exact", "anchored", "calibrated", "local", "fallback"]
CounterKind = Literal["exact", "approximate", "fallback"]

RESIDUAL_FLOOR: Final = 32.0
"""Tokens added to the estimated part when errors are made relative to it."""

# Widening of the normal quantile before a model has standardized residuals:
# the noise model is a guess until its residuals say otherwise.
_PRIOR_WIDEN: Final = 1.25
# The narrowest multiple of the sd an interval spans on either side: easy
# reports (anchored, known content) dominate the residuals and would shrink
# the multiple below what the hard ones (a new tool set) need.
_MIN_Z: Final = 1.0
# Confidence of an uncalibrated local count, by counter kind.
_LOCAL_CONFIDENCE: Final[Mapping[CounterKind, float]] = {
    "exact": 0.95,
    "approximate": 0.2,
    "fallback": 0.0,
}


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """A prompt token count with its interval and what it rests on.

    Attributes:
        tokens: The best estimate of the prompt's input tokens.
        low: Lower end of the interval.
        high: Upper end; count ``high`` to rarely overflow a context window.
        source: ``"exact"`` (this prompt was reported), ``"anchored"`` (most of
            it is known from reports), ``"calibrated"`` (estimated from this
            model's reports), ``"local"`` (no reports yet: the local count plus
            overheads the provider documents) or
            ``"fallback"`` (no reports and no tokenizer: character classes).
        confidence: 0..1, how much to trust ``tokens``.
        model: The counter's model key.
        local_tokens: The uncalibrated local count of the same prompt.
        known_tokens: Tokens taken from reports (prefix or message costs).
        messages: Messages in the prompt.
        known_messages: Messages whose cost came from reports.
        observations: Reports this model has learned from.

    Example:
        ```python
        from langchain_tokencal import create_counter

        est = create_counter("gpt-4o").estimate([("user", "hello")])
        assert est.low <= est.tokens <= est.high
        ```
    """

    tokens: int
    low: int
    high: int
    source: Source
    confidence: float
    model: str
    local_tokens: int
    known_tokens: int
    messages: int
    known_messages: int
    observations: int

    @property
    def basis(self) -> str:
        """One sentence saying what the estimate rests on."""
        if self.source == "exact":
            return f"this exact prompt was reported ({self.tokens} tokens)"
        parts = [f"{self.known_messages}/{self.messages} messages known from reports"]
        if self.observations:
            parts.append(f"calibrated on {self.observations} reports")
        else:
            parts.append("no reports yet for this model")
        return "; ".join(parts)


def counter_kind(info: CounterInfo) -> CounterKind:
    """How far a local counter can be trusted before any report."""
    if info.kind == "exact" and not info.fallback:
        return "exact"
    return "fallback" if info.encoding is None else "approximate"


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def standard_interval(
    zscores: Sequence[float], min_points: int, coverage: float
) -> tuple[float, float]:
    """Multiples ``(low, high)`` of a count's predictive sd its interval spans.

    Args:
        zscores: Recent standardized residuals of the model's reports.
        min_points: Residuals needed before they replace the normal quantile.
        coverage: The share of reports the interval should cover.

    Example:
        ```python
        from langchain_tokencal._calibration.estimate import standard_interval

        low, high = standard_interval([], min_points=5, coverage=0.95)
        assert low < -1.96 and high > 1.96
        ```
    """
    tail = (1.0 - coverage) / 2.0
    if len(zscores) < min_points:
        z = NormalDist().inv_cdf(1.0 - tail) * _PRIOR_WIDEN
        return -z, z
    ordered = sorted(zscores)
    # Few residuals understate the tails: widen by a small-sample factor.
    widen = 1.0 + 1.0 / len(ordered) ** 0.5
    lo = min(_quantile(ordered, tail) * widen, -_MIN_Z)
    hi = max(_quantile(ordered, 1.0 - tail) * widen, _MIN_Z)
    return lo, hi


def model_confidence(
    points: int, min_points: int, error_ema: float, kind: CounterKind
) -> float:
    """Confidence in the calibrated part of a count, 0..1.

    The recent whole-prompt error (a moving average), discounted while the
    model has fewer reports than ``min_points``.
    """
    if points == 0:
        return _LOCAL_CONFIDENCE[kind]
    return min(1.0, points / min_points) / (1.0 + 10.0 * error_ema)
