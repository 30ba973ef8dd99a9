"""The `tokencal` command, driven through `main([...])`."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_tokencal import CounterConfig, local_counter
from langchain_tokencal.cli import main
from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from pathlib import Path

    from langchain_core.tracers.schemas import Run

QUESTIONS = (
    "Where is order 48213? The customer says it was due on Tuesday.",
    "客户说包裹在海关被扣留了。请写一段简短的道歉信。",
    "Give me a JSON object with fields order, delayed_days and next_action.",
    "Write a SQL query returning all orders held at customs, newest first.",
    "Summarize the case in three bullet points for the ticket.",
)

SUBCOMMANDS = (
    "count",
    "calibrate",
    "stats",
    "health",
    "export",
    "import",
    "encodings",
    "demo",
)


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


@pytest.fixture(autouse=True)
def default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the default store at this test's folder, never the per-user file."""
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("TOKENCAL_STORE", url)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return url


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store URL in this test's folder (not the default one)."""
    return f"sqlite:///{tmp_path / 'calibration.db'}"


def write_log(
    path: Path,
    turns: int = 12,
    *,
    model: str | None = "fake-claude",
    tag: str = "",
    tools: bool = False,
) -> list[dict[str, Any]]:
    """A log of real calls: serialized messages and each reply's usage_metadata."""
    llm = FakeUsageChatModel(model=model or "fake-claude")
    schemas = [convert_to_openai_tool(get_weather)] if tools else None
    bound = llm.bind_tools([get_weather]) if tools else llm
    lines = []
    history: list[BaseMessage] = [SystemMessage("You are a terse support agent.")]
    for i in range(turns):
        history.append(HumanMessage(f"{tag}{QUESTIONS[i % len(QUESTIONS)]} ({i})"))
        reply = bound.invoke(history)
        line: dict[str, Any] = {
            "messages": [dumpd(m) for m in history],
            "usage": reply.usage_metadata,
        }
        if model:
            line["model"] = model
        if schemas:
            line["tools"] = schemas
        lines.append(line)
        history.append(reply)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


class _FakeLangSmithClient:
    """Stands in for the LangSmith SDK client: keeps the runs it is sent."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []


class _Recorder(LangChainTracer):
    """LangChain's own tracer, with the upload replaced by a record."""

    raise_error = True

    def _persist_run_single(self, run: Run) -> None:
        pass

    def _update_run_single(self, run: Run) -> None:  # type: ignore[override]
        exclude = {"ls_client", "child_runs", "parent_run"}
        self.client.runs.append(run.model_dump(mode="json", exclude=exclude))  # type: ignore[attr-defined]


def write_langsmith_export(path: Path, turns: int = 8) -> list[dict[str, Any]]:
    """Runs traced by LangChain's LangSmith tracer, one exported run per line."""
    client = _FakeLangSmithClient()
    tracer = _Recorder(client=client)  # type: ignore[arg-type]
    llm = FakeUsageChatModel(model="fake-gemini", provider="google_genai")
    bound = llm.bind_tools([get_weather])
    history: list[BaseMessage] = [SystemMessage("Answer in one line.")]
    for i in range(turns):
        history.append(HumanMessage(f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"))
        history.append(bound.invoke(history, config={"callbacks": [tracer]}))
    runs = client.runs
    # A chain run in the same export is not a chat model call.
    runs.append({"run_type": "chain", "inputs": {"input": "x"}, "outputs": {}})
    path.write_text("".join(json.dumps(run) + "\n" for run in runs))
    return runs


def _stats_json(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["--store", url, "stats", "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def fails_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `main(argv)`: it exits 1 with one error line on stderr, returned."""
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("tokencal: error: ")
    return lines[0]


# One logged call; read only where the command refuses it before learning.
LOG_LINE = json.dumps(
    {
        "model": "fake-claude",
        "messages": [["user", "hi"]],
        "usage": {"input_tokens": 8, "output_tokens": 2, "total_tokens": 10},
    }
)
HI = '[["user", "hi"]]'


class TestHelp:
    """`tokencal --help`."""

    def test_lists_every_subcommand(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The help names each subcommand and the store option."""
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        for command in SUBCOMMANDS:
            assert command in out
        assert "--store URL" in out


class TestCount:
    """`tokencal count`."""

    def test_counts_a_message_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A JSON list of messages prints tokens, interval and source."""
        path = tmp_path / "messages.json"
        path.write_text(json.dumps([{"role": "user", "content": "Hello there!"}]))
        assert main(["count", "--model", "gpt-4o", str(path)]) == 0
        out = capsys.readouterr().out
        expected = local_counter("gpt-4o")([("user", "Hello there!")])
        assert out.startswith(f"{expected} tokens")
        assert "source=local" in out

    def test_reads_stdin(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`-` reads the messages from standard input."""
        monkeypatch.setattr("sys.stdin", io.StringIO('[["user", "hi"]]'))
        assert main(["count", "--model", "gpt-4o", "-"]) == 0
        assert "tokens" in capsys.readouterr().out

    def test_serialized_messages_count_like_role_dicts(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """LangChain serialized messages give the same count as role dicts."""
        roles = tmp_path / "roles.json"
        roles.write_text(
            json.dumps(
                [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hello there!"},
                ]
            )
        )
        serialized = tmp_path / "lc.json"
        serialized.write_text(
            json.dumps(
                [dumpd(SystemMessage("Be brief.")), dumpd(HumanMessage("Hello there!"))]
            )
        )
        main(["count", "--model", "gpt-4o", str(roles)])
        first = capsys.readouterr().out
        main(["count", "--model", "gpt-4o", str(serialized)])
        assert capsys.readouterr().out == first

    def test_tools_file_adds_tokens(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tools file makes the count larger."""
        messages = tmp_path / "m.json"
        messages.write_text('[["user", "weather in Paris?"]]')
        tools = tmp_path / "t.json"
        tools.write_text(json.dumps([convert_to_openai_tool(get_weather)]))
        main(["count", "--model", "gpt-4o", str(messages)])
        without = int(capsys.readouterr().out.split()[0])
        main(["count", "--model", "gpt-4o", "--tools", str(tools), str(messages)])
        with_tools = int(capsys.readouterr().out.split()[0])
        assert with_tools > without

    def test_a_single_tool_schema(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tools file holding one schema, not a list, counts like a list of it."""
        messages = tmp_path / "m.json"
        messages.write_text('[["user", "weather in Paris?"]]')
        one, listed = tmp_path / "one.json", tmp_path / "list.json"
        one.write_text(json.dumps(convert_to_openai_tool(get_weather)))
        listed.write_text(json.dumps([convert_to_openai_tool(get_weather)]))
        counts = []
        for tools in (one, listed):
            assert (
                main(
                    ["count", "--model", "gpt-4o", "--tools", str(tools), str(messages)]
                )
                == 0
            )
            counts.append(int(capsys.readouterr().out.split()[0]))
        assert counts[0] == counts[1]

    def test_memory_store_says_nothing_was_saved(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A calibration into memory:// does not claim to have saved anything."""
        write_log(tmp_path / "log.jsonl", turns=2)
        main(["--store", "memory://", "calibrate", str(tmp_path / "log.jsonl")])
        out = capsys.readouterr().out
        assert "saved in" not in out
        assert "nothing was saved" in out

    def test_uses_the_stored_calibration(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """After calibrate, a logged prompt is counted exactly as it was reported."""
        lines = write_log(tmp_path / "log.jsonl")
        assert main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")]) == 0
        prompt = tmp_path / "prompt.json"
        prompt.write_text(json.dumps(lines[-1]["messages"]))
        capsys.readouterr()
        assert (
            main(["--store", store, "count", "--model", "fake-claude", str(prompt)])
            == 0
        )
        out = capsys.readouterr().out
        assert out.startswith(f"{lines[-1]['usage']['input_tokens']} tokens")
        assert "source=exact" in out

    def test_says_when_nothing_is_calibrated(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A model the store does not know gets a note that the count is local."""
        path = tmp_path / "m.json"
        path.write_text('[["user", "hi"]]')
        assert main(["count", "--model", "fake-claude", str(path)]) == 0
        captured = capsys.readouterr()
        assert "source=local" in captured.out
        assert "no calibration stored for 'fake-claude'" in captured.err

    def test_counting_writes_no_model_to_the_store(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], default_store: str
    ) -> None:
        """Counting for an unknown model leaves the store's model list alone."""
        path = tmp_path / "m.json"
        path.write_text('[["user", "hi"]]')
        main(["count", "--model", "fake-claude", str(path)])
        assert _stats_json(default_store, capsys) == {}


class TestCalibrate:
    """`tokencal calibrate`."""

    def test_learns_from_a_conversation_log(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each call is read and learned, and the calibrated error beats the local one."""
        write_log(tmp_path / "log.jsonl", turns=12)
        assert main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")]) == 0
        out = capsys.readouterr().out
        assert "fake-claude: 12 calls read, 12 learned, 0 rejected" in out
        found = re.search(
            r"local ([\d.]+)% -> calibrated ([\d.]+)% \(12 reports\)", out
        )
        assert found is not None, out
        assert float(found[2]) < float(found[1])
        assert "coefficients: framing=" in out
        assert _stats_json(store, capsys)["fake-claude"]["reports"] == 12

    def test_error_is_over_this_file_only(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A second file's error line counts only that file's reports."""
        write_log(tmp_path / "a.jsonl", turns=6, tag="first ")
        write_log(tmp_path / "b.jsonl", turns=4, tag="second ")
        main(["--store", store, "calibrate", str(tmp_path / "a.jsonl")])
        capsys.readouterr()
        main(["--store", store, "calibrate", str(tmp_path / "b.jsonl")])
        assert "(4 reports)" in capsys.readouterr().out
        assert _stats_json(store, capsys)["fake-claude"]["reports"] == 10

    def test_error_covers_more_reports_than_the_window(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The file's error counts every report, past the default error window."""
        calls = CounterConfig().max_points + 20
        llm = FakeUsageChatModel(model="fake-claude")
        lines = []
        for i in range(calls):
            prompt = [SystemMessage("Be brief."), HumanMessage(f"Where is order {i}?")]
            usage = llm.invoke(prompt).usage_metadata
            line = {"model": "fake-claude", "messages": [dumpd(m) for m in prompt]}
            lines.append(json.dumps({**line, "usage": usage}) + "\n")
        path = tmp_path / "log.jsonl"
        path.write_text("".join(lines))
        assert main(["--store", "memory://", "calibrate", str(path)]) == 0
        assert f"({calls} reports)" in capsys.readouterr().out

    def test_interleaved_conversations_are_learned_exactly(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Lines of two conversations in turn are each learned as they were sent."""
        first = write_log(tmp_path / "a.jsonl", turns=4, tag="alpha ")
        second = write_log(tmp_path / "b.jsonl", turns=4, tag="beta ")
        mixed = [line for pair in zip(first, second, strict=True) for line in pair]
        path = tmp_path / "mixed.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in mixed))
        assert main(["--store", store, "calibrate", str(path)]) == 0
        for line in mixed[-2:]:
            prompt = tmp_path / "prompt.json"
            prompt.write_text(json.dumps(line["messages"]))
            capsys.readouterr()
            main(["--store", store, "count", "--model", "fake-claude", str(prompt)])
            out = capsys.readouterr().out
            assert out.startswith(f"{line['usage']['input_tokens']} tokens"), out
            assert "source=exact" in out

    def test_learns_with_tools(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Lines with bound tools are learned."""
        write_log(tmp_path / "log.jsonl", turns=5, tools=True)
        assert main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")]) == 0
        assert "5 learned" in capsys.readouterr().out

    def test_learns_from_a_langsmith_export(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Runs traced by LangChain's tracer are learned under their ls_model_name."""
        write_langsmith_export(tmp_path / "runs.jsonl", turns=8)
        assert main(["--store", store, "calibrate", str(tmp_path / "runs.jsonl")]) == 0
        out = capsys.readouterr().out
        assert "fake-gemini: 8 calls read, 8 learned, 0 rejected" in out
        assert "skipped 1 run(s)" in out
        stats = _stats_json(store, capsys)
        assert stats["fake-gemini"]["reports"] == 8

    def test_langsmith_usage_under_outputs(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run with outputs.usage_metadata and a flat message list is learned."""
        usage = {"input_tokens": 21, "output_tokens": 4, "total_tokens": 25}
        run = {
            "run_type": "llm",
            "inputs": {
                "messages": [dumpd(HumanMessage("What is the capital of France?"))]
            },
            "outputs": {"usage_metadata": usage},
            "extra": {
                "metadata": {"ls_model_name": "claude-x", "ls_provider": "anthropic"}
            },
        }
        path = tmp_path / "runs.jsonl"
        path.write_text(json.dumps(run) + "\n")
        assert main(["--store", store, "calibrate", str(path)]) == 0
        assert "claude-x: 1 calls read, 1 learned" in capsys.readouterr().out

    def test_failed_runs_are_skipped(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run that errored is skipped, not rejected or counted bad."""
        run = {
            "run_type": "llm",
            "error": "RateLimitError",
            "inputs": {"messages": [[dumpd(HumanMessage("hi"))]]},
            "outputs": None,
        }
        path = tmp_path / "runs.jsonl"
        path.write_text(json.dumps(run) + "\n")
        assert main(["--store", store, "calibrate", str(path)]) == 0
        out = capsys.readouterr().out
        assert "no calls to learn from" in out
        assert "skipped 1 run(s)" in out

    def test_accepts_role_dicts_pairs_and_raw_responses(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Role dicts with an OpenAI response, and pairs with an Anthropic one, are learned."""
        lines = [
            {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "Hello there, how are you?"}],
                "response": {
                    "object": "chat.completion",
                    "model": "gpt-4o-2024-08-06",
                    "usage": {
                        "prompt_tokens": 14,
                        "completion_tokens": 5,
                        "total_tokens": 19,
                    },
                },
            },
            {
                "model": "claude-x",
                "messages": [["user", "Hello there, how are you today?"]],
                "response": {
                    "type": "message",
                    "model": "claude-x",
                    "usage": {"input_tokens": 16, "output_tokens": 7},
                },
            },
        ]
        path = tmp_path / "log.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        assert main(["--store", store, "calibrate", str(path)]) == 0
        out = capsys.readouterr().out
        assert "gpt-4o: 1 calls read, 1 learned" in out
        assert "claude-x: 1 calls read, 1 learned" in out

    def test_reads_stdin(
        self,
        tmp_path: Path,
        store: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`-` reads the log from standard input."""
        write_log(tmp_path / "log.jsonl", turns=4)
        monkeypatch.setattr(
            "sys.stdin", io.StringIO((tmp_path / "log.jsonl").read_text())
        )
        assert main(["--store", store, "calibrate", "-"]) == 0
        assert "4 calls read, 4 learned" in capsys.readouterr().out

    def test_model_option_names_every_line(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With --model, lines that name no model are learned under it."""
        write_log(tmp_path / "log.jsonl", turns=3, model=None)
        path = str(tmp_path / "log.jsonl")
        assert main(["--store", store, "calibrate", "--model", "my-model", path]) == 0
        assert "my-model: 3 calls read, 3 learned" in capsys.readouterr().out

    def test_a_line_without_a_model_needs_the_option(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --model, a line naming no model is a bad line saying so."""
        write_log(tmp_path / "log.jsonl", turns=2, model=None)
        assert main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")]) == 1
        err = capsys.readouterr().err
        assert f"{tmp_path / 'log.jsonl'}:1: no model: pass --model" in err

    def test_rejections_are_counted_by_reason(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Calls whose usage cannot be trusted are rejected, by reason."""
        lines = write_log(tmp_path / "log.jsonl", turns=3)
        lines[1]["usage"] = {}
        lines[2]["usage"] = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        (tmp_path / "log.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines)
        )
        assert main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")]) == 0
        assert (
            "3 calls read, 1 learned, 2 rejected (no usage: 2)"
            in capsys.readouterr().out
        )

    def test_bad_lines_are_named_and_skipped(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each bad line gets file:line: reason; the others are learned; exit 1."""
        lines = [json.dumps(x) for x in write_log(tmp_path / "log.jsonl", turns=3)]
        bad = [
            lines[0],
            '{"messages": [',
            "[1, 2]",
            '{"messages": [["user", "hi"]]}',
            lines[1],
            '{"messages": "hi", "usage": {}}',
            "",
            lines[2],
        ]
        path = tmp_path / "mixed.jsonl"
        path.write_text("\n".join(bad) + "\n")
        assert main(["--store", store, "calibrate", str(path)]) == 1
        captured = capsys.readouterr()
        assert "fake-claude: 3 calls read, 3 learned" in captured.out
        assert f"{path}:2: invalid JSON (column 15)" in captured.err
        assert f"{path}:3: expected a JSON object" in captured.err
        assert f'{path}:4: no "usage" or "response"' in captured.err
        assert f"{path}:6: the messages must be a JSON list" in captured.err
        assert captured.err.splitlines()[-1] == (
            f"tokencal: error: 4 bad line(s) in {path} were skipped"
        )

    def test_many_bad_lines_are_summarized(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Past the first bad lines, the rest are only counted."""
        path = tmp_path / "garbage.jsonl"
        path.write_text("not json\n" * 30)
        assert main(["--store", store, "calibrate", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.count("invalid JSON") == 20
        assert "... and 10 more" in err
        assert "30 bad line(s)" in err

    def test_non_utf8_line_is_a_bad_line(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bytes that are not UTF-8 make a bad line, not a crash."""
        path = tmp_path / "binary.jsonl"
        path.write_bytes(b"\xff\xfe\x00garbage\n")
        assert main(["--store", store, "calibrate", str(path)]) == 1
        assert f"{path}:1: not UTF-8 text" in capsys.readouterr().err

    def test_a_failing_run_keeps_what_the_store_had(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Calibrating garbage after a good file leaves the first run's reports."""
        write_log(tmp_path / "good.jsonl", turns=6)
        assert main(["--store", store, "calibrate", str(tmp_path / "good.jsonl")]) == 0
        before = _stats_json(store, capsys)
        garbage = tmp_path / "garbage.jsonl"
        garbage.write_bytes(b'{"messages": [\n\x00\x01 nonsense\n[]\n{"usage": 5}\n')
        assert main(["--store", store, "calibrate", str(garbage)]) == 1
        after = _stats_json(store, capsys)
        assert after["fake-claude"]["reports"] == 6
        assert after == before

    def test_missing_log_touches_no_store(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing log is refused before the store is opened."""
        db = tmp_path / "untouched.db"
        argv = ["--store", f"sqlite:///{db}", "calibrate", str(tmp_path / "no.jsonl")]
        assert "no.jsonl" in fails_in_one_line(argv, capsys)
        assert not db.exists()


class TestProgress:
    """The progress line of `tokencal calibrate`."""

    def test_progress_flag_draws_a_carriage_return_line(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        r"""--progress writes a \r line ending at 100% on stderr."""
        write_log(tmp_path / "log.jsonl", turns=3)
        path = str(tmp_path / "log.jsonl")
        assert main(["--store", store, "calibrate", "--progress", path]) == 0
        err = capsys.readouterr().err
        assert "\r" in err
        assert "3 lines read (100%)" in err

    def test_progress_is_redrawn_along_a_long_log(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A long log redraws the line as it goes, with rising counts and shares."""
        path = tmp_path / "log.jsonl"
        write_log(path, turns=2)
        # Blank lines are read (and counted) but hold no call: a cheap long log.
        with path.open("a") as log:
            log.write("\n" * 2498)
        main(["--store", store, "calibrate", "--progress", str(path)])
        draws = re.findall(
            r"\r.*?([\d,]+) lines read \((\d+)%\)", capsys.readouterr().err
        )
        counts = [int(n.replace(",", "")) for n, _ in draws]
        shares = [int(p) for _, p in draws]
        assert len(draws) >= 3, draws
        assert counts == sorted(set(counts))
        assert counts[-1] == 2500
        assert shares == sorted(shares)
        assert shares[-1] == 100

    def test_progress_without_a_size_shows_only_lines(
        self,
        tmp_path: Path,
        store: str,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """From a pipe there is no percentage, only the lines read."""
        write_log(tmp_path / "log.jsonl", turns=2)
        monkeypatch.setattr(
            "sys.stdin", io.StringIO((tmp_path / "log.jsonl").read_text())
        )
        main(["--store", store, "calibrate", "--progress", "-"])
        err = capsys.readouterr().err
        assert "2 lines read" in err
        assert "%" not in err

    def test_no_progress_off_a_terminal(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without --progress and with stderr not a terminal, nothing is drawn."""
        write_log(tmp_path / "log.jsonl", turns=2)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        assert capsys.readouterr().err == ""


class TestStats:
    """`tokencal stats`."""

    def test_table_lists_each_model(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The table has a header, one row per model and its coefficients."""
        write_log(tmp_path / "a.jsonl", turns=4)
        write_langsmith_export(tmp_path / "b.jsonl", turns=3)
        main(["--store", store, "calibrate", str(tmp_path / "a.jsonl")])
        main(["--store", store, "calibrate", str(tmp_path / "b.jsonl")])
        capsys.readouterr()
        assert main(["--store", store, "stats"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].split()[:4] == ["model", "provider", "reports", "rejected"]
        rows = {
            line.split()[0]: line.split() for line in out if not line.startswith(" ")
        }
        assert rows["fake-claude"][1:3] == ["anthropic", "4"]
        assert rows["fake-gemini"][1:3] == ["google", "3"]
        assert sum(line.startswith("  coefficients: ") for line in out) == 2

    def test_json_holds_numbers_keyed_by_model(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--json prints an object keyed by model whose values are numbers."""
        write_log(tmp_path / "log.jsonl", turns=4)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        stats = _stats_json(store, capsys)
        assert list(stats) == ["fake-claude"]
        values = stats["fake-claude"]
        assert values["reports"] == 4
        assert 0.0 <= values["confidence"] <= 1.0
        assert "coef_framing" in values
        for value in values.values():
            assert value is None or (
                isinstance(value, (int, float)) and not isinstance(value, bool)
            )

    def test_empty_store_says_so(
        self, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A store with nothing in it says how to fill it."""
        assert main(["--store", store, "stats"]) == 0
        assert "tokencal calibrate" in capsys.readouterr().out

    def test_store_option_after_the_subcommand(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--store is accepted after the subcommand as well."""
        write_log(tmp_path / "log.jsonl", turns=2)
        main(["calibrate", "--store", store, str(tmp_path / "log.jsonl")])
        capsys.readouterr()
        main(["stats", "--store", store, "--json"])
        assert json.loads(capsys.readouterr().out)["fake-claude"]["reports"] == 2

    def test_default_store_is_tokencal_store(
        self,
        tmp_path: Path,
        default_store: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without --store, the command uses $TOKENCAL_STORE."""
        write_log(tmp_path / "log.jsonl", turns=2)
        main(["calibrate", str(tmp_path / "log.jsonl")])
        assert _stats_json(default_store, capsys)["fake-claude"]["reports"] == 2
        assert (tmp_path / "default.db").exists()
        assert not (tmp_path / "xdg").exists()


class TestHealth:
    """`tokencal health`."""

    def test_healthy_store_exits_0(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A well-calibrated model has no warning: exit 0."""
        write_log(tmp_path / "log.jsonl", turns=8)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        capsys.readouterr()
        assert main(["--store", store, "health"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[-2].startswith("thresholds: low_confidence 0.5, ")
        assert lines[-1].startswith("healthy: 1 model(s) checked")

    def test_a_threshold_option_makes_the_gate_stricter(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--threshold low_confidence=1 turns a healthy store into exit 1."""
        write_log(tmp_path / "log.jsonl", turns=8)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        capsys.readouterr()
        argv = ["--store", store, "health", "--threshold", "low_confidence=1"]
        assert main([*argv, "--threshold", "min_lookups=10"]) == 1
        out = capsys.readouterr().out
        assert "low_confidence" in out
        assert "thresholds: low_confidence 1, " in out
        assert "min_lookups 10," in out

    @pytest.mark.parametrize(
        ("option", "words"),
        [
            ("low_confidence", "takes NAME=VALUE"),
            ("low_confidence=high", "'high' is not a number"),
            ("nope=1", "Unknown health threshold(s) 'nope'"),
            ("low_confidence=3", "must be in [0, 1]"),
        ],
    )
    def test_bad_threshold_option(
        self,
        store: str,
        option: str,
        words: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A wrong --threshold is exit 1 with the reason, before any store work."""
        assert main(["--store", store, "health", "--threshold", option]) == 1
        assert words in capsys.readouterr().err

    def test_a_warning_exits_1_and_is_printed(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A model whose runs never reported usage is a warning: exit 1."""
        lines = write_log(tmp_path / "log.jsonl", turns=3)
        for line in lines:
            line["usage"] = None
        (tmp_path / "log.jsonl").write_text(
            "".join(json.dumps(x) + "\n" for x in lines)
        )
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        capsys.readouterr()
        assert main(["--store", store, "health"]) == 1
        out = capsys.readouterr().out
        assert "warning: fake-claude: no_usage: 3 run(s) reported no usage" in out
        assert "unhealthy: 1 warning(s)" in out

    def test_mistyped_path_exits_1_and_creates_nothing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A SQLite path that does not exist is an error, not a new empty store."""
        missing = tmp_path / "typo" / "never.db"
        assert main(["--store", f"sqlite:///{missing}", "health"]) == 1
        assert f"no store at {missing}" in capsys.readouterr().err
        assert not missing.exists()
        assert not missing.parent.exists()

    def test_empty_store_is_unhealthy(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A store with nothing learned is a warning: exit 1."""
        store = f"sqlite:///{tmp_path / 'empty.db'}"
        main(["--store", store, "stats"])  # creates the file, learns nothing
        capsys.readouterr()
        assert main(["--store", store, "health"]) == 1
        out = capsys.readouterr().out
        assert "holds no calibration yet" in out
        assert "unhealthy" in out


class TestCalibrateOnce:
    """The same log calibrated twice is learned once; --again learns it again."""

    def test_same_file_twice(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The second run learns nothing and says why; the store holds it once."""
        write_log(tmp_path / "log.jsonl", turns=4)
        log = str(tmp_path / "log.jsonl")
        assert main(["--store", store, "calibrate", log]) == 0
        capsys.readouterr()
        assert main(["--store", store, "calibrate", log]) == 0
        assert "already calibrated" in capsys.readouterr().out
        once = _stats_json(store, capsys)["fake-claude"]
        assert (once["reports"], once["repeats"]) == (4, 0)
        assert main(["--store", store, "calibrate", "--again", log]) == 0
        out = capsys.readouterr().out
        assert "already calibrated" not in out
        assert "4 calls read, 4 learned" in out

    def test_changed_file_is_learned(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Another content is another origin: learned."""
        write_log(tmp_path / "log.jsonl", turns=4)
        log = str(tmp_path / "log.jsonl")
        main(["--store", store, "calibrate", log])
        write_log(tmp_path / "log.jsonl", turns=6)
        capsys.readouterr()
        main(["--store", store, "calibrate", log])
        assert "already calibrated" not in capsys.readouterr().out


class TestSubcommandHelp:
    """Every subcommand's --help describes it and what --store takes."""

    @pytest.mark.parametrize("command", SUBCOMMANDS)
    def test_subcommand_help(
        self, command: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A description, and the store URLs the "(see below)" points to."""
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        _, _, rest = out.partition("\n\n")
        assert rest.split("\n\n")[0].strip(), f"{command} has no description"
        assert "sqlite:///relative.db" in out
        assert "Exit codes" in out


class TestErrorsWhole:
    """An error message is printed whole: its fix is often at the end."""

    def test_long_message_is_not_cut(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad --store prints the accepted forms, to the end."""
        assert main(["--store", "ftp://" + "x" * 300, "stats"]) == 1
        err = capsys.readouterr().err
        assert "expected" in err
        assert err.strip().endswith(".")
        assert len(err) > 300


class TestExportImport:
    """`tokencal export` and `tokencal import`."""

    def test_truncated_file_is_refused(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A cut file imports nothing and exits 1, naming the damage."""
        write_log(tmp_path / "log.jsonl", turns=4)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        main(["--store", store, "export", str(tmp_path / "cal.jsonl")])
        text = (tmp_path / "cal.jsonl").read_text()
        (tmp_path / "cut.jsonl").write_text(text[: len(text) * 2 // 3])
        other = f"sqlite:///{tmp_path / 'other.db'}"
        capsys.readouterr()
        assert main(["--store", other, "import", str(tmp_path / "cut.jsonl")]) == 1
        assert "malformed line(s) (truncated or damaged?)" in capsys.readouterr().err

    def test_round_trip_keeps_estimates(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An estimate after import into another store equals the one before export."""
        write_log(tmp_path / "log.jsonl", turns=8)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        prompt = tmp_path / "prompt.json"
        prompt.write_text('[["system", "Be brief."], ["user", "Where is order 77?"]]')
        capsys.readouterr()
        main(["--store", store, "count", "--model", "fake-claude", str(prompt)])
        before = capsys.readouterr().out
        assert "source=calibrated" in before
        saved = tmp_path / "calibration.jsonl"
        assert main(["--store", store, "export", str(saved)]) == 0
        assert "model(s): fake-claude" in capsys.readouterr().out
        other = f"sqlite:///{tmp_path / 'other.db'}"
        assert main(["--store", other, "import", str(saved)]) == 0
        assert "imported" in capsys.readouterr().out
        main(["--store", other, "count", "--model", "fake-claude", str(prompt)])
        assert capsys.readouterr().out == before

    def test_export_holds_no_prompt_text(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The exported file has numbers and hashes, never the prompts."""
        write_log(tmp_path / "log.jsonl", turns=3, tag="zebra-canary ")
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        main(["--store", store, "export", str(tmp_path / "out.jsonl")])
        assert "zebra-canary" not in (tmp_path / "out.jsonl").read_text()

    def test_importing_twice_adds_nothing(
        self, tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A second import of the same file leaves the store as it was."""
        write_log(tmp_path / "log.jsonl", turns=4)
        main(["--store", store, "calibrate", str(tmp_path / "log.jsonl")])
        main(["--store", store, "export", str(tmp_path / "out.jsonl")])
        other = f"sqlite:///{tmp_path / 'other.db'}"
        main(["--store", other, "import", str(tmp_path / "out.jsonl")])
        once = _stats_json(other, capsys)
        assert main(["--store", other, "import", str(tmp_path / "out.jsonl")]) == 0
        assert "nothing to import" in capsys.readouterr().out
        assert _stats_json(other, capsys) == once
        assert once["fake-claude"]["reports"] == 4


class TestErrors:
    """Every refusal is exit 1 and one ``tokencal: error:`` line that says why."""

    @pytest.mark.parametrize(
        ("files", "argv", "expected"),
        [
            pytest.param(
                {},
                ["count", "--model", "gpt-4o", "{tmp}/nope.json"],
                ["nope.json"],
                id="count-missing-file",
            ),
            pytest.param(
                {"bad.json": '[\n{"role": "user",\n "content": }\n]'},
                ["count", "--model", "gpt-4o", "{tmp}/bad.json"],
                ["line 3"],
                id="count-invalid-json-names-the-line",
            ),
            pytest.param(
                {"obj.json": '{"role": "user"}'},
                ["count", "--model", "gpt-4o", "{tmp}/obj.json"],
                ["list"],
                id="count-not-a-list",
            ),
            pytest.param(
                {"m.json": '[{"role": "user"}]'},
                ["count", "--model", "gpt-4o", "{tmp}/m.json"],
                ["cannot read a message"],
                id="count-unreadable-message",
            ),
            pytest.param(
                {"m.json": HI},
                ["count", "--model", "x", "--provider", "nope", "{tmp}/m.json"],
                ["'nope'", "anthropic"],
                id="count-unknown-provider-lists-the-valid-ones",
            ),
            pytest.param(
                {"m.json": HI},
                ["count", "--model", " ", "{tmp}/m.json"],
                ["--model"],
                id="count-blank-model",
            ),
            pytest.param(
                {},
                ["--store", "{store}", "calibrate", "{tmp}/no.jsonl"],
                ["no.jsonl"],
                id="calibrate-missing-log",
            ),
            pytest.param(
                {"log.jsonl": LOG_LINE},
                [
                    "--store",
                    "{store}",
                    "calibrate",
                    "--provider",
                    "nope",
                    "{tmp}/log.jsonl",
                ],
                ["'nope'"],
                id="calibrate-unknown-provider",
            ),
            pytest.param(
                {},
                ["--store", "{store}", "import", "{tmp}/none.jsonl"],
                ["none.jsonl"],
                id="import-missing-file",
            ),
            pytest.param(
                {"log.jsonl": LOG_LINE},
                ["--store", "{store}", "import", "{tmp}/log.jsonl"],
                ["not a langchain-tokencal calibration"],
                id="import-another-kind-of-file",
            ),
            pytest.param(
                {"file": "x"},
                ["--store", "{store}", "export", "{tmp}/file/out.jsonl"],
                [],
                id="export-to-an-unwritable-path",
            ),
            pytest.param(
                {},
                ["--store", "redis://127.0.0.1:1/0", "stats"],
                ["redis://127.0.0.1:1/0"],
                id="unreachable-redis-names-the-store",
                marks=pytest.mark.allow_hosts(["127.0.0.1"]),
            ),
            pytest.param(
                {},
                ["--store", "mongodb://x", "stats"],
                ["sqlite:///"],
                id="unknown-store-scheme-lists-the-accepted-ones",
            ),
            pytest.param(
                {"file": "x"},
                ["--store", "sqlite:///{tmp}/file/calibration.db", "stats"],
                ["calibration.db"],
                id="sqlite-file-that-cannot-be-created",
            ),
        ],
    )
    def test_refusal_is_one_line(
        self,
        files: dict[str, str],
        argv: list[str],
        expected: list[str],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The command exits 1 with one error line holding each expected text."""
        store = f"sqlite:///{tmp_path / 'calibration.db'}"
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        line = fails_in_one_line(
            [arg.format(tmp=tmp_path, store=store) for arg in argv], capsys
        )
        for text in expected:
            assert text in line


class TestStores:
    """The --store option and what goes wrong with stores."""

    @pytest.mark.allow_hosts(["127.0.0.1"])
    def test_store_password_is_not_printed(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The password of a store URL never reaches the terminal."""
        main(["--store", "redis://me:hunter2@127.0.0.1:1/0", "stats"])
        captured = capsys.readouterr()
        assert "hunter2" not in captured.err + captured.out

    def test_missing_redis_package_prints_the_install_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without the redis package, the error is the install line."""
        monkeypatch.setitem(sys.modules, "redis", None)
        line = fails_in_one_line(
            ["--store", "redis://127.0.0.1:6379/0", "stats"], capsys
        )
        assert "pip install 'langchain-tokencal[redis]'" in line

    def test_memory_store_is_empty_each_time(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """memory:// lives only as long as one command."""
        write_log(tmp_path / "log.jsonl", turns=2)
        assert (
            main(["--store", "memory://", "calibrate", str(tmp_path / "log.jsonl")])
            == 0
        )
        assert _stats_json("memory://", capsys) == {}


class TestEntryPoint:
    """`python -m langchain_tokencal`."""

    def test_module_runs_the_command(self, tmp_path: Path, default_store: str) -> None:
        """`python -m langchain_tokencal count` prints a count and exits 0."""
        path = tmp_path / "m.json"
        path.write_text('[["user", "Hello there!"]]')
        env = {**os.environ, "TOKENCAL_STORE": default_store}
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "langchain_tokencal",
                "count",
                "--model",
                "gpt-4o",
                str(path),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        expected = local_counter("gpt-4o")([("user", "Hello there!")])
        assert done.stdout.startswith(f"{expected} tokens")


class TestDemoCommand:
    """`tokencal demo`."""

    def test_prints_both_tables(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The demo prints the model table, the session and the statistics."""
        assert main(["demo"]) == 0
        out = capsys.readouterr().out
        assert "One conversation" in out
        assert "calibrated err" in out
        assert "Calibration statistics" in out
