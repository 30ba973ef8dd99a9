"""What a handler shows: `stats`, `stats_frame`, `plot`, `health`, periodic logs.

`ReportingMethods` is mixed into `TokenCalibrationHandler`. `StatsLogger`
logs one line per model every ``stats_interval`` seconds from a daemon
thread, so a service sees its calibration in its logs without a call of its
own; it never touches the model calls (it reads the same snapshots `stats`
returns) and stops with the handler.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from langchain_tokencal._reporting import (
    HealthThresholds,
    check_health,
    plot_calibration,
    stats_frame,
    stats_html,
)
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pandas as pd

    from langchain_tokencal._calibration import ModelStats
    from langchain_tokencal._callbacks.baseline import Baseline
    from langchain_tokencal._callbacks.runs import PendingRuns
    from langchain_tokencal._reporting import HealthReport
    from langchain_tokencal.config import CounterConfig

__all__ = ["ReportingMethods", "StatsLogger", "stats_line"]

logger = logging.getLogger("langchain_tokencal.stats")


class ReportingMethods:
    """The handler's read-outs; see the module."""

    config: CounterConfig
    baseline: Baseline | None
    health_thresholds: HealthThresholds
    _pending: PendingRuns
    _counters: Mapping[str, Any]

    if TYPE_CHECKING:

        def _settle_ended(self) -> None: ...

    def stats(self) -> dict[str, ModelStats]:
        """Per-model calibration statistics (frozen snapshots)."""
        self._pending.purge_expired()  # runs that will never end are counted
        self._settle_ended()
        stats = {name: c.stats() for name, c in sorted(self._counters.items())}
        if self.baseline is not None:
            for name, st in stats.items():
                measured = self.baseline.errors(name)
                if measured is not None:
                    stats[name] = replace(
                        st,
                        baseline=self.baseline.name,
                        baseline_error=measured[0],
                        baseline_bias=measured[1],
                    )
        return stats

    def stats_frame(self) -> pd.DataFrame:
        """The statistics as a pandas DataFrame, one row per model.

        Raises:
            ImportError: Without pandas (``pip install 'langchain-tokencal[pandas]'``).
        """
        return stats_frame(self.stats())

    def plot(self, *, ax: Any = None) -> Any:
        """A matplotlib figure of each model's local and calibrated error.

        One line per model and report (see `plot_calibration`); ``ax`` draws
        on an existing ``Axes``.

        Raises:
            ImportError: Without matplotlib
                (``pip install 'langchain-tokencal[plot]'``).
        """
        return plot_calibration(self.stats(), ax=ax)

    def health(
        self,
        *,
        log: bool = True,
        thresholds: HealthThresholds | Mapping[str, Any] | None = None,
    ) -> HealthReport:
        """Check every model for low confidence, rising error, missing usage...

        Each issue is logged through ``logging`` (unless ``log=False``). The
        checks use ``thresholds``, else the handler's (``health=``); the
        report lists the ones used.
        """
        return check_health(
            self.stats(),
            min_points=self.config.min_points,
            thresholds=self.health_thresholds if thresholds is None else thresholds,
            log=log,
        )

    def _repr_html_(self) -> str:
        return stats_html(self.stats())


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def stats_line(s: ModelStats) -> str:
    """One model's statistics as one log line of ``name=value`` pairs.

    Errors are mean absolute percentages; ``-`` where nothing was measured.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler
        from langchain_tokencal._callbacks.reports import stats_line
        from langchain_tokencal.testing import FakeUsageChatModel

        handler = TokenCalibrationHandler()
        FakeUsageChatModel(model="m", callbacks=[handler]).invoke("hi")
        assert stats_line(handler.stats()["m"]).startswith("model=m reports=1")
        ```
    """
    return (
        f"model={s.model} reports={s.observations} "
        f"rejected={sum(s.rejected.values())} "
        f"calibrated_error={_pct(s.calibrated_error)} "
        f"local_error={_pct(s.local_error)} "
        f"recent_error={_pct(s.recent_error)} "
        f"confidence={s.confidence:.2f} memo_hit={_pct(s.memo.hit_rate)} "
        f"counter={s.counter.kind}{'(fallback)' if s.counter.fallback else ''}"
    )


def check_stats_interval(seconds: object) -> float | None:
    """``stats_interval`` as seconds, or None for no logging.

    Raises:
        ConfigError: A value that is not a positive, finite number.
    """
    if seconds is None:
        return None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        msg = (
            "stats_interval must be a positive number of seconds (or None for "
            f"no periodic stats), got {seconds!r}."
        )
        raise ConfigError(msg)
    return float(seconds)


class StatsLogger:
    """Logs `stats_line` for each model every ``interval`` seconds.

    On the ``langchain_tokencal.stats`` logger at ``INFO``, from a daemon
    thread started on the first `start` and stopped by `stop` (the handler's
    ``close``). A failure to read the statistics is logged and the next
    interval tried: it never ends the thread or reaches a model call.

    Args:
        read: Returns the statistics (the handler's ``stats``), or None
            once there is nothing to read (the thread then stops).
        interval: Seconds between logs.
    """

    def __init__(
        self, read: Callable[[], Mapping[str, ModelStats] | None], interval: float
    ) -> None:
        """Set up; nothing runs until `start`."""
        self._read = read
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="tokencal-stats", daemon=True
            )
            self._thread.start()

    @classmethod
    def of(cls, owner: ReportingMethods, interval: float) -> StatsLogger:
        """A logger of ``owner.stats`` that does not keep ``owner`` alive.

        The thread holds a weak reference: a handler dropped without
        ``close()`` is collected, and its logger stops at its next tick.
        """
        method = weakref.WeakMethod(owner.stats)

        def read() -> Mapping[str, ModelStats] | None:
            bound = method()
            return None if bound is None else bound()

        return cls(read, interval)

    def log_once(self) -> int:
        """Log every model's line now; returns the number of models logged."""
        stats = self._read()
        if stats is None:  # the handler is gone
            self._stop.set()
            return 0
        for s in stats.values():
            logger.info("tokencal stats: %s", stats_line(s))
        return len(stats)

    def _tick(self) -> None:
        try:
            self.log_once()
        except Exception:
            # A log must never end the thread: the next interval tries again.
            logger.warning("tokencal stats: could not read them", exc_info=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._tick()

    def stop(self) -> None:
        """Stop the thread and wait for it (a log in progress finishes)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
