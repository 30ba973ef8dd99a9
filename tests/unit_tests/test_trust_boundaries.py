"""What comes from a store, a file or a callback is validated, never fatal.

A damaged row, a crafted line, an out-of-range event, a model name that is
not text, a hook called with odd arguments: each is skipped or rejected with
a reason, and the handler goes on. Fuzz tests feed arbitrary input to the
decoders and the replay.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import uuid
from contextlib import closing
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, LLMResult

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.events import (
    EVENT_KINDS,
    EventError,
    LearnEvent,
    check_event,
    decode_event,
    encode_event,
    read_events,
)
from langchain_tokencal.storage import SQLiteStore, StoreError
from langchain_tokencal.storage._base import check_model

if TYPE_CHECKING:
    from pathlib import Path

MODEL = "fake-claude"
USAGE = {"input_tokens": 120, "output_tokens": 7, "total_tokens": 127}
HISTORY = [HumanMessage("What is the capital of France? Answer in one word.")]


def learned_events() -> list[LearnEvent]:
    """What a handler learns from one report of `HISTORY`."""
    handler = TokenCalibrationHandler()
    handler.observe(HISTORY, USAGE, MODEL, provider="anthropic")
    handler.flush()
    events, _ = handler._sync.journal.read()
    return events


def nested(depth: int) -> str:
    """A short line of ``depth`` nested brackets."""
    return "[" * depth + "]" * depth


class TestDamagedRows:
    """A bad row in a SQLite file is skipped and counted; the rest is read."""

    def test_non_utf8_row(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A row whose bytes are not UTF-8 does not make the file unreadable."""
        path = tmp_path / "calibration.db"
        with closing(SQLiteStore(path)) as store:
            store.append(learned_events())
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(
                "INSERT INTO tokencal_events (model, line) "
                "VALUES ('m', CAST(x'5b22ff22fe5d' AS TEXT))"
            )
        with caplog.at_level(logging.WARNING):
            handler = TokenCalibrationHandler(store=f"sqlite:///{path}")
        assert handler.store_error is None
        assert handler.count_messages(HISTORY, model=MODEL) == USAGE["input_tokens"]
        assert "skipped 1 corrupt event(s)" in caplog.text
        handler.close()

    def test_deeply_nested_line(self, tmp_path: Path) -> None:
        """5,000 nested brackets in a row or a file are refused, not a RecursionError."""
        with pytest.raises(EventError, match="nested"):
            decode_event(nested(5000))
        path = tmp_path / "calibration.db"
        with closing(SQLiteStore(path)) as store:
            store.append(learned_events())
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(
                "INSERT INTO tokencal_events (model, line) VALUES ('m', ?)",
                (nested(5000),),
            )
        handler = TokenCalibrationHandler(store=f"sqlite:///{path}")
        assert handler.flush() is True
        handler.close()
        file = tmp_path / "cal.jsonl"
        header = json.dumps({"format": "langchain-tokencal-calibration", "version": 1})
        file.write_text(f"{header}\n{nested(5000)}\n", encoding="utf-8")
        assert read_events(file) == []

    def test_long_line(self) -> None:
        """A line past the size limit is refused before it is parsed."""
        with pytest.raises(EventError, match="too long"):
            decode_event('["m","reject",["' + "x" * 100_000 + '"],"o",0]')

    def test_brackets_inside_strings_are_not_nesting(self) -> None:
        """A model name full of brackets still decodes."""
        event = LearnEvent("[[[[{{{{", "meta", ("openai",), "o", 0.0, 1)
        assert decode_event(encode_event(event)) == event


class TestRanges:
    """Replayed and imported events are range-checked."""

    @pytest.mark.parametrize(
        ("kind", "values"),
        [
            pytest.param("prompt", (1, 2, 3, 4, -(10**9)), id="negative-tokens"),
            pytest.param("prompt", (1, 2, 3, 4, 10**12), id="absurd-tokens"),
            pytest.param("error", (1e300, 1e300), id="absurd-error"),
            pytest.param("message", (1, -5e9, 0), id="absurd-cost"),
            pytest.param("message", (1.5, 3.0, 0), id="float-digest"),
            pytest.param("message", (1, 3.0, 7), id="reply-flag"),
            pytest.param("reject", ("x", -3), id="negative-rejects"),
            pytest.param("meta", ("x" * 1000,), id="long-string"),
            pytest.param("prompt", (1, 2, 3, 4, "5"), id="string-count"),
        ],
    )
    def test_out_of_range_is_refused(self, kind: str, values: tuple[Any, ...]) -> None:
        """An event no counter could have learned raises EventError."""
        with pytest.raises(EventError):
            check_event(LearnEvent(MODEL, kind, values, "o", 0.0))

    def test_learned_events_pass(self) -> None:
        """Everything a counter learns passes the checks."""
        for event in learned_events():
            check_event(event)

    def test_tampered_prompt_is_not_replayed(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A copied prompt event with -1e9 tokens cannot make a count negative."""
        tampered = [
            LearnEvent(e.model, e.kind, (*e.values[:4], -(10**9)), "evil", e.at)
            if e.kind == "prompt"
            else e
            for e in learned_events()
        ]
        assert any(e.kind == "prompt" for e in tampered)
        path = tmp_path / "calibration.db"
        with closing(SQLiteStore(path)) as store:
            store.append(tampered)
        with caplog.at_level(logging.WARNING):
            handler = TokenCalibrationHandler(store=f"sqlite:///{path}")
        estimate = handler.estimate(HISTORY, model=MODEL)
        assert estimate.tokens > 0
        assert estimate.source != "exact"
        assert "out of range" in caplog.text
        handler.close()

    def test_absurd_errors_do_not_widen_the_interval(self) -> None:
        """Error events of 1e300 are skipped: the interval stays finite and sane."""
        handler = TokenCalibrationHandler()
        handler.observe(HISTORY, USAGE, MODEL, provider="anthropic")
        bad = [LearnEvent(MODEL, "error", (1e300, 1e300, 1e300, 1e300), "x", 0.0)]
        handler._sync.ingest(bad * 50, publish=False)
        estimate = handler.estimate([*HISTORY, AIMessage("Paris")], model=MODEL)
        assert math.isfinite(estimate.high)
        assert estimate.high < 10_000


class TestModelNames:
    """Model names a store cannot keep are refused with a clear error."""

    @pytest.mark.parametrize("name", ["bad\ud800name", 5, "", "x" * 600])
    def test_check_model(self, name: object) -> None:
        """Not text, empty, too long or not encodable: ConfigError naming the rule."""
        with pytest.raises(ConfigError, match="UTF-8 text"):
            check_model(name)

    def test_surrogate_model_leaves_no_lock(self, tmp_path: Path) -> None:
        """A lone surrogate never raises from flush, nor keeps the file locked."""
        path = tmp_path / "calibration.db"
        handler = TokenCalibrationHandler(store=f"sqlite:///{path}", sync_interval=3600)
        handler.observe(HISTORY, USAGE, "bad\ud800model", provider="anthropic")
        handler.observe(HISTORY, USAGE, MODEL, provider="anthropic")
        assert handler.flush() is True
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        with closing(SQLiteStore(path)) as store:
            assert {e.model for e in store.read()[0]} == {MODEL}
            with pytest.raises(ConfigError):
                store.add_usage("bad\ud800", [0] * 8)
            store.append([LearnEvent(MODEL, "residual", (0.1,), "o", 0.0)])
        handler.close()

    def test_store_refuses_surrogates_in_values(self, tmp_path: Path) -> None:
        """A value sqlite3 cannot bind is a ConfigError, and the lock is released."""
        with closing(SQLiteStore(tmp_path / "x.db", timeout=0)) as store:
            with pytest.raises(ConfigError):
                store.append([LearnEvent(MODEL, "reject", ("\udc80",), "o", 0.0)])
            store.append([LearnEvent(MODEL, "residual", (0.1,), "o", 0.0)])


class TestHooks:
    """Hooks called with odd arguments neither raise nor lose the run's usage."""

    @pytest.fixture
    def handler(self) -> TokenCalibrationHandler:
        """A strict handler: a contained bug would raise here."""
        handler = TokenCalibrationHandler()
        handler.raise_error = True
        return handler

    def test_unhashable_run_id(self, caplog: pytest.LogCaptureFixture) -> None:
        """on_llm_error and on_llm_new_token with an unhashable run_id log, never raise."""
        quiet = TokenCalibrationHandler()
        odd: Any = ["not", "hashable"]
        with caplog.at_level(logging.ERROR):
            quiet.on_llm_error(RuntimeError("boom"), run_id=odd)
            message = AIMessageChunk(content="x", usage_metadata=USAGE)  # type: ignore[arg-type]
            chunk = ChatGenerationChunk(message=message)
            quiet.on_llm_new_token("x", chunk=chunk, run_id=odd)
        assert quiet.pending_runs == 0

    @pytest.mark.parametrize(
        "usage",
        ["not a dict", ["a"], {"input_tokens": "many"}, {"input_tokens": -4}],
        ids=["string", "list", "string-count", "negative"],
    )
    def test_odd_chunk_usage(
        self, handler: TokenCalibrationHandler, usage: Any
    ) -> None:
        """A chunk with odd usage is rejected with a reason; the run still bills."""
        run_id = uuid.uuid4()
        serialized = {"kwargs": {"model": MODEL}}
        handler.on_chat_model_start(
            serialized,
            [HISTORY],
            run_id=run_id,
            metadata={"ls_model_name": MODEL, "ls_provider": "anthropic"},
        )
        chunk = AIMessageChunk(content="Par")
        object.__setattr__(chunk, "usage_metadata", usage)
        handler.on_llm_new_token(
            "Par", chunk=ChatGenerationChunk(message=chunk), run_id=run_id
        )
        reply = AIMessage("Paris", usage_metadata=USAGE)  # type: ignore[arg-type]
        result = LLMResult(generations=[[ChatGeneration(message=reply)]])
        handler.on_llm_end(result, run_id=run_id)
        assert handler.usage[MODEL]["input_tokens"] == USAGE["input_tokens"]
        assert handler.stats()[MODEL].rejected == {"odd streamed usage": 1}


class TestStoreFiles:
    """SQLite files: timeouts, read-only opening."""

    @pytest.mark.parametrize("timeout", [math.nan, math.inf, -1.0, 1e308])
    def test_bad_timeout(self, tmp_path: Path, timeout: float) -> None:
        """A timeout that is not a finite number of seconds is a ConfigError."""
        with pytest.raises(ConfigError, match="timeout"):
            SQLiteStore(tmp_path / "x.db", timeout=timeout)

    def test_read_only(self, tmp_path: Path) -> None:
        """``mode=ro`` reads a file in a read-only folder and refuses writes."""
        folder = tmp_path / "ro"
        folder.mkdir()
        path = folder / "calibration.db"
        with closing(SQLiteStore(path)) as store:
            store.append(learned_events())
        path.chmod(0o400)
        folder.chmod(0o500)
        try:
            handler = TokenCalibrationHandler(store=f"sqlite:///{path}?mode=ro")
            assert handler.count_messages(HISTORY, model=MODEL) == 120
            handler.close()
            with closing(SQLiteStore(path, read_only=True)) as store:
                assert store.read()[0]
                with pytest.raises(StoreError):
                    store.append([LearnEvent(MODEL, "residual", (0.1,), "o", 0.0)])
        finally:
            folder.chmod(0o700)
            path.chmod(0o600)

    def test_created_folders_are_private(self, tmp_path: Path) -> None:
        """Every folder the store creates is 0700, whatever the umask."""
        import os  # noqa: PLC0415 - only here

        old = os.umask(0)
        try:
            SQLiteStore(tmp_path / "a" / "b" / "x.db").close()
        finally:
            os.umask(old)
        for folder in (tmp_path / "a", tmp_path / "a" / "b"):
            assert folder.stat().st_mode & 0o777 == 0o700


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)
values = st.lists(
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    max_size=25,
)
events = st.builds(
    LearnEvent,
    st.text(max_size=20),
    st.sampled_from(sorted(EVENT_KINDS)),
    values.map(tuple),
    st.text(max_size=10),
    st.floats(allow_nan=False),
    st.integers(min_value=0, max_value=2**40),
)
FUZZ = settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


class TestFuzz:
    """Arbitrary input raises nothing but EventError, and poisons no handler."""

    @FUZZ
    @given(st.text(max_size=300) | st.binary(max_size=300))
    def test_decode_text(self, line: str | bytes) -> None:
        """Any text or bytes decode to an event or raise EventError."""
        with contextlib.suppress(EventError):
            decode_event(line)

    @FUZZ
    @given(json_values)
    def test_decode_json(self, value: object) -> None:
        """Any JSON document decodes to an event or raises EventError."""
        with contextlib.suppress(EventError):
            decode_event(json.dumps(value))

    @FUZZ
    @given(events)
    def test_check_and_replay(self, event: LearnEvent) -> None:
        """Any event is refused with EventError or replays without raising."""
        try:
            check_event(event)
        except EventError:
            return
        handler = TokenCalibrationHandler()
        handler._sync.ingest([event], publish=False)
        estimate = handler.estimate(HISTORY, model=event.model or MODEL)
        assert estimate.tokens >= 0
        assert math.isfinite(estimate.high)

    @settings(
        max_examples=2000,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(st.lists(st.text(max_size=80), max_size=5))
    def test_read_events_file(self, tmp_path: Path, lines: list[str]) -> None:
        """A calibration file with arbitrary lines is read or refused with EventError."""
        header = json.dumps({"format": "langchain-tokencal-calibration", "version": 1})
        path = tmp_path / "fuzz.jsonl"
        path.write_text("\n".join([header, *lines]), encoding="utf-8", errors="replace")
        with contextlib.suppress(EventError):
            read_events(path)


class TestImportCommand:
    """``tokencal import`` of a crafted file: no traceback, nothing poisoned."""

    def test_crafted_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A nested line refuses the file; out-of-range lines are skipped, once only."""
        from langchain_tokencal.cli import main  # noqa: PLC0415 - the top layer

        header = json.dumps({"format": "langchain-tokencal-calibration", "version": 1})
        lines = [
            header,
            '["m","prompt",[1,2,3,4,-1000000000],"x",0.0]',
            '["m","error",[1e300,1e300],"x",0.0]',
            '["m","meta",["openai"],"x",0.0]',
        ]
        file = tmp_path / "crafted.jsonl"
        url = f"sqlite:///{tmp_path / 'calibration.db'}"
        file.write_text("\n".join([*lines, nested(5000)]) + "\n", encoding="utf-8")
        assert main(["--store", url, "import", str(file)]) == 1
        assert "1 malformed line(s)" in capsys.readouterr().err
        file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert main(["--store", url, "import", str(file)]) == 0
        assert "2 out of range were skipped" in capsys.readouterr().out
        assert main(["--store", url, "import", str(file)]) == 0
        assert "nothing to import" in capsys.readouterr().out
        with closing(SQLiteStore(tmp_path / "calibration.db")) as store:
            assert [e.kind for e in store.read()[0]] == ["meta"]


class TestOddInput:
    """A cyclic tool schema and a computed total beyond the bound."""

    def test_cyclic_tool_schema(self) -> None:
        """A schema inside itself is a ConfigError naming the fix, no RecursionError."""
        schema: dict[str, Any] = {"type": "object", "properties": {}}
        schema["properties"]["self"] = schema
        tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
        handler = TokenCalibrationHandler()
        for model in ("gpt-4o", "claude-sonnet-4-5"):
            with pytest.raises(ConfigError, match="cyclic"):
                handler.count_messages(HISTORY, model=model, tools=[tool])

    def test_computed_total_is_bounded(self) -> None:
        """Input and output that sum past 1e9 are refused like a reported total."""
        from langchain_tokencal import parse_usage  # noqa: PLC0415

        big = {"prompt_tokens": 600_000_000, "completion_tokens": 600_000_000}
        assert parse_usage(big) is None
        assert parse_usage({**big, "total_tokens": 1_200_000_000}) is None
        assert parse_usage({"prompt_tokens": 6, "completion_tokens": 7}) is not None


class TestCounterObserve:
    """create_counter(...).observe takes what handler.observe takes."""

    def test_usage_dict_and_payloads(self) -> None:
        """A usage dict is learned; a payload without usage is a 'no usage' reason."""
        from langchain_tokencal import create_counter  # noqa: PLC0415

        counter = create_counter("claude-sonnet-4-5")
        assert (
            counter.observe(HISTORY, {"input_tokens": 31, "output_tokens": 2}) is None
        )
        assert counter.count(HISTORY) == 31
        for bad in ({"nothing": 1}, "twelve", -5, None, True):
            assert counter.observe(HISTORY, bad) == "no usage"
        assert counter.stats().rejected["no usage"] == 5


class TestUncountedMedia:
    """A PDF or audio block counts 0 tokens locally, and says so once."""

    def test_warns_once_per_kind(self, caplog: pytest.LogCaptureFixture) -> None:
        """One warning naming the block type, not one per count."""
        import base64  # noqa: PLC0415

        from langchain_tokencal._counting import parts  # noqa: PLC0415

        parts._warned.clear()
        data = base64.b64encode(b"%PDF-1.7 " * 40_000).decode()
        pdf = {
            "type": "file",
            "source_type": "base64",
            "mime_type": "application/pdf",
            "data": data,
        }
        message = HumanMessage(content=[{"type": "text", "text": "summarize"}, pdf])
        handler = TokenCalibrationHandler()
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                handler.count_messages([message], model="gpt-4o")
        hits = [r for r in caplog.records if "'file' content blocks" in r.getMessage()]
        assert len(hits) == 1
        assert "count 0 tokens locally" in hits[0].getMessage()
