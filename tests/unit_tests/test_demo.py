"""The demonstration behind `make demo` shows what the project promises."""

from __future__ import annotations

import ast
import io
from pathlib import Path

from langchain_tokencal import demo
from langchain_tokencal.demo import calibration_session, count_table


class TestDemo:
    """`tokencal demo`."""

    def test_calibrated_error_falls_below_two_percent_within_ten_calls(self) -> None:
        """From call 10 on, every calibrated estimate is within 2% of the report."""
        result = calibration_session(io.StringIO(), calls=20)
        errors = [abs(cal) for _, cal in result["errors"]]
        assert max(errors[9:]) < 0.02
        assert result["stats"].observations == 20

    def test_calibration_beats_the_local_count(self) -> None:
        """On every call after the first, calibration is closer than the local count."""
        result = calibration_session(io.StringIO(), calls=12)
        for local, cal in result["errors"][1:]:
            assert abs(cal) < abs(local)

    def test_count_table_lists_each_model(self) -> None:
        """The first table has one row per model, with the exact OpenAI counters."""
        out = io.StringIO()
        count_table(out)
        text = out.getvalue()
        for model in ("gpt-4o", "gpt-4", "claude-sonnet-4-5", "gemini-2.5-pro"):
            assert model in text
        assert "o200k_base" in text

    def test_demo_uses_only_public_apis(self) -> None:
        """The demo imports the package only through its public modules."""
        tree = ast.parse(Path(demo.__file__).read_text(encoding="utf-8"))
        names = {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        names |= {
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
        }
        imported = {name for name in names if name.startswith("langchain_tokencal")}
        assert imported == {"langchain_tokencal", "langchain_tokencal.testing"}
