"""Plausibility: reports whose count cannot be the size of the prompt that was sent.

Some servers report a number that is not the prompt's size, and learning it
would poison every count after it. `Plausibility` compares each report with
what is already known before it is learned, and names what the server did:

- `UNCACHED_ONLY`: the count is below half of what the prompt's own prefix
  was reported at; or an extension is reported no larger than its prefix
  while the report's cache reads would make up the difference; or a prompt
  that starts like an earlier one (so a prompt-cache hit is possible), with
  no reported prefix, is reported below half of its expected size. The
  server counted only the tokens its prompt cache missed. An honest cache
  hit counts in full (``input_tokens`` includes ``cache_read``), so it never
  falls this low.
- `TRUNCATED`: the count stops at a ceiling while the prompt grows past it
  (Ollama's ``num_ctx``, vLLM's ``max_model_len``). Three reports of one
  conversation, each prompt extending the one before, that do not rise and
  stay within 15% of their maximum while the prompt grows; or three reports
  of any prompts within 3% of one count while each prompt is expected half
  as large again: these name the ceiling (the power of two just above, when
  within 15% of it), and later reports at it are rejected at once. A single
  report is named so when it is exactly a power of two (of at least 512)
  below its prompt's expected size, or the highest count yet just below
  one while it is half its prompt's expected size or no larger than its
  prefix.
- `SHRUNK_PREFIX`: the prompt extends one already reported, yet its count is
  no larger (every message costs at least its header, so an extension costs
  more): the server dropped part of the history.

The expected size is the known prefix (an exact fact) plus the local count
of the rest times a conservative ratio: 0.6 (the low end of what tokenizers
differ by) until reports show this model's own low quantile, capped at 1.
Thresholds leave room for what honest servers do: tokenizers counting
0.6-1.6x the local count, hidden preambles (they only add tokens),
prompt-cache hits (counted in full), and templates that drop earlier
reasoning from the history (so the local count of an anchored prompt's new
messages is never held against it, and an honest count always rises).

Not caught: a cache hit on only part of the prefix (another conversation's
system prompt) when the rest is new: the count is then larger than its
prefix and errs by the cached part. A report just below a context size,
before three of them name it, is learned.

A rejected report changes nothing learned: the caller rejects it before the
ledger or the regression sees it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

from langchain_tokencal._calibration.design import has_images
from langchain_tokencal._reasons import SHRUNK_PREFIX, TRUNCATED, UNCACHED_ONLY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal._features import FeatureBatch, ToolFeatures
    from langchain_tokencal._usage import TokenUsage

__all__ = ["Plausibility", "PlausibilityStats"]

# A report below this share of the prompt's expected size is not a tokenizer
# difference (the expected size already takes the lowest ratio the model has
# shown), while the cache misses of a growing conversation are 5-15% of it.
_FAR_BELOW: Final = 0.5
# The ratio (reported / local) assumed until enough reports were learned: the
# low end of what tokenizers differ by.
_PRIOR_RATIO: Final = 0.6
# Learned ratios: the window, how many make the ratio the model's own, the
# quantile taken (a low one: it must not call an honest report short), and the
# spread (high / low quantile) beyond which the learned ratio is not trusted
# above the prior.
_RATIO_WINDOW: Final = 64
_RATIO_MIN: Final = 3
_RATIO_SPREAD: Final = 1.5
# Reports of prompts this small say more about hidden preambles than ratios.
_RATIO_MIN_LOCAL: Final = 100
# A ceiling: reports in a row that make a plateau, the smallest ceiling named
# (context windows are at least this large: Ollama's num_ctx and vLLM's
# max_model_len are set so), the band below the ceiling a truncated report
# falls in (templates drop whole messages to fit; "tight" when they cut
# tokens), how much the prompt must grow meanwhile, and how far beyond its
# report a prompt must be expected ("short", "far beyond").
_RUN: Final = 3
_MIN_WINDOW: Final = 512
_BAND: Final = 0.85
_TIGHT: Final = 0.97
_GROWTH: Final = 0.1
_SHORT: Final = 1.1
_FAR_BEYOND: Final = 1.5
# How far above a ceiling a report still stops at it, and how far above it a
# report says the server's window grew.
_OVER: Final = 1.02
_ABOVE: Final = 1.05
# A count exactly at a power of two is a cut prompt when the prompt is
# expected this far beyond it.
_BEYOND: Final = 1.02
# Prompt starts remembered (cleared when full), and conversations followed
# (the oldest dropped).
_FIRSTS_KEPT: Final = 4096
_TALKS_KEPT: Final = 256


@dataclass(frozen=True, slots=True)
class PlausibilityStats:
    """What the plausibility checks have seen of a model's server.

    Attributes:
        ceiling: The count the server truncated prompts to, once seen (kept
            after the server stops truncating, for the health message).
        truncating: True while reports still stop at ``ceiling``.
        ratio: The low ratio of reported to local counts the checks use, or
            ``None`` until enough reports were learned.

    Example:
        ```python
        from langchain_tokencal import create_counter

        stats = create_counter("llama3").stats().plausibility
        assert stats.ceiling is None and not stats.truncating
        ```
    """

    ceiling: int | None = None
    truncating: bool = False
    ratio: float | None = None


class _Seen(NamedTuple):
    """One report as the ceiling checks remember it."""

    reported: int
    expected: float
    grows: bool
    """Its prompt extends the previous prompt of its conversation."""


_Key = tuple[int, int]
"""A prompt's start: its tool set and first message."""
_TalkKey = tuple[int, int, int]
"""A conversation: a prompt's tool set and first two messages."""


class Plausibility:
    """Checks each report of one model before it is learned.

    Not thread-safe on its own: `CalibratedCounter` serializes learning.

    Example:
        ```python
        from langchain_core.messages import HumanMessage

        from langchain_tokencal import create_counter

        counter = create_counter("llama3", provider="ollama")
        first = [HumanMessage("Tell me about the tides. " * 40)]
        assert counter.observe(first, 330) is None
        longer = [*first, HumanMessage("And the moon?")]
        assert counter.observe(longer, 40) == "uncached tokens only"
        ```
    """

    def __init__(self) -> None:
        """Check reports with nothing seen yet."""
        self._ratios: deque[float] = deque(maxlen=_RATIO_WINDOW)
        self._ratio = _PRIOR_RATIO
        self._learned_ratio: float | None = None
        # The last reports of any prompt, and of each conversation (with the
        # digests of its last prompt, to see the next one extend it).
        self._recent: deque[_Seen] = deque(maxlen=_RUN)
        self._talks: dict[_TalkKey, tuple[list[int], deque[_Seen]]] = {}
        self._max_seen = 0
        # Each prompt start seen, and the highest count learned for it: a
        # prompt that starts like an earlier one may hit a prompt cache, and
        # none of its reported prefixes counts more.
        self._firsts: dict[_Key, int] = {}
        self.ceiling: int | None = None
        self._truncating = False

    def stats(self) -> PlausibilityStats:
        """A snapshot for `ModelStats`."""
        return PlausibilityStats(self.ceiling, self._truncating, self._learned_ratio)

    def check(
        self,
        usage: TokenUsage,
        feats: FeatureBatch,
        tools_f: ToolFeatures,
        local_total: int,
        anchor: tuple[int, int] | None,
    ) -> str | None:
        """Why this report cannot be the prompt's size, or ``None`` to learn it.

        Args:
            usage: The report.
            feats: The prompt's message features.
            tools_f: The bound tool set's features.
            local_total: The prompt's whole local count (framing and tools
                included).
            anchor: The ledger's longest reported prefix of the prompt, as
                ``(messages, tokens)`` (`Ledger.anchor`).
        """
        digests = feats.digests
        reported = usage.input_tokens
        key = (tools_f.fingerprint, digests[0] if digests else 0)
        talk = self._talk((*key, digests[1] if len(digests) > 1 else 0))
        last, run = talk
        grows = len(digests) > len(last) and digests[: len(last)] == last
        talk[0][:] = digests
        ratio = self._ratio
        if self._plainly_fine(key, run, reported, local_total):
            # What a growing conversation reports: above every count its
            # prefixes can have, and above the last few reports.
            self._seen(_Seen(reported, ratio * local_total, grows), key, run)
            self._accept(key, reported, local_total)
            return None
        start, known = anchor if anchor is not None else (0, 0)
        cached = bool(usage.cache_read) or key in self._firsts
        # The expected size: the known prefix exactly, plus the rest's local
        # count at the conservative ratio.
        new_local = local_total if anchor is None else sum(feats.locals[start:])
        extends = anchor is not None and start < len(feats)
        seen = _Seen(reported, known + ratio * new_local, grows)
        why, plateau = self._verdict(
            usage, seen, run, known, known + new_local, extends=extends, cached=cached
        )
        if why is not None and new_local and has_images(feats.vector_sum(start)):
            # Media the local count cannot see: hold only the known part
            # against the report (only then: summing vectors is not free).
            seen = seen._replace(expected=float(known))
            why, plateau = self._verdict(
                usage, seen, run, known, known, extends=extends, cached=cached
            )
        self._seen(seen, key, run)
        if plateau is not None:
            self._truncating = True
            plateau = _window_of(plateau)
        if why == TRUNCATED:
            self.ceiling = max(plateau or reported, self.ceiling or 0)
        elif why is None:
            self._accept(key, reported, local_total)
        return why

    def _talk(self, key: _TalkKey) -> tuple[list[int], deque[_Seen]]:
        """The conversation a prompt belongs to (a new one if unknown)."""
        talks = self._talks
        talk = talks.get(key)
        if talk is None:
            if len(talks) >= _TALKS_KEPT:
                del talks[next(iter(talks))]
            talk = talks[key] = ([], deque(maxlen=_RUN))
        return talk

    def _plainly_fine(
        self, key: _Key, run: deque[_Seen], reported: int, local_total: int
    ) -> bool:
        """True when no check can fire, so the prompt's prefix need not be found.

        Every prefix reported here started like this prompt, so none was
        reported above the highest count learned for that start; a count
        above it (and above the last few reports, and not at a context size)
        is fine unless it is far below the prompt's local count.
        """
        top = self._firsts.get(key)
        return (
            top is not None
            and reported > top
            and not self._truncating
            and all(reported > s.reported for s in run)
            and all(reported > s.reported for s in self._recent)
            and reported >= _FAR_BELOW * self._ratio * local_total
            and not _near_window(reported)
        )

    def _seen(self, seen: _Seen, key: _Key, run: deque[_Seen]) -> None:
        """Remember a report for the checks of those after it."""
        self._recent.append(seen)
        run.append(seen)
        self._max_seen = max(self._max_seen, seen.reported)
        firsts = self._firsts
        if key not in firsts:
            if len(firsts) >= _FIRSTS_KEPT:
                firsts.clear()
            firsts[key] = 0

    def _verdict(  # noqa: PLR0911 - one return per finding
        self,
        usage: TokenUsage,
        seen: _Seen,
        run: deque[_Seen],
        known: int,
        local: float,
        *,
        extends: bool,
        cached: bool,
    ) -> tuple[str | None, int | None]:
        """The reason (or None), and a ceiling the report completes a plateau at.

        Args:
            usage: The report.
            seen: The report with its expected size.
            run: The last reports of its conversation.
            known: The tokens of its longest reported prefix (0: none).
            local: ``known`` plus the local count of the rest, unscaled.
            extends: The prompt extends that prefix by at least one message.
            cached: The prompt may have hit a prompt cache (it starts like an
                earlier one, or the report gives cache reads).
        """
        reported, expected = seen.reported, seen.expected
        if reported < _FAR_BELOW * known:
            # Below half of what its own prefix was reported at: no ceiling
            # sits there, only a cache.
            return UNCACHED_ONLY, None
        ceiling = self.ceiling
        if (
            self._truncating
            and ceiling is not None
            and _BAND * ceiling <= reported <= _OVER * ceiling
            and expected >= _SHORT * reported
        ):
            return TRUNCATED, None
        plateau = _plateau([*run, seen][-_RUN:], [*self._recent, seen][-_RUN:])
        if plateau is not None:
            return TRUNCATED, plateau
        if (
            reported >= _MIN_WINDOW
            and not reported & (reported - 1)
            and max(expected, local / _SHORT) >= _BEYOND * reported
        ):
            # Exactly a context size while the prompt is expected beyond it (or
            # its local count clearly is): a runner that cut its tokens to fit.
            # An honest count lands exactly there once in thousands.
            return TRUNCATED, None
        at_max = _near_window(reported) and reported >= _TIGHT * self._max_seen
        if extends and reported <= known:
            if at_max and expected >= _SHORT * reported:
                return TRUNCATED, None
            # A report that gives its cache reads beside an input that lacks
            # them still adds up to the prefix.
            hits = usage.cache_read and reported + usage.cache_read >= known
            return (UNCACHED_ONLY if hits else SHRUNK_PREFIX), None
        if reported < _FAR_BELOW * expected:
            if at_max:
                # At the highest count yet, just below a context size, while
                # the prompt is twice as large.
                return TRUNCATED, None
            if not known and cached:
                # Only a prompt that starts like an earlier one can hit a
                # cache; the local count of an anchored prompt's new messages
                # is no evidence (templates drop earlier reasoning).
                return UNCACHED_ONLY, None
        return None, None

    def _accept(self, key: _Key, reported: int, local_total: int) -> None:
        """Learn the ratio from a report that passed, and end a stale ceiling."""
        firsts = self._firsts
        firsts[key] = max(firsts.get(key, 0), reported)
        ceiling = self.ceiling
        if self._truncating and ceiling is not None and reported > _ABOVE * ceiling:
            self._truncating = False  # the window was raised
        if local_total < _RATIO_MIN_LOCAL:
            return
        ratios = self._ratios
        ratios.append(reported / local_total)
        if len(ratios) < _RATIO_MIN:
            return
        ordered = sorted(ratios)
        low = ordered[len(ordered) // 5]
        high = ordered[-1 - len(ordered) // 5]
        ratio = min(low, 1.0)
        if high > _RATIO_SPREAD * low:
            # Counts that vary this much by content are no guide above the
            # prior: keep the margin wide.
            ratio = min(ratio, _PRIOR_RATIO)
        self._learned_ratio = ratio
        self._ratio = ratio


def _near_window(count: int) -> bool:
    """True if ``count`` is just at or below a power of two of a context size."""
    window = 1 << max(count - 1, 1).bit_length()
    return window >= _MIN_WINDOW and count >= _TIGHT * window


def _window_of(ceiling: int) -> int:
    """The context size a plateau stopped below: a power of two just above it.

    Templates that drop whole messages to fit stop a little below the window;
    a plateau further below it is taken as it is.
    """
    window = 1 << max(ceiling - 1, 1).bit_length()
    return window if window >= _MIN_WINDOW and ceiling >= _BAND * window else ceiling


def _plateau(talk: Sequence[_Seen], recent: Sequence[_Seen]) -> int | None:
    """The ceiling the last `_RUN` reports stopped at, if they did.

    Either the last reports of one conversation, each prompt extending the one
    before, did not rise while the prompt grew past them (an honest extension
    always adds tokens), or the last reports of any prompts sit at one count
    while every prompt is far beyond it (long documents).
    """
    if len(talk) == _RUN:
        counts = [s.reported for s in talk]
        ceiling = max(counts)
        first, last = talk[0], talk[-1]
        if (
            ceiling >= _MIN_WINDOW
            and last.reported <= first.reported
            and min(counts) >= _BAND * ceiling
            and all(s.grows for s in talk[1:])
            and last.expected - first.expected >= _GROWTH * ceiling
            and last.expected >= _SHORT * last.reported
        ):
            return ceiling
    if len(recent) == _RUN:
        counts = [s.reported for s in recent]
        ceiling = max(counts)
        if (
            ceiling >= _MIN_WINDOW
            and recent[-1].reported <= recent[0].reported
            and min(counts) >= _TIGHT * ceiling
            and all(s.expected >= _FAR_BEYOND * s.reported for s in recent)
        ):
            return ceiling
    return None
