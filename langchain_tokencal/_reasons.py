"""Why a report was not learned: the one list of rejection reasons.

Each reason is a short lowercase phrase, kept as given in ``reject`` events,
`ModelStats.rejected` and health messages, so logs written by older versions
read back unchanged. Compare against these names, never against literals.

Example:
    ```python
    from langchain_tokencal._reasons import NO_USAGE, REASONS

    assert NO_USAGE in REASONS
    ```
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "BACKLOG",
    "CACHE_HIT",
    "IMPLAUSIBLE_RATIO",
    "INFLATED_STREAM",
    "INTERNAL_ERROR",
    "MALFORMED_USAGE",
    "MODEL_ERROR",
    "MULTIMODAL",
    "NEVER_ENDED",
    "NO_USAGE",
    "ODD_CHUNK",
    "REASONS",
    "SHRUNK_PREFIX",
    "STREAM_WITHOUT_INPUT",
    "TRUNCATED",
    "UNCACHED_ONLY",
    "Reason",
]

Reason = Literal[
    "no usage",
    "llm cache hit",
    "inflated streamed usage",
    "model error",
    "internal error",
    "implausible ratio",
    "multimodal: not calibrated",
    "no larger than its reported prefix",
    "uncached tokens only",
    "truncated context",
    "stream without input tokens",
    "odd streamed usage",
    "learning backlog full",
    "never ended",
    "malformed usage",
]
"""A reason a report was rejected (a run that taught nothing)."""

NO_USAGE: Final[Reason] = "no usage"
"""The response carried no usable counts (no usage, or zeros)."""
CACHE_HIT: Final[Reason] = "llm cache hit"
"""An LLM cache answered: the original usage, at no cost."""
INFLATED_STREAM: Final[Reason] = "inflated streamed usage"
"""LangChain summed cumulative stream chunks into an inflated total."""
MODEL_ERROR: Final[Reason] = "model error"
"""The call raised; nothing was reported."""
INTERNAL_ERROR: Final[Reason] = "internal error"
"""Learning from the report failed; the report was dropped, nothing else."""
IMPLAUSIBLE_RATIO: Final[Reason] = "implausible ratio"
"""The reported count is far outside what the prompt's local count allows."""
MULTIMODAL: Final[Reason] = "multimodal: not calibrated"
"""Media blocks whose cost the local count cannot see."""
SHRUNK_PREFIX: Final[Reason] = "no larger than its reported prefix"
"""The prompt extends one already reported, yet was reported no larger."""
UNCACHED_ONLY: Final[Reason] = "uncached tokens only"
"""Far below the prompt's known or local count: the server left its prompt
cache hits out of ``input_tokens``."""
TRUNCATED: Final[Reason] = "truncated context"
"""The count stayed at a ceiling while the prompt grew beyond it: the server
cut the prompt to its context window."""
STREAM_WITHOUT_INPUT: Final[Reason] = "stream without input tokens"
"""A stream reported output tokens with ``input_tokens`` 0 (an output-only
usage delta)."""
ODD_CHUNK: Final[Reason] = "odd streamed usage"
"""A streamed chunk's usage was not a mapping of non-negative integer counts;
the chunk was ignored and the run billed from the rest."""

BACKLOG: Final[Reason] = "learning backlog full"
"""Reports arrived faster than anything learned them; the oldest waiting
were dropped (billed, not learned from)."""

MALFORMED_USAGE: Final[Reason] = "malformed usage"
"""The response carried usage that cannot be true: a negative count, a count
that is not an integer, parts above their whole (`explain_usage` says which);
a client, proxy or server mangled it. Billed as nothing, not learned from."""

NEVER_ENDED: Final[Reason] = "never ended"
"""A run started and never reported an end or an error before ``pending_ttl``
(a cancelled ``ainvoke``, a crashed worker) or was pushed out by
``pending_size`` newer runs: nothing to bill or learn."""

REASONS: Final[frozenset[str]] = frozenset(get_args(Reason))
"""Every known reason."""
