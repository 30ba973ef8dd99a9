"""OpenTelemetry metrics of a handler: reports, rejections, billed tokens, errors.

``pip install 'langchain-tokencal[otel]'`` (``opentelemetry-api``; bring the SDK
and an exporter of your choice). `instrument` registers observable
instruments on a meter; they read the handler's statistics when the reader
collects (every export interval), so nothing is added to a model call:

- ``tokencal.reports`` (counter; ``model``): reports learned from;
- ``tokencal.rejections`` (counter; ``model``, ``reason``): reports not
  learned from;
- ``tokencal.billed_tokens`` (counter; ``model``, ``kind``: input, output,
  cache_read, cache_creation, reasoning): tokens billed;
- ``tokencal.calibrated_error`` (gauge; ``model``): mean absolute relative
  error of the calibrated count over recent reports;
- ``tokencal.confidence`` (gauge; ``model``): confidence of a typical
  estimate, 0..1;
- ``tokencal.prediction_error`` (histogram; ``model``): each new report's
  relative error of the calibrated count before it was learned.

The histogram is recorded from the reports learned since the previous
collection (at most the newest 500 per collection).

Example:
    ```python
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from langchain_tokencal import TokenCalibrationHandler
    from langchain_tokencal.otel import instrument

    reader = InMemoryMetricReader()
    handler = TokenCalibrationHandler()
    instrument(handler, MeterProvider(metric_readers=[reader]))
    data = reader.get_metrics_data()
    ```
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from langchain_tokencal._callbacks import TokenCalibrationHandler

__all__ = ["INSTALL_HINT", "instrument"]

INSTALL_HINT: Final = "pip install 'langchain-tokencal[otel]'"


def instrument(
    handler: TokenCalibrationHandler,
    meter_provider: Any = None,
    *,
    name: str = "langchain_tokencal",
) -> Any:
    """Register the handler's metrics on an OpenTelemetry meter; return the meter.

    Args:
        handler: The handler to observe.
        meter_provider: An OpenTelemetry ``MeterProvider``; ``None`` takes the
            global one (``opentelemetry.metrics.set_meter_provider``).
        name: The meter's instrumentation scope name.

    Raises:
        ImportError: Without ``opentelemetry-api`` (the message has the fix).
    """
    try:
        from opentelemetry import metrics  # noqa: PLC0415 - optional extra
    except ImportError as err:
        msg = f"OpenTelemetry metrics need opentelemetry-api: {INSTALL_HINT}"
        raise ImportError(msg) from err
    provider = meter_provider or metrics.get_meter_provider()
    meter = provider.get_meter(name)
    view = _View(handler, metrics.Observation)
    view.histogram = meter.create_histogram(
        "tokencal.prediction_error",
        unit="1",
        description="Relative error of each new report's calibrated count",
    )
    # ``reports`` first: a collection calls the callbacks in this order, and
    # the first reads the statistics the others reuse.
    observed = (
        (meter.create_observable_counter, "reports", view.reports, "{report}",
         "Reports learned from"),
        (meter.create_observable_counter, "rejections", view.rejections, "{report}",
         "Reports not learned from, by reason"),
        (meter.create_observable_counter, "billed_tokens", view.billed, "{token}",
         "Tokens billed, by kind"),
        (meter.create_observable_gauge, "calibrated_error", view.calibrated_error,
         "1", "Mean absolute relative error of the calibrated count"),
        (meter.create_observable_gauge, "confidence", view.confidence, "1",
         "Confidence of a typical estimate"),
    )  # fmt: skip
    for create, metric, callback, unit, description in observed:
        create(f"tokencal.{metric}", [callback], unit=unit, description=description)
    return meter


class _View:
    """Reads the handler once per collection and serves every callback from it."""

    def __init__(self, handler: TokenCalibrationHandler, observation: Any) -> None:
        self._handler = handler
        self._observation = observation
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {}
        self._read = False  # the statistics were read at least once
        self._seen: dict[str, int] = {}  # observations recorded in the histogram
        self.histogram: Any = None

    def _fresh(self, *, read: bool = False) -> dict[str, Any]:
        """The statistics: read anew by the first callback of a collection.

        A collection calls the callbacks in the order they were registered,
        so ``reports`` (registered first) reads and the others reuse it.
        """
        with self._lock:
            if read or not self._read:
                self._stats = self._handler.stats()
                self._record_errors(self._stats)
                self._read = True
            return self._stats

    def _record_errors(self, stats: dict[str, Any]) -> None:
        if self.histogram is None:
            return
        for model, st in stats.items():
            # Each learned report, a repeat of a known prompt included, adds
            # one error to the window.
            learned = st.observations + st.repeats
            new = learned - self._seen.get(model, 0)
            self._seen[model] = learned
            for _, calibrated in st.errors[-new:] if new > 0 else ():
                self.histogram.record(abs(calibrated), {"model": model})

    def reports(self, options: Any) -> Iterable[Any]:
        del options
        obs = self._observation
        stats = self._fresh(read=True)
        return [obs(st.observations, {"model": m}) for m, st in stats.items()]

    def rejections(self, options: Any) -> Iterable[Any]:
        del options
        obs = self._observation
        return [
            obs(n, {"model": m, "reason": reason})
            for m, st in self._fresh().items()
            for reason, n in st.rejected.items()
        ]

    def billed(self, options: Any) -> Iterable[Any]:
        del options
        self._fresh()
        obs = self._observation
        out = []
        for model, usage in self._handler.usage.items():
            got: Any = usage
            details_in = got.get("input_token_details") or {}
            details_out = got.get("output_token_details") or {}
            counts = {
                "input": got.get("input_tokens", 0),
                "output": got.get("output_tokens", 0),
                "cache_read": details_in.get("cache_read", 0),
                "cache_creation": details_in.get("cache_creation", 0),
                "reasoning": details_out.get("reasoning", 0),
            }
            out += [
                obs(int(n or 0), {"model": model, "kind": kind})
                for kind, n in counts.items()
            ]
        return out

    def calibrated_error(self, options: Any) -> Iterable[Any]:
        del options
        obs = self._observation
        return [
            obs(st.calibrated_error, {"model": m})
            for m, st in self._fresh().items()
            if st.calibrated_error is not None
        ]

    def confidence(self, options: Any) -> Iterable[Any]:
        del options
        obs = self._observation
        return [obs(st.confidence, {"model": m}) for m, st in self._fresh().items()]
