"""Calibrated counting for one model: local features + ledger + regression.

A count is made as DESIGN.md describes:

- a prompt reported before is answered with its report (``"exact"``);
- otherwise the longest reported prefix is the anchor, or, with none, the
  tool set's learned base cost (else the calibrated framing and tool cost);
- each remaining message costs its learned cost when the ledger has one, or
  its calibrated estimate ``local + coefficients . features``.

`CalibratedCounter` is the facade: it counts from its `CounterState` and
learns through its `Learner`. Learning is deferred: the callback hands over
an `Observation` in O(1), and the work (features of new messages, ledger
updates, the regression solve) runs on the next count, `flush()` or
`stats()`, outside the model call.
"""

# NB: no ``from __future__ import annotations`` here: ``trim_messages`` reads
# the evaluated annotation of a counter's first parameter.

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from langchain_core.messages import BaseMessage

from langchain_tokencal._calibration.estimate import Source, TokenEstimate, counter_kind
from langchain_tokencal._calibration.inbox import Inbox
from langchain_tokencal._calibration.learning import Learner, Observation
from langchain_tokencal._calibration.regression import COEFFICIENT_NAMES
from langchain_tokencal._calibration.snapshot import export_state, restore_state
from langchain_tokencal._calibration.state import CounterState
from langchain_tokencal._calibration.stats import ModelStats
from langchain_tokencal._counting import LocalCounter, as_messages, local_counter
from langchain_tokencal._features import FeatureBatch, ToolFeatures
from langchain_tokencal._providers import canonical_label, guess_provider
from langchain_tokencal._reasons import BACKLOG, INTERNAL_ERROR, NO_USAGE
from langchain_tokencal._usage import TokenUsage, coerce_usage
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.events import LearnEvent, Reject

logger = logging.getLogger(__name__)

__all__ = ["CalibratedCounter"]


# A queue this long is learned in chunks by those who report, not by counts.
_DRAIN_AT: Final = 64
# Reports learned at a time from a long queue, by whoever reports or counts.
_CHUNK: Final = 16


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
        config = self.config
        self.local = local or local_counter(
            model, provider or self.provider, memo_size=config.memo_size,
            tokenizers=config.tokenizers, own_tokenizers=config.own_tokenizers,
        )  # fmt: skip
        if config.hash_key:
            self.local.use_hash_key(config.hash_key)
        self._state = CounterState(
            counter_kind(self.local.info),
            self.provider,
            self.local.framing,
            self.config,
            clock or time.monotonic,
        )
        self._learner = Learner(self._state, self.local, self._record, self._reject)
        self._lock = threading.RLock()
        self._inbox = Inbox()
        # Events learned here and not yet handed to the listener.
        self._outbox: list[LearnEvent] = []
        self._unpublished_rejects: dict[str, int] = {}
        self.origin = ""
        # Called (under the lock, with no I/O allowed) with newly learned events.
        self.listener: Callable[[list[LearnEvent]], None] | None = None

    queued = property(
        lambda self: len(self._inbox), doc="Reports waiting to be learned."
    )

    @property
    def is_fresh(self) -> bool:
        """True while the counter has learned nothing and has nothing queued."""
        state = self._state
        return (
            not state.calibrator.points
            and not self._inbox
            and not state.rejected
            and not len(state.ledger.prompts)
        )

    # -- counting ---------------------------------------------------------

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the prompt tokens of ``messages`` (with ``tools`` bound)."""
        return self.count(messages, tools)

    def count(self, messages: Sequence[Any], tools: Sequence[Any] | None = None) -> int:
        """The estimate's ``tokens`` alone, without the interval's work."""
        return self.count_features(*self.prepare(messages, tools))

    def count_features(self, feats: FeatureBatch, tools_f: ToolFeatures) -> int:
        """`count` of a prompt whose features are at hand (`prepare`)."""
        if self._inbox:
            self._learn_queued()
        if not self._lock.acquire(blocking=False):
            return self._count_unlocked(feats, tools_f)
        try:
            self._state.expire_costs()
            known, unknown, *_ = self._state.split(feats, tools_f)
        finally:
            self._lock.release()
        return round(known + unknown)

    def _count_unlocked(self, feats: FeatureBatch, tools_f: ToolFeatures) -> int:
        """A count while a learner holds the lock: from what was last solved.

        A thread that blocks (on a lock) waits its turn for the GIL again,
        behind every busy thread, and the holder may itself be paused
        mid-update: under load a wait costs tens of milliseconds, so a count
        does not wait.
        It reads the ledger (a lock of its own) and the last solved
        coefficients, and memoizes nothing.
        """
        state = self._state
        try:
            known, unknown, *_ = state.split(
                feats, tools_f, state.calibrator.last_coefficients
            )
        except Exception:  # noqa: BLE001 - raced an update: wait for it after all
            with self._lock:
                known, unknown, *_ = state.split(feats, tools_f)
        return round(known + unknown)

    def message_tokens(self, messages: Sequence[Any]) -> float:
        """What ``messages`` add to a prompt: their costs, no fixed costs.

        What ``trim_messages`` takes off its budget for a kept system message.
        """
        feats = self.prepare(messages, None)[0]
        with self._lock:
            self._state.expire_costs()
            return sum(self._state.cost(f)[0] for f in feats)

    def estimate(
        self, messages: Sequence[Any], tools: Sequence[Any] | None = None
    ) -> TokenEstimate:
        """Estimate the prompt tokens of ``messages`` with an interval.

        Args:
            messages: The prompt: messages or LangChain message-like inputs.
            tools: Tools bound to the model, in any form LangChain accepts.
        """
        return self.estimate_features(*self.prepare(messages, tools))

    def estimate_features(
        self, feats: FeatureBatch, tools_f: ToolFeatures
    ) -> TokenEstimate:
        """`estimate` of a prompt whose features are at hand (`prepare`)."""
        if self._inbox:
            self._learn_queued()
        with self._lock:
            self._state.expire_costs()
            return self._estimate(feats, tools_f)

    def prepare(
        self, messages: Sequence[Any], tools: Sequence[Any] | None = None
    ) -> tuple[FeatureBatch, ToolFeatures]:
        """The features a count reads, for counting many sub-lists of them."""
        return self.local.prepare(messages, tools)

    def _estimate(self, feats: FeatureBatch, tools_f: ToolFeatures) -> TokenEstimate:
        state = self._state
        local_total = self.local.framing + tools_f.local + feats.local_total
        points = state.calibrator.points
        known, unknown, known_msgs, exact, anchor = state.split(feats, tools_f)
        tokens = round(known + unknown)
        if exact:
            return TokenEstimate(
                tokens, tokens, tokens, "exact", 1.0, self.model, local_total,
                tokens, len(feats), len(feats), points,
            )  # fmt: skip
        z_lo, z_hi = state.interval(state.situation(tools_f, anchor))
        sd = math.sqrt(state.spread(feats, tools_f, anchor[0] if anchor else 0))
        # Firm costs (a delta, a reply's completion tokens) err a little; the
        # estimated part's own spread is in sd.
        margin = 0.002 * known
        # No vocabulary spends less than half another's tokens on a text, and
        # what reports said is not in doubt: the floor of ``low``.
        low = max(
            round(known + unknown + z_lo * sd - margin), round(known + unknown / 2)
        )
        high = round(known + unknown + z_hi * sd + margin + 0.5)
        source: Source
        if known_msgs and known >= unknown:
            source = "anchored"
        elif points:
            source = "calibrated"
        else:
            source = "fallback" if state.kind == "fallback" else "local"
        frac = known / (known + unknown) if known + unknown > 0 else 0.0
        conf = frac + (1.0 - frac) * state.confidence()
        return TokenEstimate(
            tokens, min(low, tokens), max(high, tokens), source, round(conf, 3),
            self.model, local_total, round(known), len(feats), known_msgs, points,
        )  # fmt: skip

    # -- learning ---------------------------------------------------------

    def submit(self, observation: Observation, *, learn: bool = True) -> None:
        """Queue a reported call for learning; O(1) amortized, safe in a callback.

        Args:
            observation: The call's prompt and usage.
            learn: Whether this caller learns a chunk once the queue is long
                (a callback does; a count that settles runs learns where it
                counts instead).
        """
        inbox = self._inbox
        inbox.put(observation)
        if learn and len(inbox) >= _DRAIN_AT:
            self._learn_chunk()

    def flush(self) -> None:
        """Learn from every observation queued when the call began."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        """Learn (under the lock) all that is queued now; not what arrives meanwhile.

        With busy threads reporting, a drain that waited for an empty queue
        could keep its caller forever.
        """
        self._learn(self._inbox.take(len(self._inbox), self._learner.content_key))

    def _learn_queued(self) -> None:
        """A count's share of learning: a fixed amount of work, never a backlog.

        A short queue (one caller's recent calls) is learned whole, so a count
        reflects them; a long one is left to the threads that report, which
        learn it in chunks as they report: a count under load pays for no one
        else's reports (`flush` and `stats` learn everything).
        """
        inbox = self._inbox
        if len(inbox) < _DRAIN_AT and self._lock.acquire(blocking=False):
            # (A lock holder is learning or counting: the next count learns.)
            try:
                self._drain()
            finally:
                self._lock.release()

    def _learn_chunk(self) -> None:
        """Learn the oldest `_CHUNK` reports, unless someone else is learning.

        They are tokenized before the lock is taken (the local counter is
        thread-safe and memoizes them), so the lock is held for the state
        updates alone: a count never waits behind a tokenizer, and a thread
        the scheduler pauses rarely holds the lock while paused.
        """
        inbox = self._inbox
        batch = inbox.take(_CHUNK, self._learner.content_key)
        try:
            for obs in batch:
                self.local.prepare(obs.messages, obs.tools)
        except Exception:  # noqa: BLE001, S110 - learning reports it, under the lock
            pass
        # One report per hold: a count waits for one report's update at most.
        for i, obs in enumerate(batch):
            if not self._lock.acquire(blocking=False):
                inbox.give_back(batch[i:])  # for the next report or count
                return
            try:
                self._learn([obs])
            finally:
                self._lock.release()

    def _learn(self, batch: list[Observation]) -> None:
        """Learn ``batch`` in order (under the lock), then publish the events."""
        learner = self._learner
        learner.last_exact = None
        dropped = self._inbox.take_dropped()
        if dropped:
            self._state.add_rejects(BACKLOG, dropped)
            unpublished = self._unpublished_rejects
            unpublished[BACKLOG] = unpublished.get(BACKLOG, 0) + dropped
        for obs in batch:
            try:
                learner.learn_next(obs)
            except Exception:  # noqa: PERF203 - a bad report must not poison the rest
                logger.exception("could not learn from a report for %s", self.model)
                self._reject(INTERNAL_ERROR)
                learner.last_exact = None
        # Only consecutive reports are compared: the messages are not kept.
        learner.last_exact = None
        self._publish()

    def observe(
        self,
        messages: Sequence[Any],
        usage: TokenUsage | int | Any,
        tools: Sequence[Any] | None = None,
        *,
        reply: BaseMessage | None = None,
    ) -> str | None:
        """Learn from one call's prompt and its reported usage, now.

        Args:
            messages: The prompt that was sent.
            usage: Its parsed usage, the reported input tokens as an int, or
                any payload `parse_usage` reads (a usage dict, a response).
            tools: The tools that were bound.
            reply: The reply message, whose completion tokens become its cost
                when it appears in the next prompt.

        Returns:
            ``None`` when learned, else the reason it was not.
        """
        parsed = coerce_usage(usage)
        if parsed is None:
            self.reject(NO_USAGE)
            return NO_USAGE
        obs = Observation(as_messages(messages), tools, parsed, reply)
        with self._lock:
            self._drain()
            reason = self._learner.learn(obs)
            self._learner.last_exact = None  # repeats are spotted within a drain
            self._publish()
            return reason

    def reject(self, reason: str) -> None:
        """Count a report that was not learned from, by reason."""
        with self._lock:
            self._reject(reason)

    def _reject(self, reason: str) -> str:
        # Counted now, published as one event per reason at the next publish:
        # a burst of failing calls must not grow the journal call by call.
        self._state.add_rejects(reason, 1)
        self._unpublished_rejects[reason] = self._unpublished_rejects.get(reason, 0) + 1
        return reason

    # -- events -----------------------------------------------------------

    def _record(self, kind: str, values: tuple[Any, ...]) -> None:
        """Apply something learned here, and keep it as an event to persist."""
        self._state.apply(kind, values)
        self._outbox.append(
            LearnEvent(self.model, kind, values, self.origin, time.time())
        )

    def _publish(self) -> None:
        if self._unpublished_rejects:
            now = time.time()
            for reason, n in self._unpublished_rejects.items():
                self._outbox.append(
                    LearnEvent(
                        self.model, "reject", Reject(reason, n), self.origin, now
                    )
                )
            self._unpublished_rejects.clear()
        if self._outbox and self.listener is not None:
            events, self._outbox = self._outbox, []
            self.listener(events)

    def export(self) -> dict[str, Any]:
        """Everything learned, as JSON-ready numbers (see `export_state`)."""
        with self._lock:
            self._drain()
            return export_state(self._state)

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Start from a snapshot `export` wrote (``ValueError`` if malformed)."""
        with self._lock:
            restore_state(self._state, snapshot)

    def replay(self, events: Iterable[LearnEvent]) -> int:
        """Apply events learned elsewhere (another process, a saved file).

        Replayed events are not handed to the listener again. Events of
        unknown kind or with malformed values are skipped with a warning.

        Returns:
            How many events were applied.
        """
        applied = 0
        with self._lock:
            self._drain()
            for event in events:
                try:
                    self._state.apply(event.kind, event.values)
                except (ValueError, TypeError, IndexError, KeyError):
                    logger.warning(
                        "skipped a malformed %s event for %s", event.kind, self.model
                    )
                    continue
                applied += 1
            self._state.clear_costs()
        return applied

    # -- reporting --------------------------------------------------------

    def stats(self) -> ModelStats:
        """A snapshot of this model's calibration statistics."""
        with self._lock:
            self._drain()
            state = self._state
            errors = tuple(state.errors)
            local_err = cal_err = recent = bias = None
            if errors:
                local_err = sum(abs(e[0]) for e in errors) / len(errors)
                cal_err = sum(abs(e[1]) for e in errors) / len(errors)
                bias = sum(e[1] for e in errors) / len(errors)
                tail = errors[-10:]
                recent = sum(abs(e[1]) for e in tail) / len(tail)
            return ModelStats(
                model=self.model,
                provider=self.provider,
                counter=self.local.info,
                observations=state.calibrator.points,
                repeats=state.repeats,
                rejected=dict(state.rejected),
                coefficients=dict(
                    zip(COEFFICIENT_NAMES, state.calibrator.coefficients, strict=True)
                ),
                confidence=round(state.confidence(), 3),
                local_error=local_err,
                calibrated_error=cal_err,
                recent_error=recent,
                bias=bias,
                interval=state.interval(),
                last_usage=self._learner.last_usage,
                memo=self.local.memo_stats(),
                ledger=state.ledger.stats(),
                errors=errors,
                plausibility=self._learner.plausibility.stats(),
                learned=state.calibrator.learned,
            )

    def __repr__(self) -> str:
        """The model, its local counter and how much it has learned."""
        info, points = self.local.info, self._state.calibrator.points
        return (
            f"CalibratedCounter(model={self.model!r}, provider={self.provider!r}, "
            f"counter={info.kind!r}, encoding={info.encoding!r}, reports={points})"
        )
