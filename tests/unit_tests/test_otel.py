"""OpenTelemetry metrics, exported to the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.testing import FakeUsageChatModel

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from langchain_tokencal.otel import instrument


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point of the last collection, by metric name."""
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def drive(handler: TokenCalibrationHandler, calls: int) -> None:
    """Calls through a fake model, plus one without usage."""
    llm = FakeUsageChatModel(callbacks=[handler])
    history: list[Any] = [SystemMessage("You are brief.")]
    for i in range(calls):
        history = [*history, HumanMessage(f"question {i}")]
        history = [*history, llm.invoke(history)]
    FakeUsageChatModel(callbacks=[handler], report_usage=False).invoke("no usage here")


class TestMetrics:
    """Reports, rejections, billed tokens, errors and confidence are exported."""

    def test_exported(self) -> None:
        """Each instrument has points; the values match stats() and usage."""
        reader = InMemoryMetricReader()
        handler = TokenCalibrationHandler()
        instrument(handler, MeterProvider(metric_readers=[reader]))
        drive(handler, calls=8)
        found = points(reader)
        (model,) = [m for m in handler.stats() if handler.stats()[m].observations]
        stats = handler.stats()[model]
        reports = {p.attributes["model"]: p.value for p in found["tokencal.reports"]}
        assert reports[model] == stats.observations == 8
        rejections = {
            (p.attributes["model"], p.attributes["reason"]): p.value
            for p in found["tokencal.rejections"]
        }
        assert sum(rejections.values()) >= 1
        billed = {
            (p.attributes["model"], p.attributes["kind"]): p.value
            for p in found["tokencal.billed_tokens"]
        }
        assert billed[(model, "input")] == handler.usage[model]["input_tokens"]
        assert billed[(model, "output")] == handler.usage[model]["output_tokens"]
        (confidence,) = [
            p.value
            for p in found["tokencal.confidence"]
            if p.attributes["model"] == model
        ]
        assert 0 <= confidence <= 1
        assert any(
            p.attributes["model"] == model for p in found["tokencal.calibrated_error"]
        )

    def test_histogram_counts_each_new_report_once(self) -> None:
        """Two collections: the histogram holds every learned report once."""
        reader = InMemoryMetricReader()
        handler = TokenCalibrationHandler()
        instrument(handler, MeterProvider(metric_readers=[reader]))
        drive(handler, calls=5)
        points(reader)  # the first collection records the first five
        drive(handler, calls=3)
        points(reader)
        found = points(reader)  # cumulative: the histogram's total count
        counts = [p.count for p in found["tokencal.prediction_error"]]
        assert sum(counts) == 8

    def test_missing_api_says_how_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without opentelemetry-api: ImportError with the extra to install."""
        import builtins  # noqa: PLC0415

        real = builtins.__import__

        def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("opentelemetry"):
                raise ImportError(name)
            return real(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_otel)
        with pytest.raises(ImportError, match=r"langchain-tokencal\[otel\]"):
            instrument(TokenCalibrationHandler())
