"""Learned knowledge as events: encoding, and replay into a fresh counter."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_tokencal import CalibratedCounter, create_counter
from langchain_tokencal.events import (
    EVENT_KINDS,
    EventError,
    LearnEvent,
    decode_event,
    encode_event,
)
from langchain_tokencal.testing import FakeUsageChatModel

CANARY = "zebra-canary-7731"


def _conversation(turns: int) -> tuple[list, FakeUsageChatModel]:
    llm = FakeUsageChatModel(model="fake-claude", tool_preamble_tokens=300)
    history: list = [SystemMessage(f"You are terse. {CANARY}")]
    prompts = []
    for i in range(turns):
        history.append(HumanMessage(f"Question {i} {CANARY}: 你好, how are you?"))
        reply = llm.invoke(history)
        prompts.append((list(history), reply))
        history.append(reply)
    return prompts, llm


class TestEncoding:
    """One JSON line per event."""

    def test_round_trip(self) -> None:
        """Decoding an encoded event gives it back."""
        event = LearnEvent("m", "fit", (1.0, 0.0, 3.5, 12), "origin", 1.5)
        assert decode_event(encode_event(event)) == event

    def test_large_digests_survive(self) -> None:
        """Unsigned 64-bit digests round-trip exactly."""
        event = LearnEvent("m", "message", (2**64 - 1, 3.25, 1), "o", 0.0)
        assert decode_event(encode_event(event)).values[0] == 2**64 - 1

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("not json", id="garbage"),
            pytest.param('["m","nope",[],"o",0]', id="unknown-kind"),
            pytest.param('["m","fit",[true],"o",0]', id="boolean-value"),
            pytest.param('["m","fit",[[1]],"o",0]', id="nested-value"),
            pytest.param('["m","fit",[],"o"]', id="short"),
            pytest.param('{"model": "m"}', id="object"),
        ],
    )
    def test_rejects_malformed_lines(self, line: str) -> None:
        """A malformed line is an EventError naming it, never another exception."""
        with pytest.raises(EventError):
            decode_event(line)

    def test_nan_is_not_encoded(self) -> None:
        """Non-finite values are refused rather than written as invalid JSON."""
        with pytest.raises(ValueError, match="JSON"):
            encode_event(LearnEvent("m", "fit", (float("nan"),), "o", 0.0))


def _listened() -> tuple[CalibratedCounter, list[LearnEvent]]:
    """A fresh counter and the list its listener publishes events into."""
    counter = create_counter("fake-claude", provider="anthropic")
    events: list[LearnEvent] = []
    counter.listener = events.extend
    return counter, events


class TestReplay:
    """A counter rebuilt from events counts like the one that learned them."""

    def test_replayed_counter_estimates_identically(self) -> None:
        """Every estimate of the replayed counter equals the original's."""
        prompts, _ = _conversation(8)
        original, events = _listened()
        for prompt, reply in prompts:
            original.observe(prompt, reply.usage_metadata["input_tokens"], reply=reply)
        assert {e.kind for e in events} <= EVENT_KINDS
        copy = create_counter("fake-claude", provider="anthropic")
        assert copy.replay(events) == len(events)
        probe = [*prompts[-1][0], prompts[-1][1], HumanMessage("And now?")]
        for messages in (probe, probe[:3], probe[-4:]):
            assert copy.estimate(messages) == original.estimate(messages)
        assert copy.stats().coefficients == original.stats().coefficients

    def test_the_listener_gets_each_event_once(self) -> None:
        """A second report publishes only what was learned since the first."""
        prompts, _ = _conversation(2)
        counter, events = _listened()
        counter.observe(prompts[0][0], prompts[0][1].usage_metadata["input_tokens"])
        first = list(events)
        counter.observe(prompts[1][0], prompts[1][1].usage_metadata["input_tokens"])
        assert first
        assert events[: len(first)] == first
        assert len(events) > len(first)

    @pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
    def test_every_declared_kind_replays(
        self, kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Each kind of the schema is applied by replay, none skipped."""
        prompts, _ = _conversation(3)
        source, events = _listened()
        for prompt, reply in prompts:
            source.observe(prompt, reply.usage_metadata["input_tokens"], reply=reply)
        source.reject("no usage")
        source.flush()
        samples = {
            "residual": (0.01,),
            # Without tools the framing is the regression's: no base event.
            "base": (12345, 300.0, 0.01),
            "reply": (2.0,),
            "meta": ("anthropic", "fake-claude-2026-01-01"),
        }
        chosen = [e for e in events if e.kind == kind] or [
            LearnEvent("fake-claude", kind, samples[kind], "o", 0.0)
        ]
        copy = create_counter("fake-claude", provider="anthropic")
        assert copy.replay(chosen) == len(chosen)
        assert "skipped" not in caplog.text

    def test_usage_is_not_an_event_kind(self) -> None:
        """Usage sums live in the store's totals, not in the event log."""
        assert "usage" not in EVENT_KINDS
        with pytest.raises(EventError):
            decode_event('["m","usage",[1,2,3],"o",0.0]')

    @pytest.mark.parametrize(
        ("kind", "values"),
        [
            pytest.param("prompt", [1, 2, 3], id="prompt-short"),
            pytest.param("message", [1, 2.0, 0, 9.0, 1], id="message-long"),
            pytest.param("fit", [1.0], id="fit-short"),
            pytest.param("error", [0.1], id="error-short"),
        ],
    )
    def test_replay_skips_values_the_schema_does_not_admit(
        self, kind, values, caplog: pytest.LogCaptureFixture
    ):
        """An event whose value count does not fit its kind is skipped, logged."""
        counter = create_counter("fake-claude", provider="anthropic")
        event = LearnEvent("fake-claude", kind, tuple(values), "o", 0.0)
        assert counter.replay([event]) == 0
        assert f"skipped a malformed {kind} event" in caplog.text

    def test_replayed_events_are_not_handed_out_again(self) -> None:
        """Events from elsewhere are applied, not re-published."""
        prompts, _ = _conversation(2)
        source, events = _listened()
        source.observe(prompts[0][0], prompts[0][1].usage_metadata["input_tokens"])
        target, republished = _listened()
        target.replay(events)
        target.flush()
        assert republished == []

    def test_malformed_event_is_skipped(self, caplog: pytest.LogCaptureFixture) -> None:
        """A bad event is logged and skipped; the good ones still apply."""
        counter = create_counter("fake-claude", provider="anthropic")
        events = [
            LearnEvent("fake-claude", "fit", (1.0,), "o", 0.0),
            LearnEvent("fake-claude", "reject", ("no usage",), "o", 0.0),
        ]
        assert counter.replay(events) == 1
        assert counter.stats().rejected == {"no usage": 1}
        assert "malformed fit event" in caplog.text

    def test_events_hold_no_prompt_text(self) -> None:
        """No encoded event contains any text of the prompts or replies."""
        prompts, _ = _conversation(6)
        counter, events = _listened()
        for prompt, reply in prompts:
            counter.observe(prompt, reply.usage_metadata["input_tokens"], reply=reply)
        lines = [encode_event(e) for e in events]
        assert lines
        blob = "\n".join(lines)
        assert CANARY not in blob
        assert "how are you" not in blob
        reply_words = {
            w for _, r in prompts for w in str(r.content).split() if len(w) > 8
        }
        assert not any(w in blob for w in reply_words)
        for line in lines:
            json.loads(line)

    def test_reply_costs_replay(self) -> None:
        """A reply's completion-derived cost survives replay."""
        prompts, _ = _conversation(2)
        original, events = _listened()
        prompt, reply = prompts[0]
        original.observe(prompt, reply.usage_metadata["input_tokens"], reply=reply)
        copy = create_counter("fake-claude", provider="anthropic")
        copy.replay(events)
        nxt = [*prompt, AIMessage(reply.content), HumanMessage("ok?")]
        assert (
            copy.estimate(nxt).known_messages == original.estimate(nxt).known_messages
        )
