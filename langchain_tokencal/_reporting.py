"""Health checks: what a handler's statistics say a user should look at.

The tables of statistics (`stats_rows`, `stats_frame`, `stats_html`) live with
`ModelStats` in the calibration layer and are re-exported here.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tokencal._calibration import ModelStats

from langchain_tokencal._calibration import stats_frame, stats_html, stats_rows
from langchain_tokencal._reasons import (
    IMPLAUSIBLE_RATIO,
    MALFORMED_USAGE,
    NO_USAGE,
    SHRUNK_PREFIX,
    STREAM_WITHOUT_INPUT,
    TRUNCATED,
    UNCACHED_ONLY,
)

logger = logging.getLogger(__name__)

__all__ = [
    "HealthIssue",
    "HealthReport",
    "check_health",
    "stats_frame",
    "stats_html",
    "stats_rows",
]

# Thresholds of the health checks; each names what a user should look at.
_LOW_CONFIDENCE = 0.5
_LOW_HIT_RATE = 0.5
_MIN_LOOKUPS = 1000
_RISING_FACTOR = 2.0
_RISING_FLOOR = 0.02
_REJECTED_SHARE = 0.2
# Runs without usage beside learned ones, past this share of all: a warning.
_NO_USAGE_SHARE = 0.2

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

    @property
    def ok(self) -> bool:
        """True when no issue is a warning."""
        return all(i.severity != "warning" for i in self.issues)

    def __str__(self) -> str:
        """One line per issue, then the verdict."""
        lines = [
            f"{i.severity}: {i.model}: {i.check}: {i.message}" for i in self.issues
        ]
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
        if not self.issues:
            return f"<p><b>HealthReport</b>: {verdict}</p>"
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
            f"</tr></thead><tbody>{rows}</tbody></table>"
        )


def _issues_of(s: ModelStats, min_points: int) -> list[HealthIssue]:
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
            "set TIKTOKEN_CACHE_DIR to a folder holding the tiktoken encodings.",
        )
    out.extend(_usage_issues(s))
    if 0 < s.observations < min_points and s.confidence < _LOW_CONFIDENCE:
        add(
            "few_reports",
            "info",
            f"confidence {s.confidence:.2f} after {s.observations} report(s): "
            f"counts lean on the priors until {min_points} reports.",
        )
    if s.observations >= min_points and s.confidence < _LOW_CONFIDENCE:
        add(
            "low_confidence",
            "warning",
            f"confidence {s.confidence:.2f} after {s.observations} reports; "
            "prefer conservative counters for this model.",
        )
    memo = s.memo
    lookups = memo.hits + memo.misses
    if lookups >= _MIN_LOOKUPS and memo.hit_rate < _LOW_HIT_RATE:
        add(
            "low_cache_hit_rate",
            "info",
            f"memo hit rate {memo.hit_rate:.0%} over {lookups} lookups; raise "
            "memo_size if histories are long.",
        )
    if (
        s.recent_error is not None
        and s.calibrated_error is not None
        and s.recent_error > max(_RISING_FACTOR * s.calibrated_error, _RISING_FLOOR)
    ):
        add(
            "rising_error",
            "warning",
            f"recent error {s.recent_error:.1%} against {s.calibrated_error:.1%} "
            "overall; the provider may have changed its tokenizer or template.",
        )
    out.extend(_server_issues(s))
    total = rejected + s.observations
    if total and rejected - no_usage > _REJECTED_SHARE * total:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(s.rejected.items()))
        add(
            "many_rejected",
            "info",
            f"{rejected} of {total} reports rejected ({reasons}).",
        )
    return out


def _usage_issues(s: ModelStats) -> list[HealthIssue]:
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
    elif no_usage > _NO_USAGE_SHARE * seen:
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
    stats: Mapping[str, ModelStats], *, min_points: int = 5, log: bool = True
) -> HealthReport:
    """Check per-model statistics for conditions that degrade counts.

    Args:
        stats: Per-model statistics, as `TokenCalibrationHandler.stats` returns.
        min_points: Reports needed before confidence is judged.
        log: Log each issue (warnings as ``WARNING``, the rest as ``INFO``).

    Example:
        ```python
        from langchain_tokencal._reporting import check_health

        assert check_health({}).ok
        ```
    """
    issues: list[HealthIssue] = []
    for s in stats.values():
        issues.extend(_issues_of(s, min_points))
    if log:
        for issue in issues:
            level = logging.WARNING if issue.severity == "warning" else logging.INFO
            logger.log(level, "tokencal health: %s: %s", issue.model, issue.message)
    return HealthReport(tuple(issues))
