"""Calibration statistics of a model, and the tables they are shown in.

`ModelStats` is a frozen snapshot taken by `CalibratedCounter.stats`; the
tables flatten snapshots into rows (`stats_rows`), a pandas DataFrame
(`stats_frame`, the ``[pandas]`` extra) or the HTML Jupyter shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_tokencal._calibration.plausibility import PlausibilityStats

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from langchain_tokencal._cache import CacheStats
    from langchain_tokencal._calibration.ledger import LedgerStats
    from langchain_tokencal._counting import CounterInfo
    from langchain_tokencal._usage import TokenUsage

__all__ = ["ModelStats", "stats_frame", "stats_html", "stats_rows"]


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Calibration statistics of one model (a snapshot).

    Attributes:
        model: The model key.
        provider: The provider, when known.
        counter: The local counter's description.
        observations: Reports learned from.
        repeats: Reports of a prompt already known exactly.
        rejected: Reports not learned from, by reason.
        coefficients: The regression's residual coefficients by name.
        confidence: Confidence of a typical estimate, 0..1.
        local_error: Mean absolute relative error of the uncalibrated local
            count against the reports (before each was learned), or ``None``.
        calibrated_error: The same for the calibrated count.
        recent_error: Calibrated error over the last 10 reports.
        bias: Mean signed relative error of the calibrated count (negative:
            it under-counts).
        interval: Multiples ``(low, high)`` of a count's predictive sd that its
            interval spans around the estimated part (quantiles of recent
            standardized residuals, or a widened normal quantile before
            ``min_points`` of them).
        last_usage: The last usage reported for this model.
        memo: Statistics of the local features memo.
        ledger: Statistics of the learned-count maps.
        plausibility: What the plausibility checks saw of the server (the
            context ceiling it truncates to, the ratio the checks use).
        learned: Names of the coefficients some report informed; the others
            are still their prior (e.g. a tool preamble with no tools seen).
        baseline: The handler's ``baseline=`` counter, if one is measured.
        baseline_error: Its mean absolute relative error against the same
            reports (the newest 500), or ``None``.
        baseline_bias: Its mean signed relative error, or ``None``.

    Example:
        ```python
        from langchain_tokencal import create_counter

        stats = create_counter("claude-sonnet-4-5").stats()
        assert stats.observations == 0
        ```
    """

    model: str
    provider: str | None
    counter: CounterInfo
    observations: int
    repeats: int
    rejected: Mapping[str, int]
    coefficients: Mapping[str, float]
    confidence: float
    local_error: float | None
    calibrated_error: float | None
    recent_error: float | None
    bias: float | None
    interval: tuple[float, float]
    last_usage: TokenUsage | None
    memo: CacheStats
    ledger: LedgerStats
    errors: tuple[tuple[float, float], ...] = field(default=(), repr=False)
    plausibility: PlausibilityStats = field(default_factory=PlausibilityStats)
    learned: frozenset[str] = frozenset()
    baseline: str | None = None
    baseline_error: float | None = None
    baseline_bias: float | None = None

    def _repr_html_(self) -> str:
        return stats_html({self.model: self})

    def __str__(self) -> str:
        """A few readable lines: what counts, how well, and what was learned.

        Errors are mean absolute relative errors in percent; coefficients are
        tokens (framing, per message, per tool call) or extra tokens per local
        token (the rates), beyond the local count; near-zero ones are left out.
        """
        rejected = sum(self.rejected.values())
        lines = [
            f"{self.model} ({self.provider or 'provider unknown'}): "
            f"{self.counter.kind} local counter"
            + (f" [{self.counter.encoding}]" if self.counter.encoding else "")
            + (" (fallback)" if self.counter.fallback else ""),
            f"  reports {self.observations}, repeats {self.repeats}, "
            f"rejected {rejected}"
            + (
                " (" + ", ".join(f"{k}: {v}" for k, v in self.rejected.items()) + ")"
                if rejected
                else ""
            ),
            (
                f"  error: local {_pct_text(self.local_error)}, calibrated "
                f"{_pct_text(self.calibrated_error)}, last 10 "
                f"{_pct_text(self.recent_error)}; confidence {self.confidence:.2f}"
            ),
        ]
        if self.baseline_error is not None:
            lines.append(
                f"  baseline {self.baseline}: error {_pct_text(self.baseline_error)}, "
                f"bias {_pct_text(self.baseline_bias)}"
            )
        shown = [
            (k, v)
            for k, v in self.coefficients.items()
            if k in self.learned and abs(v) >= _SHOWN
        ]
        if shown:
            lines.append(
                "  learned beyond the local count: "
                + ", ".join(f"{k} {v:+.3g}" for k, v in shown)
            )
        elif not self.observations:
            lines.append("  nothing learned yet: counts use the prior")
        return "\n".join(lines)


# Coefficients closer to zero than this are left out of `ModelStats.__str__`.
_SHOWN = 1e-3


def _pct_text(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 3)


def stats_rows(stats: Mapping[str, ModelStats]) -> list[dict[str, Any]]:
    """One flat dict per model: the columns of `stats_frame` and `stats_html`.

    Example:
        ```python
        from langchain_tokencal._calibration import stats_rows

        assert stats_rows({}) == []
        ```
    """
    rows = []
    for s in stats.values():
        usage = s.last_usage
        rows.append(
            {
                "model": s.model,
                "provider": s.provider,
                "counter": s.counter.kind
                + (" (fallback)" if s.counter.fallback else ""),
                "reports": s.observations,
                "repeats": s.repeats,
                "rejected": sum(s.rejected.values()),
                "local_error_%": _pct(s.local_error),
                "calibrated_error_%": _pct(s.calibrated_error),
                "recent_error_%": _pct(s.recent_error),
                "bias_%": _pct(s.bias),
                "baseline_error_%": _pct(s.baseline_error),
                "confidence": s.confidence,
                "memo_hit_%": _pct(s.memo.hit_rate),
                "last_input_tokens": usage.input_tokens if usage else None,
                **{f"coef_{k}": round(v, 4) for k, v in s.coefficients.items()},
            }
        )
    return rows


def stats_frame(stats: Mapping[str, ModelStats]) -> pd.DataFrame:
    """The statistics as a pandas DataFrame indexed by model.

    Raises:
        ImportError: When pandas is not installed, with the install line.
    """
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        msg = "stats_frame needs pandas: pip install 'langchain-tokencal[pandas]'"
        raise ImportError(msg) from err
    frame = pd.DataFrame(stats_rows(stats))
    return frame.set_index("model") if not frame.empty else frame


_HTML_COLUMNS = (
    "model",
    "counter",
    "reports",
    "rejected",
    "local_error_%",
    "calibrated_error_%",
    "recent_error_%",
    "confidence",
    "memo_hit_%",
)


def stats_html(stats: Mapping[str, ModelStats]) -> str:
    """The statistics as an HTML table (what Jupyter shows for a handler)."""
    rows = stats_rows(stats)
    if not rows:
        return "<p><b>TokenCalibrationHandler</b>: no model seen yet.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _HTML_COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>"
            for c in _HTML_COLUMNS
        )
        + "</tr>"
        for r in rows
    )
    return (
        "<table><caption>TokenCalibrationHandler</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
