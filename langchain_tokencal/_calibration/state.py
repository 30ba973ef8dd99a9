"""What a counter knows: the learned facts, and the costs a count reads from them.

`CounterState` holds everything a model's counter has learned: the ledger of
exact facts, the regression, the recent errors and residuals, the rejections
and the reply-cost correction. It changes in one way only, `CounterState.apply`,
one learned fact (an event of `langchain_tokencal.events.SCHEMA`) at a time,
through a dispatch table with one entry per event kind; learning and replay
share it, so a replayed log rebuilds the same state.

Counting reads it through `CounterState.split`: the known and estimated parts
of a prompt, with each message's cost memoized by digest. Learned costs stay
memoized until a fact changes them; estimates until the coefficients change.
`CounterState.spread` is the predictive variance of the estimated part, and
`CounterState.interval` the multiples of its sd an interval spans, by the
count's `CounterState.situation`.

Not thread-safe on its own: `CalibratedCounter` serializes access.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._calibration.design import (
    base_estimate,
    design_row,
    message_estimate,
)
from langchain_tokencal._calibration.estimate import (
    CounterKind,
    model_confidence,
    standard_interval,
)
from langchain_tokencal._calibration.ledger import Ledger
from langchain_tokencal._calibration.regression import (
    N_COEFFICIENTS,
    Calibrator,
    Prior,
)
from langchain_tokencal._features import N_FEATURES
from langchain_tokencal.events import EVENT_KINDS, check_values

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal._features import FeatureBatch, MessageFeatures, ToolFeatures
    from langchain_tokencal.config import CounterConfig

__all__ = ["CounterState", "Split"]

# Recent residuals behind the interval: old ones describe an earlier fit.
_RESIDUAL_WINDOW: Final = 200
# Weight of the newest report in the moving average of the calibrated error.
_EMA_ALPHA: Final = 0.3
# Leftovers behind the reply-cost correction (their median).
_REPLY_WINDOW: Final = 51
# Reply digests remembered as completion-derived (cleared when full).
_REPLIES_KEPT: Final = 4096
# The situations a count's interval is taken for (see CounterState.situation).
_ANCHORED, _UNANCHORED, _NEW_TOOLS = 0, 1, 2
_SITUATIONS: Final = 3
# How far a tool set never reported may be from the shared tool coefficients:
# (share of its local tokens, tokens), for approximate and exact counters.
_TOOLSET_SPREAD: Final = {False: (0.1, 10.0), True: (0.03, 3.0)}
# The feature vector of no message: a base alone.
_NO_MESSAGE: Final = (0.0,) * N_FEATURES
# Values of a fit event with the thirteen features of earlier versions.
_LEGACY_FIT: Final = 13 + 2

Split = tuple[float, float, int, bool, "tuple[int, int] | None"]
"""(known tokens, estimated tokens, known messages, exact, anchor)."""


class CounterState:
    """The learned state of one model's counter.

    Args:
        kind: The local counter's kind (its prior and prior interval).
        provider: The provider family, for a prior centred on documented costs.
        framing: The local counter's framing tokens.
        config: Windows, cache sizes and coverage.
        clock: Monotonic clock of the ledger's TTL.
    """

    def __init__(
        self,
        kind: CounterKind,
        provider: str | None,
        framing: int,
        config: CounterConfig,
        clock: Callable[[], float],
    ) -> None:
        """Create a state that knows nothing yet."""
        self.kind: CounterKind = kind
        self.framing = framing
        self.config = config
        prior = Prior.exact() if kind == "exact" else Prior.approximate(provider)
        self.calibrator = Calibrator(prior, window=config.max_points)
        self.ledger = Ledger(config.cache_size, config.cache_ttl, clock=clock)
        self._clock = clock
        # Each message's cost by digest, and whether it was learned (see split).
        self.costs: dict[int, tuple[float, bool]] = {}
        self._estimated: list[int] = []
        self._costs_at = 0.0
        # Standardized residuals, (reported - predicted) / predictive sd, by
        # situation (see `situation`): a prompt anchored on a reported prefix,
        # one estimated from its start, one with a tool set never reported.
        # Each errs its own way; one pooled quantile would be too wide for the
        # first and too narrow for the last.
        self.zscores: tuple[deque[float], ...] = tuple(
            deque(maxlen=min(config.max_points, _RESIDUAL_WINDOW))
            for _ in range(_SITUATIONS)
        )
        # The interval of each situation (None: pooled), until a residual comes.
        self._intervals: dict[int | None, tuple[float, float]] = {}
        self.errors: deque[tuple[float, float]] = deque(maxlen=config.max_points)
        self.rejected: dict[str, int] = {}
        self.repeats = 0
        # Reply costs taken from completion tokens (digests), and the learned
        # correction of those costs (see learning.Learner.reply_bias).
        self.replies: set[int] = set()
        self.reply_adjust = 0.0
        self.leftovers: deque[float] = deque(maxlen=_REPLY_WINDOW)
        # Start pessimistic: 10% error until reports say otherwise.
        self.error_ema = 0.1

    # -- applying learned facts -------------------------------------------

    def apply(self, kind: str, values: tuple[Any, ...]) -> None:
        """Change the state by one learned fact.

        Raises:
            ValueError: On an unknown kind or values that do not fit it
                (also ``TypeError``/``IndexError`` for malformed values).
        """
        check_values(kind, values)
        _APPLY[kind](self, values)

    def _fit(self, v: tuple[Any, ...]) -> None:
        if len(v) == _LEGACY_FIT:
            # Thirteen features, from before the escape class and the tool
            # structure: the same row with those features zero.
            v = (*v[:12], 0.0, v[12], 0.0, 0.0, *v[13:])
        if len(v) != N_COEFFICIENTS + 2:
            msg = f"a fit holds {N_COEFFICIENTS} features, residual and local"
            raise ValueError(msg)
        self.calibrator.add(v[:N_COEFFICIENTS], float(v[-2]), float(v[-1]))
        self._forget_estimates()

    def _prompt(self, v: tuple[Any, ...]) -> None:
        tools, first, last, prompt_hash, tokens = map(int, v)
        self.ledger.insert(tools, first, last, prompt_hash, tokens)

    def _message(self, v: tuple[Any, ...]) -> None:
        digest, cost, reply = int(v[0]), float(v[1]), v[2]
        self.ledger.set_message_cost(digest, cost, float(v[3]) if len(v) > 3 else 0.0)  # noqa: PLR2004
        self.costs.pop(digest, None)
        if reply:
            if len(self.replies) >= _REPLIES_KEPT:
                self.replies.clear()
            self.replies.add(digest)

    def _base(self, v: tuple[Any, ...]) -> None:
        tools, cost, *weight = v
        self.ledger.set_base_cost(int(tools), float(cost), *map(float, weight))

    def _error(self, v: tuple[Any, ...]) -> None:
        # The relative residual (residual[0]) is kept in the log for the
        # versions that read it; intervals use the standardized one.
        local, calibrated, *residual = map(float, v)
        self.errors.append((local, calibrated))
        self.error_ema += _EMA_ALPHA * (abs(calibrated) - self.error_ema)
        if len(residual) > 1:
            where = int(residual[2]) if len(residual) > 2 else _UNANCHORED  # noqa: PLR2004
            self.zscores[where if 0 <= where < _SITUATIONS else _UNANCHORED].append(
                residual[1]
            )
            self._intervals.clear()

    def _residual(self, v: tuple[Any, ...]) -> None:
        """A relative residual of earlier versions' logs: intervals no longer use it."""

    def _reply(self, v: tuple[Any, ...]) -> None:
        (leftover,) = v
        self.leftovers.append(float(leftover))
        ordered = sorted(self.leftovers)
        self.reply_adjust = ordered[len(ordered) // 2]

    def _reject(self, v: tuple[Any, ...]) -> None:
        reason, *count = v
        self.add_rejects(str(reason), int(count[0]) if count else 1)

    def _meta(self, v: tuple[Any, ...]) -> None:
        """Nothing here: the handler reads ``meta`` when it creates a counter."""

    def add_rejects(self, reason: str, n: int) -> None:
        """Count ``n`` reports not learned from for ``reason``."""
        self.rejected[reason] = self.rejected.get(reason, 0) + n

    # -- costs for counting -----------------------------------------------

    def expire_costs(self) -> None:
        """Drop memoized costs when the ledger's TTL may have expired them."""
        ttl = self.config.cache_ttl
        if ttl is not None:
            # Memoized learned costs outlive the ledger's TTL by at most a
            # quarter of it.
            now = self._clock()
            if now - self._costs_at > ttl / 4:
                self.clear_costs()
                self._costs_at = now

    def restored(self) -> None:
        """Drop what was derived from the facts a snapshot just replaced."""
        self._intervals.clear()
        self.clear_costs()

    def clear_costs(self) -> None:
        """Forget every memoized cost (after a replay, say)."""
        self.costs.clear()
        self._estimated.clear()

    def _forget_estimates(self) -> None:
        """Drop the memoized estimates: the coefficients behind them changed."""
        costs = self.costs
        for digest in self._estimated:
            entry = costs.get(digest)
            if entry is not None and not entry[1]:  # not learned since
                del costs[digest]
        self._estimated.clear()

    def cost(
        self, f: MessageFeatures, coef: tuple[float, ...] | None = None
    ) -> tuple[float, bool]:
        """A message's cost and whether it was learned (memoized per digest).

        With ``coef`` (a count without the lock, see `split`) nothing is
        memoized: a stale cost must not outlive the update it raced.
        """
        digest = f.digest
        entry = self.costs.get(digest)
        if entry is None and coef is not None:
            learned = self.ledger.message_cost(digest)
            if learned is not None:
                return learned, True
            return message_estimate(coef, f), False
        if entry is None:
            if len(self.costs) >= self.config.cache_size:
                self.clear_costs()
            learned = self.ledger.message_cost(digest)
            if learned is not None:
                entry = (learned, True)
            else:
                entry = (message_estimate(self.calibrator.coefficients, f), False)
                self._estimated.append(digest)
            self.costs[digest] = entry
        return entry

    def base(
        self, tools_f: ToolFeatures, coef: tuple[float, ...] | None = None
    ) -> tuple[float, bool]:
        """Fixed cost of a prompt beyond its messages, and whether it is known.

        A tool set's learned base holds what its reports showed beyond their
        messages (a hidden preamble, how its schemas are really rendered),
        which no shared coefficient can know, so it is used whenever it
        exists. Without tools the base is the framing alone: the regression's
        framing coefficient, fitted jointly with every other, knows it best.
        """
        value = self.ledger.base_cost(tools_f.fingerprint) if tools_f.count else None
        if value is not None:
            return value, True
        if coef is None:
            coef = self.calibrator.coefficients
        return base_estimate(coef, self.framing, tools_f), False

    # -- spreads ----------------------------------------------------------

    def message_variance(self, f: MessageFeatures) -> float:
        """Variance of an unknown message's estimate (tokens squared).

        The regression's uncertainty about its coefficients for this message,
        plus the message's own noise: content tokenizes a little above or
        below any per-class rate.
        """
        cal = self.calibrator
        if self.kind == "exact":
            # The local tokenizer is the model's own: a message's content
            # costs what it counts, and only the fit's terms (per message,
            # tool calls and results) are uncertain. So a report's gap goes
            # where the local count cannot see: a tool set's rendering.
            return cal.variance(design_row(f.vector, None))
        noise = cal.noise(f.local)
        return cal.variance(design_row(f.vector, None)) + noise * noise

    def base_variance(self, tools_f: ToolFeatures) -> float:
        """Variance of an unlearned tool set's estimated base (tokens squared)."""
        cal = self.calibrator
        noise = cal.noise(self.framing + tools_f.local)
        return (
            cal.variance(design_row(_NO_MESSAGE, tools_f))
            + noise * noise
            + self._toolset_variance(tools_f)
        )

    def _toolset_variance(self, tools_f: ToolFeatures) -> float:
        """How far one tool set's rendering may stray from the shared fit.

        The regression's tool coefficients are shared by every tool set; each
        set is rendered its own way (its types, descriptions, nesting), which
        no shared coefficient knows until the set itself is reported.
        """
        if not tools_f.count:
            return 0.0
        rel, floor = _TOOLSET_SPREAD[self.kind == "exact"]
        spread = rel * tools_f.local + floor
        return spread * spread

    def spread(self, feats: FeatureBatch, tools_f: ToolFeatures, start: int) -> float:
        """Predictive variance of a count's estimated part (tokens squared).

        The estimated messages (from ``start``) and base share the regression's
        coefficients, so their uncertainty is that of their summed row, not a
        sum of separate ones, plus the noise of their local count. A
        provisional cost adds its variance (one over its precision); a firm
        cost adds none.
        """
        ledger, cal = self.ledger, self.calibrator
        totals, local, provisional = self._message_spread(feats, start)
        base_tools: ToolFeatures | None = None
        toolset = 0.0
        if start == 0:
            if not tools_f.count or ledger.base_cost(tools_f.fingerprint) is None:
                base_tools = tools_f
                local += self.framing + tools_f.local
                toolset = self._toolset_variance(tools_f)
            else:
                weight = ledger.base_weight(tools_f.fingerprint)
                provisional += 1.0 / weight if weight > 0.0 else 0.0
        if totals is None and base_tools is None:
            return provisional
        row = design_row(totals if totals is not None else _NO_MESSAGE, base_tools)
        # The noise of the estimated part as a whole, as the regression's
        # reports are: its own noise model, so standardized residuals match.
        noise = cal.noise(local)
        return cal.variance(row) + noise * noise + provisional + toolset

    def _message_spread(
        self, feats: FeatureBatch, start: int
    ) -> tuple[list[float] | None, int, float]:
        """Summed vector and local count of estimated messages; provisional variance.

        Over the messages from ``start``: the estimated ones' summed feature
        vector (None if there are none) and local count, and the variance of
        the provisional costs among the others.
        """
        ledger, costs = self.ledger, self.costs
        digests, locs = feats.digests, feats.locals
        estimated: list[int] = []
        local = 0
        provisional = 0.0
        for j in range(start, len(digests)):
            entry = costs.get(digests[j]) or self.cost(feats[j])
            if entry[1]:
                weight = ledger.message_weight(digests[j])
                if weight > 0.0:
                    provisional += 1.0 / weight
                continue
            estimated.append(j)
            local += locs[j]
        if not estimated:
            return None, local, provisional
        if len(estimated) == len(digests) - start:
            return feats.vector_sum(start), local, provisional
        totals = [0.0] * N_FEATURES
        for j in estimated:
            for i, v in enumerate(feats.vector(j)):
                if v:
                    totals[i] += v
        return totals, local, provisional

    def split(
        self,
        feats: FeatureBatch,
        tools_f: ToolFeatures,
        coef: tuple[float, ...] | None = None,
    ) -> Split:
        """(known tokens, estimated tokens, known messages, exact, anchor).

        ``coef``: the coefficients of a count made without the lock (the
        last solved ones); such a count reads and never writes.
        """
        digests = feats.digests
        anchor = self.ledger.anchor(tools_f.fingerprint, digests)
        if anchor is not None and anchor[0] == len(digests):
            return float(anchor[1]), 0.0, len(digests), True, anchor
        known = unknown = 0.0
        known_msgs = start = 0
        if anchor is not None:
            start, tokens = anchor
            known, known_msgs = float(tokens), start
        # Memoized costs by digest in one pass; only misses build features.
        rest = digests[start:] if start else digests
        entries = list(map(self.costs.get, rest))
        for j, memo in enumerate(entries):
            cost, learned = (
                memo if memo is not None else self.cost(feats[start + j], coef)
            )
            if learned:
                known += cost
                known_msgs += 1
            else:
                unknown += cost
        if anchor is None:
            base, base_known = self.base(tools_f, coef)
            if base_known:
                known += base
            else:
                unknown += base
        return known, unknown, known_msgs, False, anchor

    # -- what the state says ----------------------------------------------

    def interval(self, situation: int | None = None) -> tuple[float, float]:
        """Multiples of the predictive sd that bound a count's estimated part.

        Memoized until the next residual: every estimate reads it.

        Args:
            situation: The count's `situation`: its own residuals once it has
                ``min_points`` of them, else every situation's together.
                ``None``: every situation's together.
        """
        cached = self._intervals.get(situation)
        if cached is not None:
            return cached
        cfg = self.config
        own = self.zscores[situation] if situation is not None else ()
        if situation is not None and (
            len(own) >= cfg.min_points or situation == _NEW_TOOLS
        ):
            # A new tool set is the rare hard case: the others' residuals would
            # understate it, so until it has its own, the normal quantile.
            zscores: Sequence[float] = own
        else:
            zscores = [z for zs in self.zscores for z in zs]
        result = self._intervals[situation] = standard_interval(
            zscores, cfg.min_points, cfg.coverage
        )
        return result

    def situation(self, tools_f: ToolFeatures, anchor: tuple[int, int] | None) -> int:
        """Which residuals a count's interval is taken from.

        Returns:
            0 for a prompt anchored on a reported prefix, 1 for one estimated
            from its start, 2 for one whose tool set's base was never learned.
        """
        if anchor is not None:
            return _ANCHORED
        if tools_f.count and self.ledger.base_cost(tools_f.fingerprint) is None:
            return _NEW_TOOLS
        return _UNANCHORED

    def confidence(self) -> float:
        """Confidence in the calibrated part of a count, 0..1."""
        return model_confidence(
            self.calibrator.points, self.config.min_points, self.error_ema, self.kind
        )


_APPLY: Final[dict[str, Callable[[CounterState, tuple[Any, ...]], None]]] = {
    "fit": CounterState._fit,  # noqa: SLF001 - the dispatch table of apply
    "prompt": CounterState._prompt,  # noqa: SLF001
    "message": CounterState._message,  # noqa: SLF001
    "base": CounterState._base,  # noqa: SLF001
    "error": CounterState._error,  # noqa: SLF001
    "residual": CounterState._residual,  # noqa: SLF001
    "reply": CounterState._reply,  # noqa: SLF001
    "reject": CounterState._reject,  # noqa: SLF001
    "meta": CounterState._meta,  # noqa: SLF001
}

if set(_APPLY) != EVENT_KINDS:  # pragma: no cover - a schema bug, caught at import
    msg = f"apply handles {sorted(_APPLY)}, the schema declares {sorted(EVENT_KINDS)}"
    raise RuntimeError(msg)
