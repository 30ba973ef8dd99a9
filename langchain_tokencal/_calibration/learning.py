"""Learning: one reported call turned into the facts it teaches.

A report (`Observation`: the prompt, the tools, the usage, the reply) teaches
up to five kinds of fact, each recorded as an event of
`langchain_tokencal.events.SCHEMA` and applied to the `CounterState`:

- ``error``: how far the local and the calibrated counts were from it;
- ``fit``: a regression row (the features of the part that was unknown);
- ``message`` and ``base``: the costs of the messages and of the tool set
  that are not firm, split from the reported remainder by their variances
  and kept with their precision: provisional, and refined by every later
  report that shares them;
- ``prompt``: the whole prompt's count, an exact fact for its repeats and
  the anchor of the prompts that extend it;
- ``message`` (a reply) and ``reply``: the reply's cost from its completion
  tokens, and the correction of such costs.

Reports that cannot be trusted are rejected with a reason
(`langchain_tokencal._reasons`; `plausibility` holds the checks), and teach
nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from langchain_core.messages import AIMessage, BaseMessage

from langchain_tokencal._calibration.design import (
    PER_MESSAGE,
    content_tokens,
    design_row,
    has_images,
)
from langchain_tokencal._calibration.estimate import RESIDUAL_FLOOR
from langchain_tokencal._calibration.ledger import prefix_hashes
from langchain_tokencal._calibration.plausibility import Plausibility
from langchain_tokencal._reasons import IMPLAUSIBLE_RATIO, MULTIMODAL, NO_USAGE
from langchain_tokencal.events import Base, ErrorSample, Message, Prompt

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_tokencal._calibration.state import CounterState
    from langchain_tokencal._counting import LocalCounter
    from langchain_tokencal._features import MessageFeatures, ToolFeatures
    from langchain_tokencal._usage import TokenUsage

__all__ = ["Learner", "Observation", "ReplyParts"]

# A report further than this from the local count is garbage, not a tokenizer
# difference (hidden preambles make ratios of 10x+ on tiny prompts legitimate).
_MAX_RATIO: Final = 50.0
_MIN_RATIO: Final = 0.05
# The reply-cost correction: the median of recent leftovers, each clipped
# (tokens), taken only when the other new messages are estimated at no more
# than _REPLY_SIGNAL tokens (so their own error stays small).
_REPLY_CLIP: Final = 16.0
_REPLY_SIGNAL: Final = 64.0
# Reply texts remembered with their digests (cleared when full).
_REPLIES_KEPT: Final = 4096
# Variance of a report beyond its terms' (tokens squared): merges across
# message boundaries and the like.
_REPORT_VAR: Final = 1.0
# A report whose gap exceeds this many of its spread's sds splits nothing.
_GATE: Final = 5.0
# A provisional cost is re-recorded only if a report moves it this many
# tokens or raises its precision by this share.
_SMALL_MOVE: Final = 0.25
_SMALL_GAIN: Final = 0.25
# Smallest predictive sd a residual is standardized by (tokens).
_MIN_SD: Final = 0.5


class ReplyParts(NamedTuple):
    """What a reply adds to the next prompt, copied out of a model's result."""

    content: str | list[Any]
    tool_calls: list[Any]

    def message(self) -> AIMessage:
        """The reply as the message the next prompt will hold."""
        return AIMessage(content=self.content, tool_calls=self.tool_calls)


class Observation(NamedTuple):
    """One reported call, handed from a callback to a counter.

    The messages are the caller's own objects, held only until the next count
    or flush processes the observation; nothing else is kept. A named tuple:
    one is built inside every model call, where a frozen dataclass costs more.
    """

    messages: Sequence[BaseMessage]
    tools: Sequence[Any] | None
    usage: TokenUsage
    reply: BaseMessage | ReplyParts | None = None


class _Repeat(NamedTuple):
    """A prompt just learned exactly, and the error record a repeat gets."""

    messages: Sequence[BaseMessage]
    tools: Sequence[Any] | None
    reported: int
    error: tuple[float, ...]


class Learner:
    """Turns observations into recorded facts about one model.

    Not thread-safe on its own: `CalibratedCounter` serializes access.

    Args:
        state: The state the facts are applied to.
        local: The model's local counter (features of the reported messages).
        record: Applies a fact to the state and keeps it as an event.
        reject: Counts a report that taught nothing; returns the reason.
    """

    def __init__(
        self,
        state: CounterState,
        local: LocalCounter,
        record: Callable[[str, tuple[Any, ...]], None],
        reject: Callable[[str], str],
    ) -> None:
        """Create a learner for one model's state."""
        self._state = state
        self._local = local
        self._record = record
        self._reject = reject
        self._reply_digests: dict[int, int] = {}
        # The prompt learned last in the current drain, to spot repeats.
        self.last_exact: _Repeat | None = None
        self.last_usage: TokenUsage | None = None
        # Reports that cannot be the prompt's size are rejected before any fact.
        self.plausibility = Plausibility()

    def content_key(self, obs: Observation) -> tuple[Any, ...]:
        """Sort key of reports that tie on size: their content."""
        try:
            return (
                tuple(self._local.feature_batch(obs.messages).digests),
                self._local.tool_features(obs.tools).fingerprint,
            )
        except Exception:  # noqa: BLE001 - learning reports it; order is moot
            return ()

    def learn_next(self, obs: Observation) -> None:
        """Learn from the next report of a drain (a repeat costs almost nothing)."""
        last = self._repeat_of(obs)
        if last is not None:
            self._learn_repeat(obs, last)
        else:
            self.learn(obs)

    def _repeat_of(self, obs: Observation) -> _Repeat | None:
        """The previous report, if ``obs`` reports its prompt and count again.

        Cheap where it matters: the counts differ for a different prompt, and
        a prompt holding the same message objects compares by identity.
        """
        last = self.last_exact
        if (
            last is not None
            and obs.usage.input_tokens == last.reported
            and obs.tools == last.tools
            and obs.messages == last.messages
        ):
            return last
        return None

    def _learn_repeat(self, obs: Observation, last: _Repeat) -> None:
        """Learn from the report of a prompt just learned: what `learn` would.

        The prompt is now known exactly with this count, so the prediction was
        exact and the error record is the one kept for it; only the reply may
        be new.
        """
        self.last_usage = obs.usage
        self._record("error", last.error)
        self._state.repeats += 1
        self._learn_reply(obs, obs.usage)

    def learn(self, obs: Observation) -> str | None:
        """Learn from one report; the reason it was rejected, or None."""
        # What a report changes in the memoized costs is dropped as it is
        # applied (see CounterState.apply): the rest stays valid.
        state, local = self._state, self._local
        usage = obs.usage
        self.last_usage = usage
        reported = usage.input_tokens
        if reported <= 0:
            return self._reject(NO_USAGE)
        feats, tools_f = local.prepare(obs.messages, obs.tools)
        local_total = local.framing + tools_f.local + feats.local_total
        if not _MIN_RATIO * local_total <= reported <= _MAX_RATIO * local_total + 5000:
            return self._reject(IMPLAUSIBLE_RATIO)
        known, unknown, _, exact, anchor = state.split(feats, tools_f)
        why = self.plausibility.check(usage, feats, tools_f, local_total, anchor)
        if why is not None:
            return self._reject(why)
        predicted = known + unknown
        error: tuple[float, ...] = ErrorSample(
            (local_total - reported) / reported, (predicted - reported) / reported
        )
        # A prediction made before any report measures the prior, not the
        # calibration: it would widen every later interval for nothing.
        points = state.calibrator.points
        if points and not exact:
            # Relative to the unknown part plus a floor: the known part (reply
            # costs from completion tokens, derived message costs) errs a little
            # too, and a tiny unknown part must not blow the ratio up. Carried
            # by the same event: one record per report, not two.
            error = (*error, (reported - predicted) / (unknown + RESIDUAL_FLOOR))
            if points >= state.config.min_points:
                # Standardized by the spread the count's interval uses; made
                # only once the fit is past its prior, which it would describe.
                start = anchor[0] if anchor else 0
                sd = math.sqrt(state.spread(feats, tools_f, start))
                z = (reported - predicted) / max(sd, _MIN_SD)
                error = (*error, z, state.situation(tools_f, anchor))
        elif points:
            error = (*error, 0.0)
        self._record("error", error)
        if exact:
            state.repeats += 1
            self.last_exact = _Repeat(obs.messages, obs.tools, reported, error)
            self._learn_reply(obs, usage)
            return None
        start = anchor[0] if anchor else 0
        new = feats[start:]
        totals = feats.vector_sum(start)
        if has_images(totals):
            # Image costs are provider-specific and locally unknowable without
            # dimensions: keep the exact prompt count, skip the regression.
            self._reject(MULTIMODAL)
        else:
            self._fit(new, totals, tools_f, anchor, reported)
        # Costs after the fit: split against estimates that have seen this
        # report, so that what the regression explains is not left over.
        self._allocate(new, tools_f, anchor, reported)
        digests = feats.digests
        if digests:
            prompt_hash = prefix_hashes(tools_f.fingerprint, digests)[-1]
            fact = Prompt(
                tools_f.fingerprint, digests[0], digests[-1], prompt_hash, reported
            )
            self._record("prompt", fact)
            # Reported again, this prompt is an exact hit: a zero error.
            again = (error[0], 0.0, 0.0) if state.calibrator.points else (error[0], 0.0)
            self.last_exact = _Repeat(obs.messages, obs.tools, reported, again)
        else:
            state.ledger.record(tools_f.fingerprint, digests, reported)
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
        if anchor is None:
            x = design_row(totals, tools_f)
            local = float(self._local.framing + tools_f.local)
            target = float(reported)
        else:
            x = design_row(totals, None)
            local = 0.0
            target = float(reported - anchor[1])
        for f in new:
            local += f.local
        self._record("fit", (*x, target - local, local))

    def _allocate(
        self,
        new: Sequence[MessageFeatures],
        tools_f: ToolFeatures,
        anchor: tuple[int, int] | None,
        reported: int,
    ) -> None:
        """Split the newly reported tokens over the costs that are not firm.

        Each cost that is unknown (an estimate) or provisional (split out of
        earlier reports) is a Gaussian term with its variance; the report says
        their sum. Each term moves by its share of the variance towards what
        the report implies, and its precision grows: the joint posterior of
        the terms, one report at a time. So a first report's split is as
        tentative as the estimates behind it, a shared system prompt converges
        on what all the reports that hold it imply, and a new tool set's base,
        far less certain than messages the fit knows, takes its residual.
        """
        remainder, terms, estimated, replies, provisional = self._terms(
            new, tools_f, anchor
        )
        remainder += float(reported - anchor[1]) if anchor is not None else reported
        if (
            anchor is not None
            and replies == 1
            and len(terms) == 1
            and 0 < estimated <= _REPLY_SIGNAL
        ):
            self._learn_reply_bias(remainder - estimated)
        if not terms:
            return
        total_var = _REPORT_VAR + sum(v for _, _, v in terms)
        gap = remainder - sum(m for _, m, _ in terms)
        # Far outside the spread, the firm costs are stale or the report is
        # odd: leave the costs alone and let the regression weigh it.
        if gap * gap > _GATE * _GATE * total_var:
            return
        fingerprint = tools_f.fingerprint
        for digest, mean, var in terms:
            value = mean + gap * var / total_var
            # The posterior precision: the term's own, plus what the report
            # says about it given the others' spread.
            gain = var / max(total_var - var, _REPORT_VAR)
            weight = (1.0 + gain) / var
            if (
                digest in provisional
                and abs(value - mean) < _SMALL_MOVE
                and gain < _SMALL_GAIN
            ):
                # A cost this report barely refines: not worth an event (a
                # sliding window re-reports dozens of known messages per call).
                continue
            if digest is None:
                if tools_f.count:  # without tools the regression has the base
                    self._record("base", Base(fingerprint, value, weight))
            else:
                self._record("message", Message(digest, value, 0, weight))

    def _terms(
        self,
        new: Sequence[MessageFeatures],
        tools_f: ToolFeatures,
        anchor: tuple[int, int] | None,
    ) -> tuple[
        float, list[tuple[int | None, float, float]], float, int, set[int | None]
    ]:
        """The costs a report's remainder is split over.

        Returns:
            Minus the firm costs; the terms ``(digest, or None for the base,
            mean, variance)``; the sum of the unknown estimates; the replies
            among the firm costs; the terms that were provisional already.
        """
        state = self._state
        ledger = state.ledger
        firm = estimated = 0.0
        replies = 0
        terms: list[tuple[int | None, float, float]] = []
        provisional: set[int | None] = set()
        cost_of = state.cost
        for f in new:
            cost, learned = cost_of(f)
            if not learned:
                terms.append((f.digest, cost, state.message_variance(f)))
                estimated += cost
                continue
            weight = ledger.message_weight(f.digest)
            if weight > 0.0:
                terms.append((f.digest, cost, 1.0 / weight))
                provisional.add(f.digest)
            else:
                firm += cost
                replies += f.digest in state.replies
        if anchor is None:
            base, base_known = state.base(tools_f)
            weight = ledger.base_weight(tools_f.fingerprint)
            if not base_known:
                terms.append((None, base, state.base_variance(tools_f)))
            elif weight > 0.0:
                terms.append((None, base, 1.0 / weight))
                provisional.add(None)
            else:
                firm += base
        return -firm, terms, estimated, replies, provisional

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
        ledger = self._state.ledger
        key = None
        if isinstance(reply, ReplyParts):
            if isinstance(reply.content, str) and not reply.tool_calls:
                # A reply seen before (a repeated prompt, an LLM cache) is
                # recognized from its text alone, without building a message.
                key = hash(reply.content)
                digest = self._reply_digests.get(key)
                if digest is not None and ledger.message_cost(digest) is not None:
                    return
            reply = reply.message()
        (f,) = self._local.message_features([reply])
        if key is not None:
            if len(self._reply_digests) >= _REPLIES_KEPT:
                self._reply_digests.clear()
            self._reply_digests[key] = f.digest
        if ledger.message_cost(f.digest) is not None:
            return
        visible = usage.output_tokens - usage.reasoning
        coef = self._state.calibrator.coefficients
        overhead = (
            f.local - content_tokens(f.vector) + coef[PER_MESSAGE]
        ) + self._state.reply_adjust
        if visible > 0:
            self._record("message", Message(f.digest, max(visible + overhead, 1.0), 1))
