"""Statistics tables, HTML rendering and health checks."""

from __future__ import annotations

import builtins
import logging
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
from langchain_core.messages import HumanMessage

from langchain_tokencal import HealthThresholds, TokenCalibrationHandler
from langchain_tokencal._reporting import check_health, stats_html
from langchain_tokencal.errors import ConfigError
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
        assert str(healthy).splitlines() == [
            (
                "thresholds: low_confidence 0.5, rising_factor 2, rising_floor 0.02, "
                "no_usage_share 0.2, rejected_share 0.2, low_hit_rate 0.5, "
                "min_lookups 1000, min_points None"
            ),
            "healthy: no warning",
        ]
        assert "healthy" in healthy._repr_html_()
        issue = HealthIssue("m", "no_usage", "warning", "3 run(s) <reported> nothing")
        report = HealthReport((issue,))
        lines = str(report).splitlines()
        assert lines[0] == "warning: m: no_usage: 3 run(s) <reported> nothing"
        assert lines[-1] == "unhealthy: 1 warning(s)"
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


class TestThresholds:
    """health() takes its limits from HealthThresholds and lists them."""

    def test_defaults_are_listed(self, handler: TokenCalibrationHandler) -> None:
        """The report carries the thresholds used, min_points from the config."""
        report = handler.health(log=False)
        assert report.thresholds == HealthThresholds(min_points=5)
        assert "low_confidence 0.5" in str(report)
        assert "min_points 5" in report._repr_html_()

    def test_stricter_share_flags_what_the_default_lets_pass(
        self, handler: TokenCalibrationHandler
    ) -> None:
        """1 silent run in 9 passes at 20% and warns at 5%."""
        _talk(handler, FakeUsageChatModel(model="fake-a"), 8)
        FakeUsageChatModel(model="fake-a", report_usage=False).invoke(
            "hi", config={"callbacks": [handler]}
        )
        assert handler.health(log=False).ok
        strict = handler.health(log=False, thresholds={"no_usage_share": 0.05})
        assert [i.check for i in strict.issues] == ["partial_no_usage"]
        assert strict.thresholds.no_usage_share == 0.05

    def test_handler_setting_and_from_config(self, tmp_path: Any) -> None:
        """health= on the handler, or a [health] table in a settings file."""
        h = TokenCalibrationHandler(health={"low_confidence": 0.9, "min_points": 2})
        assert h.health(log=False).thresholds.low_confidence == 0.9
        path = tmp_path / "tokencal.toml"
        path.write_text("[health]\nrising_floor = 0.05\n")
        from_file = TokenCalibrationHandler.from_config(path, environ={})
        assert from_file.health(log=False).thresholds.rising_floor == 0.05
        env = {"TOKENCAL_HEALTH": '{"low_hit_rate": 0.9}'}
        from_env = TokenCalibrationHandler.from_config(None, environ=env)
        assert from_env.health_thresholds.low_hit_rate == 0.9

    def test_confidence_threshold_moves_the_check(self) -> None:
        """Confidence 0.7 after 10 reports: fine at 0.5, a warning at 0.8."""
        from langchain_tokencal import create_counter  # noqa: PLC0415

        stats = replace(create_counter("m").stats(), observations=10, confidence=0.7)
        assert check_health({"m": stats}, log=False).ok
        report = check_health({"m": stats}, thresholds={"low_confidence": 0.8})
        assert [i.check for i in report.issues] == ["low_confidence"]

    @pytest.mark.parametrize(
        ("settings", "words"),
        [
            ({"low_confidence": 1.5}, "low_confidence must be in [0, 1]"),
            ({"rising_factor": 0.5}, "rising_factor must be >= 1"),
            ({"min_lookups": 0}, "min_lookups must be a positive integer"),
            ({"no_usage_share": "high"}, "no_usage_share must be a number"),
            ({"low_confidense": 0.5}, "valid ones are low_confidence"),
        ],
    )
    def test_bad_thresholds_say_which(self, settings: dict, words: str) -> None:
        """A wrong threshold is a ConfigError naming it."""
        with pytest.raises(ConfigError) as err:
            TokenCalibrationHandler(health=settings)
        assert words in str(err.value)

    def test_not_a_mapping(self) -> None:
        """health= of another type is refused with its type."""
        with pytest.raises(ConfigError, match="got float"):
            TokenCalibrationHandler(health=0.5)  # type: ignore[arg-type]


class TestStatsInterval:
    """stats_interval logs one line per model from a daemon thread."""

    def test_logs_each_model_periodically(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Lines appear within a few intervals, and stop after close()."""
        import threading  # noqa: PLC0415
        import time  # noqa: PLC0415

        handler = TokenCalibrationHandler(stats_interval=0.05)
        FakeUsageChatModel(model="fake-a", callbacks=[handler]).invoke("hello")
        with caplog.at_level(logging.INFO, logger="langchain_tokencal.stats"):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                "model=fake-a reports=1" in r.message for r in caplog.records
            ):
                time.sleep(0.02)
            handler.close()
            seen = len(caplog.records)
            time.sleep(0.2)
        assert any("model=fake-a reports=1" in r.message for r in caplog.records)
        assert len(caplog.records) == seen  # nothing after close
        assert "tokencal-stats" not in {t.name for t in threading.enumerate()}

    def test_a_failing_read_is_logged_and_survived(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A read that raises logs a warning; the next tick logs again."""
        from langchain_tokencal._callbacks.reports import StatsLogger  # noqa: PLC0415

        calls = []

        def read() -> dict:
            calls.append(1)
            if len(calls) == 1:
                msg = "boom"
                raise RuntimeError(msg)
            return {}

        logger = StatsLogger(read, 1.0)
        with caplog.at_level(logging.INFO, logger="langchain_tokencal.stats"):
            logger._tick()
            logger._tick()
        assert len(calls) == 2
        assert "could not read them" in caplog.text

    @pytest.mark.parametrize("value", [0, -1, float("nan"), "5", True])
    def test_bad_interval(self, value: object) -> None:
        """Zero, negative, NaN and non-numbers are refused."""
        with pytest.raises(ConfigError, match="stats_interval"):
            TokenCalibrationHandler(stats_interval=value)  # type: ignore[arg-type]

    def test_a_dropped_handler_is_collected(self) -> None:
        """The stats thread does not keep its handler alive, and then stops."""
        import gc  # noqa: PLC0415
        import time  # noqa: PLC0415
        import weakref  # noqa: PLC0415

        handler = TokenCalibrationHandler(stats_interval=0.02)
        logger = handler._stats_log
        ref = weakref.ref(handler)
        del handler
        gc.collect()
        assert ref() is None
        deadline = time.monotonic() + 5
        while logger._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not logger._thread.is_alive()

    def test_no_thread_by_default(self) -> None:
        """Without stats_interval there is no stats logger, so no thread."""
        assert TokenCalibrationHandler()._stats_log is None


class TestPlot:
    """handler.plot() draws each model's errors over its reports."""

    def test_lines_per_model(self, handler: TokenCalibrationHandler) -> None:
        """Two models, two lines each (calibrated, local), one point per report."""
        import matplotlib as mpl  # noqa: PLC0415

        mpl.use("Agg")
        _talk(handler, FakeUsageChatModel(model="fake-a"), 4)
        _talk(handler, FakeUsageChatModel(model="fake-b", framing_tokens=30), 3)
        figure = handler.plot()
        (ax,) = figure.axes
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == [
            "fake-a: calibrated",
            "fake-a: local",
            "fake-b: calibrated",
            "fake-b: local",
        ]
        assert len(ax.get_lines()[2].get_xdata()) == 3
        # The first report of fake-b is a local count 30 tokens short: visible.
        assert ax.get_lines()[3].get_ydata()[0] > 5

    def test_baseline_and_empty(self) -> None:
        """A measured baseline adds its mean; no reports titles the figure."""
        import matplotlib as mpl  # noqa: PLC0415

        mpl.use("Agg")
        assert TokenCalibrationHandler().plot().axes[0].get_title() == "no reports yet"
        from langchain_core.messages.utils import (  # noqa: PLC0415
            count_tokens_approximately,
        )

        handler = TokenCalibrationHandler(baseline=count_tokens_approximately)
        _talk(handler, FakeUsageChatModel(model="fake-a"), 3)
        labels = [x.get_label() for x in handler.plot().axes[0].get_lines()]
        assert "fake-a: count_tokens_approximately (mean)" in labels

    def test_without_matplotlib(
        self, handler: TokenCalibrationHandler, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No matplotlib: ImportError with the install line."""
        real = builtins.__import__

        def fake(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("matplotlib"):
                raise ImportError(name)
            return real(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", fake)
        with pytest.raises(ImportError, match=r"langchain-tokencal\[plot\]"):
            handler.plot()
