"""Health checks: what a handler's statistics say a user should look at.

The tables of statistics (`stats_rows`, `stats_frame`, `stats_html`) live with
`ModelStats` in the calibration layer and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langchain_tokencal._calibration import ModelStats

from langchain_tokencal._calibration import (
    plot_calibration,
    stats_frame,
    stats_html,
    stats_rows,
)
from langchain_tokencal._reasons import (
    IMPLAUSIBLE_RATIO,
    MALFORMED_USAGE,
    NO_USAGE,
    SHRUNK_PREFIX,
    STREAM_WITHOUT_INPUT,
    TRUNCATED,
    UNCACHED_ONLY,
)
from langchain_tokencal.config import check_names
from langchain_tokencal.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "HealthIssue",
    "HealthReport",
    "HealthThresholds",
    "check_health",
    "plot_calibration",
    "stats_frame",
    "stats_html",
    "stats_rows",
]


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """The limits `check_health` judges a model by; each names its check.

    Attributes:
        low_confidence: Confidence below which a model with ``min_points``
            reports or more is ``low_confidence`` (a warning), and one with
            fewer is ``few_reports`` (info). In ``[0, 1]``.
        rising_factor: ``rising_error`` warns when the recent error exceeds
            this many times the overall calibrated error...
        rising_floor: ...and this absolute error (0.02 is 2%), so that a
            model at 0.1% is not alarmed by 0.3%.
        no_usage_share: Share of runs without usage, beside learned ones,
            past which ``partial_no_usage`` warns.
        rejected_share: Share of reports rejected for other reasons than
            missing usage past which ``many_rejected`` is noted.
        low_hit_rate: Memo hit rate below which ``low_cache_hit_rate`` is
            noted...
        min_lookups: ...once the memo has seen this many lookups.
        min_points: Reports before confidence is judged; ``None`` takes the
            handler's ``min_points`` setting.

    Raises:
        ConfigError: On a value out of range (naming the threshold).

    Example:
        ```python
        from langchain_tokencal import HealthThresholds, TokenCalibrationHandler

        strict = HealthThresholds(low_confidence=0.8, no_usage_share=0.05)
        handler = TokenCalibrationHandler(health=strict)
        assert handler.health().thresholds.low_confidence == 0.8
        ```
    """

    low_confidence: float = 0.5
    rising_factor: float = 2.0
    rising_floor: float = 0.02
    no_usage_share: float = 0.2
    rejected_share: float = 0.2
    low_hit_rate: float = 0.5
    min_lookups: int = 1000
    min_points: int | None = None

    def __post_init__(self) -> None:
        """Validate every threshold, naming the one that is wrong."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in {"min_lookups", "min_points"}:
                if value is None and f.name == "min_points":
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    msg = (
                        f"health threshold {f.name} must be a positive integer, "
                        f"got {value!r}."
                    )
                    raise ConfigError(msg)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"health threshold {f.name} must be a number, got {value!r}."
                raise ConfigError(msg)
            if f.name == "rising_factor":
                ok = value >= 1.0
                bounds = ">= 1"
            else:
                ok = 0.0 <= value <= 1.0
                bounds = "in [0, 1]"
            if not ok or not math.isfinite(value):
                msg = f"health threshold {f.name} must be {bounds}, got {value!r}."
                raise ConfigError(msg)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> HealthThresholds:
        """Thresholds from a dict (a ``[tool.tokencal.health]`` table, JSON).

        Raises:
            ConfigError: On an unknown name (listing the valid ones) or a bad
                value.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        check_names(mapping, names, what="health threshold", plural="ones")
        return cls(**dict(mapping))

    @classmethod
    def coerce(cls, value: object) -> HealthThresholds:
        """``value`` as thresholds: itself, from a mapping, or the defaults.

        Raises:
            ConfigError: For anything else, or a mapping `from_mapping` refuses.
        """
        if value is None:
            return cls()
        if isinstance(value, HealthThresholds):
            return value
        if isinstance(value, Mapping):
            return cls.from_mapping(value)
        kind = type(value).__name__
        msg = f"health= takes HealthThresholds or a mapping, got {kind}."
        raise ConfigError(msg)

    def __str__(self) -> str:
        """The thresholds as one line, ``name value`` pairs."""
        return ", ".join(
            f"{f.name} {getattr(self, f.name):g}"
            if isinstance(getattr(self, f.name), float)
            else f"{f.name} {getattr(self, f.name)}"
            for f in dataclasses.fields(self)
        )


Severity = Literal["info", "warning"]


@dataclass(frozen=True, slots=True)
class HealthIssue:
    """One finding of `check_health`.

    Attributes:
        model: The model it concerns.
        check: The check's name (``"low_confidence"``, ``"no_usage"``...).
        severity: ``"warning"`` for what degrades counts, else ``"info"``.
        message: What was seen and what to do about it.
    """

    model: str
    check: str
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of `check_health`: ``ok`` when no warning was found.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler

        report = TokenCalibrationHandler().health()
        assert report.ok and not report.issues
        ```
    """

    issues: tuple[HealthIssue, ...]
    thresholds: HealthThresholds = dataclasses.field(default_factory=HealthThresholds)

    @property
    def ok(self) -> bool:
        """True when no issue is a warning."""
        return all(i.severity != "warning" for i in self.issues)

    def __str__(self) -> str:
        """One line per issue, the thresholds used, then the verdict."""
        lines = [
            f"{i.severity}: {i.model}: {i.check}: {i.message}" for i in self.issues
        ]
        lines.append(f"thresholds: {self.thresholds}")
        warnings = sum(i.severity == "warning" for i in self.issues)
        lines.append(
            "healthy: no warning"
            + (f", {len(self.issues)} note(s)" if self.issues else "")
            if self.ok
            else f"unhealthy: {warnings} warning(s)"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """What Jupyter shows: the verdict, then a table of the issues."""
        verdict = html.escape(str(self).splitlines()[-1])
        used = f"<small>thresholds: {html.escape(str(self.thresholds))}</small>"
        if not self.issues:
            return f"<p><b>HealthReport</b>: {verdict}<br>{used}</p>"
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(v)}</td>"
                for v in (i.severity, i.model, i.check, i.message)
            )
            + "</tr>"
            for i in self.issues
        )
        return (
            f"<table><caption>HealthReport: {verdict}</caption><thead><tr>"
            "<th>severity</th><th>model</th><th>check</th><th>message</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>{used}"
        )


def _issues_of(s: ModelStats, t: HealthThresholds) -> list[HealthIssue]:
    out: list[HealthIssue] = []

    def add(check: str, severity: Severity, message: str) -> None:
        out.append(HealthIssue(s.model, check, severity, message))

    rejected = sum(s.rejected.values())
    no_usage = s.rejected.get(NO_USAGE, 0)
    if s.counter.fallback:
        add(
            "fallback_counter",
            "warning",
            f"local counting fell back to character classes ({s.counter.reason}); "
            "`tokencal encodings` shows where tiktoken looks for its files, and "
            "`tokencal encodings --install` writes them offline.",
        )
    out.extend(_usage_issues(s, t))
    min_points = t.min_points or 1
    if 0 < s.observations < min_points and s.confidence < t.low_confidence:
        add(
            "few_reports",
            "info",
            f"confidence {s.confidence:.2f} after {s.observations} report(s): "
            f"counts lean on the priors until {min_points} reports.",
        )
    if s.observations >= min_points and s.confidence < t.low_confidence:
        add(
            "low_confidence",
            "warning",
            f"confidence {s.confidence:.2f} after {s.observations} reports; "
            "prefer conservative counters for this model.",
        )
    memo = s.memo
    lookups = memo.hits + memo.misses
    if lookups >= t.min_lookups and memo.hit_rate < t.low_hit_rate:
        add(
            "low_cache_hit_rate",
            "info",
            f"memo hit rate {memo.hit_rate:.0%} over {lookups} lookups; raise "
            "memo_size if histories are long.",
        )
    if (
        s.recent_error is not None
        and s.calibrated_error is not None
        and s.recent_error > max(t.rising_factor * s.calibrated_error, t.rising_floor)
    ):
        add(
            "rising_error",
            "warning",
            f"recent error {s.recent_error:.1%} against {s.calibrated_error:.1%} "
            "overall; the provider may have changed its tokenizer or template.",
        )
    out.extend(_server_issues(s))
    total = rejected + s.observations
    if total and rejected - no_usage > t.rejected_share * total:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(s.rejected.items()))
        add(
            "many_rejected",
            "info",
            f"{rejected} of {total} reports rejected ({reasons}).",
        )
    return out


def _usage_issues(s: ModelStats, t: HealthThresholds) -> list[HealthIssue]:
    """Runs whose usage was missing or could not be true."""
    out = []
    no_usage = s.rejected.get(NO_USAGE, 0)
    seen = no_usage + s.observations
    if no_usage and not s.observations:
        out.append(
            HealthIssue(
                s.model,
                "no_usage",
                "warning",
                f"{no_usage} run(s) reported no usage, so nothing was learned; "
                "enable usage reporting (e.g. stream_usage=True for streaming).",
            )
        )
    elif no_usage > t.no_usage_share * seen:
        out.append(
            HealthIssue(
                s.model,
                "partial_no_usage",
                "warning",
                f"{no_usage} of {seen} runs reported no usage (a streaming call "
                "without stream_usage=True, a client that drops it): they are "
                "neither billed nor learned from.",
            )
        )
    malformed = s.rejected.get(MALFORMED_USAGE, 0)
    if malformed:
        out.append(
            HealthIssue(
                s.model,
                "malformed_usage",
                "warning",
                f"{malformed} run(s) reported usage that cannot be true (a "
                "negative count, one that is not an integer, parts above their "
                "whole): a client, proxy or server mangles it; "
                "explain_usage(response) says how.",
            )
        )
    return out


def _server_issues(s: ModelStats) -> list[HealthIssue]:
    """What the server does to its counts, from the reports rejected for it."""
    out = []
    rejected = s.rejected
    n = rejected.get(TRUNCATED, 0)
    if n:
        ceiling = s.plausibility.ceiling
        where = f"near {ceiling:,} tokens" if ceiling else "to its context window"
        out.append(
            HealthIssue(
                s.model,
                "truncated_context",
                "warning",
                f"the server truncates prompts {where}: {n} report(s) stayed at "
                "that count while the prompt grew beyond it, and were not learned; "
                "raise num_ctx (Ollama) or max_model_len (vLLM), or trim prompts "
                "below it.",
            )
        )
    n = rejected.get(UNCACHED_ONLY, 0)
    if n:
        tiny = rejected.get(IMPLAUSIBLE_RATIO, 0)
        more = (
            f" (and {tiny} more below 5% of it, as an implausible ratio)"
            if tiny
            else ""
        )
        out.append(
            HealthIssue(
                s.model,
                "uncached_only",
                "warning",
                f"the server reports only uncached tokens: {n} report(s) far "
                f"below the prompt's known or local size were not learned{more}; "
                "its prompt-cache hits are left out of input_tokens (as an Ollama "
                "release did): upgrade the server or turn its prompt cache off.",
            )
        )
    n = rejected.get(SHRUNK_PREFIX, 0)
    if n:
        out.append(
            HealthIssue(
                s.model,
                "shrunk_prefix",
                "warning",
                f"{n} report(s) counted a prompt no larger than the count already "
                "reported for its beginning, and were not learned: the server "
                "drops or stops counting part of the history (a context limit, a "
                "prompt cache, a template that strips earlier turns).",
            )
        )
    n = rejected.get(STREAM_WITHOUT_INPUT, 0)
    if n:
        out.append(
            HealthIssue(
                s.model,
                "stream_without_input",
                "warning",
                f"{n} streamed run(s) reported output tokens with input_tokens 0, "
                "so nothing was learned from them: the stream's usage names only "
                "the reply (an Anthropic-compatible server sending an output-only "
                "message_delta), and stream_usage is already on. Counts learn "
                "from invoke() calls, or from a server whose stream reports "
                "input_tokens.",
            )
        )
    return out


def check_health(
    stats: Mapping[str, ModelStats],
    *,
    min_points: int = 5,
    thresholds: HealthThresholds | Mapping[str, Any] | None = None,
    log: bool = True,
) -> HealthReport:
    """Check per-model statistics for conditions that degrade counts.

    Args:
        stats: Per-model statistics, as `TokenCalibrationHandler.stats` returns.
        min_points: Reports needed before confidence is judged, unless the
            thresholds set ``min_points``.
        thresholds: The limits of the checks (`HealthThresholds`, a mapping
            of them, or ``None`` for the defaults); the report lists them.
        log: Log each issue (warnings as ``WARNING``, the rest as ``INFO``).

    Example:
        ```python
        from langchain_tokencal._reporting import check_health

        assert check_health({}).ok
        ```
    """
    used = HealthThresholds.coerce(thresholds)
    if used.min_points is None:
        used = dataclasses.replace(used, min_points=min_points)
    issues: list[HealthIssue] = []
    for s in stats.values():
        issues.extend(_issues_of(s, used))
    if log:
        for issue in issues:
            level = logging.WARNING if issue.severity == "warning" else logging.INFO
            logger.log(level, "tokencal health: %s: %s", issue.model, issue.message)
    return HealthReport(tuple(issues), used)
