"""Calibrated counting for one model: local features + ledger + regression.

A count is made as DESIGN.md describes:

- a prompt reported before is answered with its report (``"exact"``);
- otherwise the longest reported prefix is the anchor, or, with none, the
  tool set's learned base cost (else the calibrated framing and tool cost);
- each remaining message costs its learned cost when the ledger has one, or
  its calibrated estimate ``local + coefficients . features``.

Learning is deferred: the callback hands over an `Observation` in O(1), and
the work (features of new messages, ledger updates, the regression solve)
runs on the next count, `flush()` or `stats()`, outside the model call.
"""

# NB: no ``from __future__ import annotations`` here: ``trim_messages`` reads
# the evaluated annotation of a counter's first parameter.

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from langchain_core.messages import AIMessage, BaseMessage

from langchain_tokencal._cache import CacheStats
from langchain_tokencal._calibration.ledger import Ledger, LedgerStats, prefix_hashes
from langchain_tokencal._calibration.regression import (
    COEFFICIENT_NAMES,
    Calibrator,
    Prior,
)
from langchain_tokencal._counting import (
    CounterInfo,
    LocalCounter,
    as_messages,
    local_counter,
)
from langchain_tokencal._features import (
    N_FEATURES,
    FeatureBatch,
    MessageFeatures,
    ToolFeatures,
)
from langchain_tokencal._providers import (
    canonical,
    canonical_label,
    guess_provider,
    unknown_provider_message,
)
from langchain_tokencal._reasons import (
    IMPLAUSIBLE_RATIO,
    INTERNAL_ERROR,
    MULTIMODAL,
    NO_USAGE,
)
from langchain_tokencal._usage import TokenUsage
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import UnknownProviderError
from langchain_tokencal.events import LearnEvent

logger = logging.getLogger(__name__)

__all__ = [
    "CalibratedCounter",
    "ModelStats",
    "Observation",
    "ReplyParts",
    "Source",
    "TokenEstimate",
    "create_counter",
]

Source = Literal["exact", "anchored", "calibrated", "local", "fallback"]

# Relative interval of the unknown part before a model has residuals of its own.
_PRIOR_INTERVAL: Mapping[str, tuple[float, float]] = {
    "exact": (-0.01, 0.01),
    "approximate": (-0.25, 0.35),
    "fallback": (-0.45, 0.8),
}
# Confidence of an uncalibrated local count, by counter kind.
_LOCAL_CONFIDENCE: Mapping[str, float] = {
    "exact": 0.95,
    "approximate": 0.2,
    "fallback": 0.0,
}
# A report further than this from the local count is garbage, not a tokenizer
# difference (hidden preambles make ratios of 10x+ on tiny prompts legitimate).
_MAX_RATIO = 50.0
_MIN_RATIO = 0.05
# Tokens added to the unknown part when residuals are made relative to it.
_RESIDUAL_FLOOR = 32.0
# Recent residuals behind the interval: old ones describe an earlier fit.
_RESIDUAL_WINDOW = 200
# Weight of the newest report in the moving average of the calibrated error.
_EMA_ALPHA = 0.3
# The reply-cost correction: the median of this many recent leftovers, each
# clipped (tokens), taken only when the other new messages are estimated at no
# more than _REPLY_SIGNAL tokens (so their own error stays small).
_REPLY_WINDOW = 51
_REPLY_CLIP = 16.0
_REPLY_SIGNAL = 64.0
# Reply digests remembered as completion-derived (cleared when full).
_REPLIES_KEPT = 4096
# Observations queued before a callback drains the queue itself.
_DRAIN_AT = 64


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


class Observation(NamedTuple):
    """One reported call, handed from a callback to a counter.

    The messages are the caller's own objects, held only until the next count
    or flush processes the observation; nothing else is kept. A named tuple:
    one is built inside every model call, where a frozen dataclass costs more.
    """

    messages: Sequence[BaseMessage]
    tools: Sequence[Any] | None
    usage: TokenUsage
    reply: "BaseMessage | ReplyParts | None" = None


class _Repeat(NamedTuple):
    """A prompt just learned exactly, and the error record a repeat gets."""

    messages: Sequence[BaseMessage]
    tools: Sequence[Any] | None
    reported: int
    error: tuple[float, ...]


class ReplyParts(NamedTuple):
    """What a reply adds to the next prompt, copied out of a model's result."""

    content: str | list[Any]
    tool_calls: list[Any]

    def message(self) -> AIMessage:
        """The reply as the message the next prompt will hold."""
        return AIMessage(content=self.content, tool_calls=self.tool_calls)


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
        interval: Relative interval ``(low, high)`` applied to unknown tokens.
        last_usage: The last usage reported for this model.
        memo: Statistics of the local features memo.
        ledger: Statistics of the learned-count maps.

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

    def _repr_html_(self) -> str:
        from langchain_tokencal._reporting import stats_html  # noqa: PLC0415

        return stats_html({self.model: self})


def _kind(info: CounterInfo) -> str:
    if info.kind == "exact" and not info.fallback:
        return "exact"
    return "fallback" if info.encoding is None else "approximate"


def _quantile(ordered: Sequence[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class CalibratedCounter:
    """Counts prompt tokens for one model, learning from reported usage.

    Usable directly as ``trim_messages(token_counter=counter)``. Thread-safe:
    counting and learning serialize on one lock; `submit` is lock-free.

    Args:
        model: The model name, as configured (``ls_model_name``).
        provider: The provider (``ls_provider``); picks the local counter.
        config: Cache sizes, windows and interval coverage.
        local: A local counter to use instead of `local_counter`'s choice.
        clock: Monotonic clock for the caches, injectable for tests.

    Example:
        ```python
        from langchain_core.messages import AIMessage, HumanMessage

        from langchain_tokencal import create_counter

        counter = create_counter("my-model", provider="anthropic")
        history = [HumanMessage("What is 2 + 2?")]
        counter.observe(history, 19)
        assert counter(history) == 19
        history += [AIMessage("4"), HumanMessage("And 3 + 3?")]
        assert counter.estimate(history).source == "anchored"
        ```
    """

    def __init__(
        self,
        model: str,
        provider: str | None = None,
        *,
        config: CounterConfig | None = None,
        local: LocalCounter | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Create a counter that knows nothing yet."""
        self.config = config or CounterConfig()
        self.model = model
        # LangChain's ls_provider strings are open-ended: map known aliases
        # ("azure" -> "openai"), keep the rest as given.
        self.provider_guessed = not provider
        self.provider = (canonical_label(provider) if provider else None) or (
            guess_provider(model)
        )
        # The local counter is chosen by the name as given: "xai" bills like
        # OpenAI but is not counted with OpenAI's tokenizer.
        self.local = local or local_counter(
            model, provider or self.provider, memo_size=self.config.memo_size
        )
        self._kind = _kind(self.local.info)
        prior = (
            Prior.exact() if self._kind == "exact" else Prior.approximate(self.provider)
        )
        self._calibrator = Calibrator(prior, window=self.config.max_points)
        self._ledger = Ledger(
            self.config.cache_size, self.config.cache_ttl, clock=clock
        )
        self._lock = threading.RLock()
        self._inbox: deque[Observation] = deque()
        # Per-digest costs for counting: (learned cost, True) from the ledger or
        # (calibrated estimate, False). Cleared whenever anything is learned.
        # Each message's cost by digest, and whether it was learned. Learned
        # entries stay until a report changes that digest's cost; estimates
        # (listed in _estimated) until the coefficients change.
        self._costs: dict[int, tuple[float, bool]] = {}
        self._estimated: list[int] = []
        self._costs_at = 0.0
        self._residuals: deque[float] = deque(
            maxlen=min(self.config.max_points, _RESIDUAL_WINDOW)
        )
        self._errors: deque[tuple[float, float]] = deque(maxlen=self.config.max_points)
        self._rejected: dict[str, int] = {}
        # Events learned here and not yet handed to a store; see take_events.
        self._outbox: list[LearnEvent] = []
        self._unpublished_rejects: dict[str, int] = {}
        self.origin = ""
        # Called (under the lock, with no I/O allowed) with newly learned events.
        self.listener: Callable[[list[LearnEvent]], None] | None = None
        self._repeats = 0
        # Reply costs taken from completion tokens (digests), and the learned
        # correction of those costs (see _learn_reply_bias).
        self._replies: set[int] = set()
        self._reply_digests: dict[int, int] = {}
        self._reply_adjust = 0.0
        self._leftovers: deque[float] = deque(maxlen=_REPLY_WINDOW)
        # Start pessimistic: 10% error until reports say otherwise.
        self._error_ema = 0.1
        self._last_usage: TokenUsage | None = None
        # The prompt learned last in the current drain, to spot repeats.
        self._last_exact: _Repeat | None = None
        self._clock = clock or time.monotonic

    @property
    def is_fresh(self) -> bool:
        """True while the counter has learned nothing and has nothing queued."""
        return (
            not self._calibrator.points
            and not self._inbox
            and not self._rejected
            and not len(self._ledger.prompts)
        )

    # -- counting ---------------------------------------------------------

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the prompt tokens of ``messages`` (with ``tools`` bound)."""
        return self.count(messages, tools)

    def count(self, messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
        """The estimate's ``tokens`` alone, without the interval's work."""
        feats, tools_f = self._prepare(messages, tools)
        with self._lock:
            self._expire_costs()
            known, unknown, *_ = self._split(feats, tools_f)
        return round(known + unknown)

    def _prepare(
        self, messages: Sequence[Any], tools: Sequence[Any] | None
    ) -> tuple[FeatureBatch, ToolFeatures]:
        if self._inbox:
            self.flush()
        # feature_batch converts message-like input itself, and only once.
        return self.local.feature_batch(messages), self.local.tool_features(tools)

    def _expire_costs(self) -> None:
        ttl = self.config.cache_ttl
        if ttl is not None:
            # Memoized learned costs outlive the ledger's TTL by at most a
            # quarter of it.
            now = self._clock()
            if now - self._costs_at > ttl / 4:
                self._clear_costs()
                self._costs_at = now

    def _clear_costs(self) -> None:
        self._costs.clear()
        self._estimated.clear()

    def _forget_estimates(self) -> None:
        """Drop the memoized estimates: the coefficients behind them changed."""
        costs = self._costs
        for digest in self._estimated:
            entry = costs.get(digest)
            if entry is not None and not entry[1]:  # not learned since
                del costs[digest]
        self._estimated.clear()

    def estimate(
        self, messages: Sequence[Any], tools: Sequence[Any] | None = None
    ) -> TokenEstimate:
        """Estimate the prompt tokens of ``messages`` with an interval.

        Args:
            messages: The prompt: messages or LangChain message-like inputs.
            tools: Tools bound to the model, in any form LangChain accepts.
        """
        feats, tools_f = self._prepare(messages, tools)
        with self._lock:
            self._expire_costs()
            return self._estimate(feats, tools_f)

    def _calibrated_cost(self, f: MessageFeatures) -> float:
        coef = self._calibrator.coefficients
        v = f.vector
        return max(f.local + sum(coef[3 + i] * v[i] for i in range(N_FEATURES)), 1.0)

    def _cost(self, f: MessageFeatures) -> tuple[float, bool]:
        """A message's cost and whether it was learned (memoized per digest)."""
        digest = f.digest
        entry = self._costs.get(digest)
        if entry is None:
            if len(self._costs) >= self.config.cache_size:
                self._clear_costs()
            learned = self._ledger.message_cost(digest)
            if learned is not None:
                entry = (learned, True)
            else:
                entry = (self._calibrated_cost(f), False)
                self._estimated.append(digest)
            self._costs[digest] = entry
        return entry

    def _base(self, tools_f: ToolFeatures, *, learned: bool) -> tuple[float, bool]:
        """Fixed cost of a prompt beyond its messages, and whether it is known.

        The learned base is the counterpart of learned message costs (they were
        split against it), so it is used only with them (``learned=True``); a
        prompt of new messages takes the regression's framing instead.
        """
        value = self._ledger.base_cost(tools_f.fingerprint) if learned else None
        if value is not None:
            return value, True
        coef = self._calibrator.coefficients
        value = self.local.framing + tools_f.local + coef[0]
        if tools_f.count:
            value += coef[1] + coef[2] * tools_f.schema_tokens
        return max(value, 0.0), False

    def _split(
        self, feats: FeatureBatch, tools_f: ToolFeatures
    ) -> tuple[float, float, int, bool, tuple[int, int] | None]:
        """(known tokens, estimated tokens, known messages, exact, anchor)."""
        digests = feats.digests
        anchor = self._ledger.anchor(tools_f.fingerprint, digests)
        if anchor is not None and anchor[0] == len(digests):
            return float(anchor[1]), 0.0, len(digests), True, anchor
        known = unknown = 0.0
        known_msgs = start = 0
        if anchor is not None:
            start, tokens = anchor
            known, known_msgs = float(tokens), start
        # Memoized costs by digest in one pass; only misses build features.
        rest = digests[start:] if start else digests
        entries = list(map(self._costs.get, rest))
        for j, entry in enumerate(entries):
            cost, learned = entry if entry is not None else self._cost(feats[start + j])
            if learned:
                known += cost
                known_msgs += 1
            else:
                unknown += cost
        if anchor is None:
            base, base_known = self._base(tools_f, learned=known_msgs > 0)
            if base_known:
                known += base
            else:
                unknown += base
        return known, unknown, known_msgs, False, anchor

    def _interval(self) -> tuple[float, float]:
        if len(self._residuals) < self.config.min_points:
            return _PRIOR_INTERVAL[self._kind]
        ordered = sorted(self._residuals)
        tail = (1.0 - self.config.coverage) / 2.0
        # Few residuals understate the tails: widen by a small-sample factor.
        widen = 1.0 + 1.0 / len(ordered) ** 0.5
        lo = min(_quantile(ordered, tail) * widen, -0.002)
        hi = max(_quantile(ordered, 1.0 - tail) * widen, 0.002)
        return lo, hi

    def _estimate(self, feats: FeatureBatch, tools_f: ToolFeatures) -> TokenEstimate:
        local_total = self.local.framing + tools_f.local + feats.local_total
        points = self._calibrator.points
        known, unknown, known_msgs, exact, _ = self._split(feats, tools_f)
        tokens = round(known + unknown)
        if exact:
            return TokenEstimate(
                tokens, tokens, tokens, "exact", 1.0, self.model, local_total,
                tokens, len(feats), len(feats), points,
            )  # fmt: skip
        rel_lo, rel_hi = self._interval()
        margin = 1.0 + 0.002 * known
        # Residuals are relative to the unknown part plus a floor (see _learn).
        scale = unknown + _RESIDUAL_FLOOR
        low = max(round(known + unknown + scale * rel_lo - margin), 0)
        high = round(known + unknown + scale * rel_hi + margin + 0.5)
        source: Source
        if known_msgs and known >= unknown:
            source = "anchored"
        elif points:
            source = "calibrated"
        else:
            source = "fallback" if self._kind == "fallback" else "local"
        frac = known / (known + unknown) if known + unknown > 0 else 0.0
        conf = frac + (1.0 - frac) * self._model_confidence()
        return TokenEstimate(
            tokens, min(low, tokens), max(high, tokens), source, round(conf, 3),
            self.model, local_total, round(known), len(feats), known_msgs, points,
        )  # fmt: skip

    def _model_confidence(self) -> float:
        n = self._calibrator.points
        if n == 0:
            return _LOCAL_CONFIDENCE[self._kind]
        # Recent whole-prompt error (a moving average), discounted while the
        # model has fewer reports than ``min_points``.
        return min(1.0, n / self.config.min_points) / (1.0 + 10.0 * self._error_ema)

    # -- learning ---------------------------------------------------------

    def submit(self, observation: Observation) -> None:
        """Queue a reported call for learning; O(1), safe in a callback."""
        self._inbox.append(observation)
        if len(self._inbox) >= _DRAIN_AT and self._lock.acquire(blocking=False):
            # Nobody is counting: bound the queue here rather than grow it.
            try:
                self._drain()
            finally:
                self._lock.release()

    def flush(self) -> None:
        """Learn from every queued observation now."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        self._last_exact = None
        while self._inbox:
            obs = self._inbox.popleft()
            try:
                last = self._repeat_of(obs)
                if last is not None:
                    self._learn_repeat(obs, last)
                else:
                    self._learn(obs)
            except Exception:  # a bad observation must not poison the queue
                logger.exception("could not learn from a report for %s", self.model)
                self._reject(INTERNAL_ERROR)
                self._last_exact = None
        # Only consecutive reports are compared: the messages are not kept.
        self._last_exact = None
        self._publish()

    def _repeat_of(self, obs: Observation) -> _Repeat | None:
        """The previous report, if ``obs`` reports its prompt and count again.

        Cheap where it matters: the counts differ for a different prompt, and
        a prompt holding the same message objects compares by identity.
        """
        last = self._last_exact
        if (
            last is not None
            and obs.usage.input_tokens == last.reported
            and obs.tools == last.tools
            and obs.messages == last.messages
        ):
            return last
        return None

    def _learn_repeat(self, obs: Observation, last: _Repeat) -> None:
        """Learn from the report of a prompt just learned: what `_learn` would.

        The prompt is now known exactly with this count, so the prediction was
        exact and the error record is the one kept for it; only the reply may
        be new.
        """
        self._last_usage = obs.usage
        self._record("error", last.error)
        self._repeats += 1
        self._learn_reply(obs, obs.usage)

    def _publish(self) -> None:
        if self._unpublished_rejects:
            now = time.time()
            for reason, n in self._unpublished_rejects.items():
                self._outbox.append(
                    LearnEvent(self.model, "reject", (reason, n), self.origin, now)
                )
            self._unpublished_rejects.clear()
        if self._outbox and self.listener is not None:
            events, self._outbox = self._outbox, []
            self.listener(events)

    def observe(
        self,
        messages: Sequence[Any],
        usage: TokenUsage | int,
        tools: Sequence[Any] | None = None,
        *,
        reply: BaseMessage | None = None,
    ) -> str | None:
        """Learn from one call's prompt and its reported usage, now.

        Args:
            messages: The prompt that was sent.
            usage: Its parsed usage, or the reported input tokens as an int.
            tools: The tools that were bound.
            reply: The reply message, whose completion tokens become its cost
                when it appears in the next prompt.

        Returns:
            ``None`` when learned, else the reason it was not.
        """
        if isinstance(usage, int) and not isinstance(usage, bool):
            usage = TokenUsage(input_tokens=usage, output_tokens=0, total_tokens=usage)
        if not isinstance(usage, TokenUsage):
            msg = f"usage must be a TokenUsage or an int, got {type(usage).__name__}."
            raise TypeError(msg)
        obs = Observation(as_messages(messages), tools, usage, reply)
        with self._lock:
            self._drain()
            reason = self._learn(obs)
            self._last_exact = None  # repeats are spotted within a drain only
            self._publish()
            return reason

    def reject(self, reason: str) -> None:
        """Count a report that was not learned from, by reason."""
        with self._lock:
            self._reject(reason)

    def _reject(self, reason: str) -> str:
        # Counted now, published as one event per reason at the next publish:
        # a burst of failing calls must not grow the journal call by call.
        self._rejected[reason] = self._rejected.get(reason, 0) + 1
        self._unpublished_rejects[reason] = self._unpublished_rejects.get(reason, 0) + 1
        return reason

    # -- events -----------------------------------------------------------

    def _record(self, kind: str, values: tuple[Any, ...]) -> None:
        """Apply something learned here, and keep it as an event to persist."""
        self._apply(kind, values)
        self._outbox.append(
            LearnEvent(self.model, kind, values, self.origin, time.time())
        )

    def take_events(self) -> list[LearnEvent]:
        """Hand over the events learned since the last call (for a store)."""
        with self._lock:
            listener, self.listener = self.listener, None
            try:
                self._publish()
            finally:
                self.listener = listener
            events, self._outbox = self._outbox, []
        return events

    def replay(self, events: Iterable[LearnEvent]) -> int:
        """Apply events learned elsewhere (another process, a saved file).

        Replayed events are not handed out again by `take_events`. Events of
        unknown kind or with malformed values are skipped with a warning.

        Returns:
            How many events were applied.
        """
        applied = 0
        with self._lock:
            self._drain()
            for event in events:
                try:
                    self._apply(event.kind, event.values)
                except (ValueError, TypeError, IndexError, KeyError):
                    logger.warning(
                        "skipped a malformed %s event for %s", event.kind, self.model
                    )
                    continue
                applied += 1
            self._clear_costs()
        return applied

    def _apply(self, kind: str, v: tuple[Any, ...]) -> None:  # noqa: C901, PLR0912 - one branch per kind
        """Change the state by one learned fact (shared by learning and replay)."""
        if kind == "fit":
            n = len(COEFFICIENT_NAMES)
            self._calibrator.add(v[:n], float(v[n]), float(v[n + 1]))
            self._forget_estimates()
        elif kind == "prompt":
            self._ledger.insert(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]))
        elif kind == "message":
            self._ledger.set_message_cost(int(v[0]), float(v[1]))
            self._costs.pop(int(v[0]), None)
            if v[2]:
                if len(self._replies) >= _REPLIES_KEPT:
                    self._replies.clear()
                self._replies.add(int(v[0]))
        elif kind == "base":
            self._ledger.bases.put(int(v[0]), float(v[1]))
        elif kind == "error":
            # (local error, calibrated error[, residual]): see _learn.
            self._errors.append((float(v[0]), float(v[1])))
            self._error_ema += _EMA_ALPHA * (abs(float(v[1])) - self._error_ema)
            if v[2:]:
                self._residuals.append(float(v[2]))
        elif kind == "residual":
            # Written separately by earlier versions; still read from their logs.
            self._residuals.append(float(v[0]))
        elif kind == "reply":
            self._leftovers.append(float(v[0]))
            ordered = sorted(self._leftovers)
            self._reply_adjust = ordered[len(ordered) // 2]
        elif kind == "reject":
            reason = str(v[0])
            n = int(v[1]) if len(v) > 1 else 1
            self._rejected[reason] = self._rejected.get(reason, 0) + n
        elif kind == "meta":
            pass  # read by the handler when it creates the counter
        else:
            msg = f"unknown event kind {kind!r}"
            raise ValueError(msg)

    def _learn(self, obs: Observation) -> str | None:
        # What a report changes in the memoized costs is dropped as it is
        # applied (see _apply): the rest stays valid.
        usage = obs.usage
        self._last_usage = usage
        reported = usage.input_tokens
        if reported <= 0:
            return self._reject(NO_USAGE)
        feats = self.local.feature_batch(obs.messages)
        tools_f = self.local.tool_features(obs.tools)
        local_total = self.local.framing + tools_f.local + feats.local_total
        if not _MIN_RATIO * local_total <= reported <= _MAX_RATIO * local_total + 5000:
            return self._reject(IMPLAUSIBLE_RATIO)
        known, unknown, _, exact, anchor = self._split(feats, tools_f)
        predicted = known + unknown
        cal_error = (predicted - reported) / reported
        error: tuple[float, ...] = ((local_total - reported) / reported, cal_error)
        # A prediction made before any report measures the prior, not the
        # calibration: it would widen every later interval for nothing.
        if self._calibrator.points:
            # Relative to the unknown part plus a floor: the known part (reply
            # costs from completion tokens, derived message costs) errs a little
            # too, and a tiny unknown part must not blow the ratio up. Carried
            # by the same event: one record per report, not two.
            error += ((reported - known - unknown) / (unknown + _RESIDUAL_FLOOR),)
        self._record("error", error)
        if exact:
            self._repeats += 1
            self._last_exact = _Repeat(obs.messages, obs.tools, reported, error)
            self._learn_reply(obs, usage)
            return None
        start = anchor[0] if anchor else 0
        new = feats[start:]
        totals = feats.vector_sum(start)
        if totals[N_FEATURES - 1]:
            # Image costs are provider-specific and locally unknowable without
            # dimensions: keep the exact prompt count, skip the regression.
            self._reject(MULTIMODAL)
        else:
            self._fit(new, totals, tools_f, anchor, reported)
        self._allocate(new, tools_f, anchor, reported)
        digests = feats.digests
        if digests:
            prompt_hash = prefix_hashes(tools_f.fingerprint, digests)[-1]
            self._record(
                "prompt",
                (tools_f.fingerprint, digests[0], digests[-1], prompt_hash, reported),
            )
            # Reported again, this prompt is an exact hit: a zero error.
            again = (error[0], 0.0, 0.0) if self._calibrator.points else (error[0], 0.0)
            self._last_exact = _Repeat(obs.messages, obs.tools, reported, again)
        else:
            self._ledger.record(tools_f.fingerprint, digests, reported)
        self._learn_reply(obs, usage)
        return None

    def _fit(
        self,
        new: Sequence[MessageFeatures],
        totals: Sequence[float],
        tools_f: ToolFeatures,
        anchor: tuple[int, int] | None,
        reported: int,
    ) -> None:
        """Add the report to the regression: ``totals`` sums the new vectors."""
        x = [0.0] * len(COEFFICIENT_NAMES)
        local = 0.0
        if anchor is None:
            x[0] = 1.0
            local = float(self.local.framing + tools_f.local)
            if tools_f.count:
                x[1] = 1.0
                x[2] = tools_f.schema_tokens
            target = float(reported)
        else:
            target = float(reported - anchor[1])
        for f in new:
            local += f.local
        x[3 : 3 + len(totals)] = totals
        self._record("fit", (*x, target - local, local))

    def _allocate(
        self,
        new: Sequence[MessageFeatures],
        tools_f: ToolFeatures,
        anchor: tuple[int, int] | None,
        reported: int,
    ) -> None:
        """Spread the newly reported tokens over the messages that were unknown."""
        ledger = self._ledger
        remainder = float(reported - anchor[1]) if anchor is not None else reported
        unknown: list[tuple[MessageFeatures, float]] = []
        replies = 0
        cost_of = self._cost
        for f in new:
            cost, learned = cost_of(f)
            if not learned:
                unknown.append((f, cost))
            else:
                remainder -= cost
                replies += f.digest in self._replies
        base = 0.0
        base_known = True
        if anchor is None:
            base, base_known = self._base(tools_f, learned=len(unknown) < len(new))
            remainder -= base
        estimated = sum(c for _, c in unknown)
        if anchor is not None and replies == 1 and 0 < estimated <= _REPLY_SIGNAL:
            self._learn_reply_bias(remainder - estimated)
        if not unknown:
            if anchor is None:
                # Every message was known: what is left is this tool set's base.
                value = ledger.blended_base(tools_f.fingerprint, remainder + base)
                self._record("base", (tools_f.fingerprint, value))
            return
        total = sum(c for _, c in unknown)
        # A remainder far from the calibrated total means the known costs are
        # stale; trust the regression rather than write nonsense into the ledger.
        if total <= 0 or not 0.5 * total <= remainder <= 2.0 * total:
            return
        for f, cost in unknown:
            self._record("message", (f.digest, remainder * cost / total, 0))
        if anchor is None and not base_known:
            # The messages' costs were derived against this base: record it, so
            # a later prompt made of known messages adds up to what was reported.
            value = ledger.blended_base(tools_f.fingerprint, base)
            self._record("base", (tools_f.fingerprint, value))

    def _learn_reply_bias(self, error: float) -> None:
        """Move the reply-cost correction towards what the report implies.

        A reply's cost in the next prompt is its completion tokens plus the
        template's per-message cost; what the template really adds around a
        reply (an end-of-turn token the completion already counted, a header)
        shows as a consistent leftover when the next prompt is reported. The
        new user message's estimate errs both ways (it is short: see the
        caller), so the median of recent leftovers is the reply's bias.
        """
        self._record("reply", (max(-_REPLY_CLIP, min(_REPLY_CLIP, error)),))

    def _learn_reply(self, obs: Observation, usage: TokenUsage) -> None:
        reply = obs.reply
        if reply is None or usage.output_tokens <= 0:
            return
        key = None
        if isinstance(reply, ReplyParts):
            if isinstance(reply.content, str) and not reply.tool_calls:
                # A reply seen before (a repeated prompt, an LLM cache) is
                # recognized from its text alone, without building a message.
                key = hash(reply.content)
                digest = self._reply_digests.get(key)
                if digest is not None and self._ledger.message_cost(digest) is not None:
                    return
            reply = reply.message()
        (f,) = self.local.message_features([reply])
        if key is not None:
            if len(self._reply_digests) >= _REPLIES_KEPT:
                self._reply_digests.clear()
            self._reply_digests[key] = f.digest
        if self._ledger.message_cost(f.digest) is not None:
            return
        visible = usage.output_tokens - usage.reasoning
        content_local = sum(f.vector[1:-1])  # the classes, not the intercept or images
        coef = self._calibrator.coefficients
        overhead = f.local - content_local + coef[3] + self._reply_adjust
        if visible > 0:
            self._record("message", (f.digest, max(visible + overhead, 1.0), 1))

    # -- reporting --------------------------------------------------------

    def stats(self) -> ModelStats:
        """A snapshot of this model's calibration statistics."""
        with self._lock:
            self._drain()
            errors = tuple(self._errors)
            local_err = cal_err = recent = bias = None
            if errors:
                local_err = sum(abs(e[0]) for e in errors) / len(errors)
                cal_err = sum(abs(e[1]) for e in errors) / len(errors)
                bias = sum(e[1] for e in errors) / len(errors)
                tail = errors[-10:]
                recent = sum(abs(e[1]) for e in tail) / len(tail)
            rel_lo, rel_hi = self._interval()
            return ModelStats(
                model=self.model,
                provider=self.provider,
                counter=self.local.info,
                observations=self._calibrator.points,
                repeats=self._repeats,
                rejected=dict(self._rejected),
                coefficients=dict(
                    zip(COEFFICIENT_NAMES, self._calibrator.coefficients, strict=True)
                ),
                confidence=round(self._model_confidence(), 3),
                local_error=local_err,
                calibrated_error=cal_err,
                recent_error=recent,
                bias=bias,
                interval=(rel_lo, rel_hi),
                last_usage=self._last_usage,
                memo=self.local.memo_stats(),
                ledger=self._ledger.stats(),
                errors=errors,
            )


def create_counter(
    model: str,
    provider: str | None = None,
    *,
    config: CounterConfig | Mapping[str, Any] | None = None,
    **settings: Any,
) -> CalibratedCounter:
    """Create the right counter for a model, ready to learn from its reports.

    OpenAI models count exactly with their own tiktoken encoding; every other
    model starts from the approximate counter and is calibrated by `observe`
    (or by a `TokenCalibrationHandler` that feeds it).

    Args:
        model: The model name (``"gpt-4o"``, ``"claude-sonnet-4-5"``...).
        provider: ``"openai"``, ``"anthropic"``, ``"google"``...; guessed from
            the model name when omitted.
        config: A `CounterConfig` or a mapping of its settings.
        **settings: Individual settings (``cache_ttl=``, ``cache_size=``,
            ``min_points=``, ``max_points=``...), applied over ``config``.

    Raises:
        ConfigError: On an unknown or invalid setting.
        UnknownProviderError: On a provider that is not known.

    Example:
        ```python
        from langchain_core.messages import trim_messages

        from langchain_tokencal import create_counter

        counter = create_counter("gpt-4o", cache_size=10_000)
        history = [("system", "Be brief."), ("user", "Hi!")]
        trimmed = trim_messages(history, max_tokens=50, token_counter=counter)
        ```
    """
    if provider is not None:
        name = canonical(provider) if isinstance(provider, str) else None
        if name is None:
            msg = unknown_provider_message(
                provider, none_means="guess it from the model name"
            )
            raise UnknownProviderError(msg)
    if isinstance(config, Mapping):
        config = CounterConfig.from_mapping(config)
    config = config or CounterConfig()
    if settings:
        config = config.replace(**settings)
    return CalibratedCounter(model, provider, config=config)
