"""The `tokencal` command, driven through `main([...])`."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

from langchain_tokencal import local_counter
from langchain_tokencal.cli import main

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


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

    def test_tools_file_adds_tokens(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tools file makes the count larger."""
        messages = tmp_path / "m.json"
        messages.write_text('[["user", "weather in Paris?"]]')
        tools = tmp_path / "t.json"
        tool = {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                },
            },
        }
        tools.write_text(json.dumps([tool]))
        main(["count", "--model", "gpt-4o", str(messages)])
        without = int(capsys.readouterr().out.split()[0])
        main(["count", "--model", "gpt-4o", "--tools", str(tools), str(messages)])
        with_tools = int(capsys.readouterr().out.split()[0])
        assert with_tools > without

    def test_missing_file_is_one_clear_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A missing file exits 1 with one line naming it."""
        assert main(["count", "--model", "gpt-4o", str(tmp_path / "nope.json")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert "nope.json" in err

    def test_invalid_json_names_the_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Invalid JSON exits 1 and says on which line."""
        path = tmp_path / "bad.json"
        path.write_text('[\n{"role": "user",\n "content": }\n]')
        assert main(["count", "--model", "gpt-4o", str(path)]) == 1
        assert "line 3" in capsys.readouterr().err

    def test_not_a_list_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A JSON object instead of a list exits 1 with a reason."""
        path = tmp_path / "obj.json"
        path.write_text('{"role": "user"}')
        assert main(["count", "--model", "gpt-4o", str(path)]) == 1
        assert "list" in capsys.readouterr().err

    def test_unknown_provider_is_a_clear_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown provider exits 1 listing the valid ones."""
        path = tmp_path / "m.json"
        path.write_text('[["user", "hi"]]')
        assert main(["count", "--model", "x", "--provider", "nope", str(path)]) == 1
        assert "nope" in capsys.readouterr().err


class TestDemoCommand:
    """`tokencal demo`."""

    def test_prints_both_tables(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The demo prints the model table, the session and the statistics."""
        assert main(["demo"]) == 0
        out = capsys.readouterr().out
        assert "One conversation" in out
        assert "calibrated err" in out
        assert "Calibration statistics" in out
