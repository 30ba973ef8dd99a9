"""Statistics tables, HTML rendering and health checks."""

from __future__ import annotations

import builtins
import logging
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from langchain_core.messages import HumanMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._reporting import check_health, stats_html
from langchain_tokencal.testing import FakeUsageChatModel


@pytest.fixture
def handler() -> TokenCalibrationHandler:
    """A handler that raises its own bugs."""
    h = TokenCalibrationHandler()
    h.raise_error = True
    return h


def _talk(
    handler: TokenCalibrationHandler, llm: FakeUsageChatModel, turns: int
) -> None:
    history: list = []
    for i in range(turns):
        history.append(HumanMessage(f"Question {i}: what is {i} squared, and why?"))
        history.append(llm.invoke(history, config={"callbacks": [handler]}))


class TestStatsFrame:
    """`handler.stats_frame()`."""

    def test_one_row_per_model(self, handler: TokenCalibrationHandler) -> None:
        """Each model the handler saw is one row, indexed by model name."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 3)
        _talk(handler, FakeUsageChatModel(model="fake-b"), 2)
        frame = handler.stats_frame()
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.index) == ["fake-a", "fake-b"]
        assert frame.loc["fake-a", "reports"] == 3
        assert "coef_tool_preamble" in frame.columns

    def test_empty_handler_gives_an_empty_frame(
        self, handler: TokenCalibrationHandler
    ) -> None:
        """A handler that saw nothing gives an empty frame, not an error."""
        assert handler.stats_frame().empty

    def test_missing_pandas_says_how_to_install(
        self, handler: TokenCalibrationHandler, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without pandas the error names the extra to install."""
        real_import = builtins.__import__

        def fake_import(name: str, *args: object, **kwargs: object) -> object:
            if name == "pandas":
                raise ImportError(name)
            return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(builtins, "__import__", fake_import)
        with pytest.raises(ImportError, match=r"langchain-tokencal\[pandas\]"):
            handler.stats_frame()


class TestHtml:
    """Jupyter rendering."""

    def test_handler_renders_a_table(self, handler: TokenCalibrationHandler) -> None:
        """`_repr_html_` is a table holding the model name."""
        _talk(handler, FakeUsageChatModel(model="fake-<html>"), 2)
        out = handler._repr_html_()
        assert out.startswith("<table>")
        assert "fake-&lt;html&gt;" in out

    def test_model_stats_render(self, handler: TokenCalibrationHandler) -> None:
        """A single ModelStats renders as a one-row table."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 2)
        out = handler.stats()["fake-a"]._repr_html_()
        assert out.count("<tr>") == 2

    def test_empty(self) -> None:
        """No model: a sentence instead of an empty table."""
        assert "no model" in stats_html({})


class TestHealth:
    """`handler.health()`."""

    def test_fresh_handler_is_healthy(self, handler: TokenCalibrationHandler) -> None:
        """Nothing seen, nothing wrong."""
        assert handler.health().ok

    def test_no_usage_is_flagged_and_logged(
        self, handler: TokenCalibrationHandler, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Runs without usage are a warning naming the fix, logged once per check."""
        llm = FakeUsageChatModel(model="fake-silent", report_usage=False)
        with caplog.at_level(logging.WARNING, logger="langchain_tokencal._reporting"):
            llm.invoke("hi", config={"callbacks": [handler]})
            report = handler.health()
        assert not report.ok
        (issue,) = report.issues
        assert issue.check == "no_usage"
        assert "stream_usage" in issue.message
        assert any("no usage" in r.getMessage() for r in caplog.records)

    def test_calibrated_model_is_healthy(
        self, handler: TokenCalibrationHandler
    ) -> None:
        """A model learned over a conversation raises no warning."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 8)
        report = handler.health(log=False)
        assert report.ok, report.issues

    def test_rising_error_is_flagged(self, handler: TokenCalibrationHandler) -> None:
        """Recent error well above the overall error is a warning."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 3)
        stats = handler.stats()["fake-a"]
        drifted = replace(stats, calibrated_error=0.01, recent_error=0.08)
        report = check_health({"fake-a": drifted}, log=False)
        assert [i.check for i in report.issues if i.severity == "warning"] == [
            "rising_error"
        ]

    def test_partial_no_usage_is_a_warning(
        self, handler: TokenCalibrationHandler
    ) -> None:
        """8 of 9 runs without usage is a warning, even with one learned."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 1)
        silent = FakeUsageChatModel(model="fake-a", report_usage=False)
        for i in range(8):
            silent.invoke(f"hi {i}", config={"callbacks": [handler]})
        report = handler.health(log=False)
        assert not report.ok
        (issue,) = [i for i in report.issues if i.check == "partial_no_usage"]
        assert "8 of 9 runs" in issue.message

    def test_few_reports_with_low_confidence_is_noted(self) -> None:
        """Below min_points a low confidence is an info, not silence."""
        from langchain_tokencal import create_counter  # noqa: PLC0415

        stats = replace(create_counter("m").stats(), observations=2, confidence=0.09)
        report = check_health({"m": stats}, log=False)
        assert report.ok
        assert [i.check for i in report.issues] == ["few_reports"]


class TestReadableObjects:
    """Stats, health reports and counters read well in a terminal and Jupyter."""

    def _handler(self) -> Any:
        from langchain_tokencal import TokenCalibrationHandler  # noqa: PLC0415
        from langchain_tokencal.testing import FakeUsageChatModel  # noqa: PLC0415

        handler = TokenCalibrationHandler()
        llm = FakeUsageChatModel(callbacks=[handler])
        for i in range(6):
            llm.invoke(f"hello there number {i}")
        return handler

    def test_model_stats_str_is_short(self) -> None:
        """A few lines, errors in percent, no prior shown as learned."""
        (stats,) = self._handler().stats().values()
        text = str(stats)
        assert len(text.splitlines()) <= 5
        assert len(text) < 600
        assert "calibrated" in text
        assert "%" in text
        assert "tool_preamble" not in text  # no tools were seen: still the prior

    def test_fresh_stats_say_nothing_learned(self) -> None:
        """A counter with no report says its counts use the prior."""
        from langchain_tokencal import create_counter  # noqa: PLC0415

        assert "nothing learned yet" in str(create_counter("claude-sonnet-4-5").stats())

    def test_health_report_str_and_html(self) -> None:
        """The verdict in text and HTML, one row per issue."""
        from langchain_tokencal._reporting import HealthIssue, HealthReport  # noqa: PLC0415

        healthy = HealthReport(())
        assert str(healthy) == "healthy: no warning"
        assert "healthy" in healthy._repr_html_()
        issue = HealthIssue("m", "no_usage", "warning", "3 run(s) <reported> nothing")
        report = HealthReport((issue,))
        assert str(report).splitlines() == [
            "warning: m: no_usage: 3 run(s) <reported> nothing",
            "unhealthy: 1 warning(s)",
        ]
        html_text = report._repr_html_()
        assert "&lt;reported&gt;" in html_text
        assert html_text.count("<tr>") == 2

    def test_counter_repr(self) -> None:
        """A counter names its model, local counter and reports learned."""
        handler = self._handler()
        (model,) = handler.stats()  # settles the queued runs
        text = repr(handler._registry.counters[model])
        assert text.startswith(f"CalibratedCounter(model={model!r}")
        assert "reports=6" in text


class TestMalformedUsage:
    """Usage that cannot be true is its own reason, and a health warning."""

    def test_negative_and_string_counts(self, handler: TokenCalibrationHandler) -> None:
        """Neither is "no usage": each is "malformed usage", and health warns."""
        from langchain_core.messages import AIMessage  # noqa: PLC0415

        for usage in (
            {"input_tokens": -5, "output_tokens": 2},
            {"input_tokens": "ten", "output_tokens": 2},
        ):
            why = handler.observe([HumanMessage("hi")], usage, "fake-a")
            assert why == "malformed usage"
        assert (
            handler.observe([HumanMessage("hi")], AIMessage("ok"), "fake-a")
            == "no usage"
        )
        stats = handler.stats()["fake-a"]
        assert stats.rejected == {"malformed usage": 2, "no usage": 1}
        report = handler.health(log=False)
        assert "malformed_usage" in [i.check for i in report.issues]
        assert not report.ok
