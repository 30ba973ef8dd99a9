"""A figure of what calibration did: each model's error, report by report.

`plot_calibration` draws, per model, the absolute error of the local count
and of the calibrated count of each report, measured before that report
was learned (`ModelStats.errors`, the newest 500), and the baseline's
mean error when one is measured. Requires matplotlib (the ``[plot]``
extra), imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_tokencal._calibration.stats import ModelStats

__all__ = ["plot_calibration"]

_HINT = "plot_calibration needs matplotlib: pip install 'langchain-tokencal[plot]'"


def plot_calibration(stats: Mapping[str, ModelStats], *, ax: Any = None) -> Any:
    """Plot each model's local and calibrated error over its reports.

    Args:
        stats: Per-model statistics (`TokenCalibrationHandler.stats`).
        ax: A matplotlib ``Axes`` to draw on; a new figure's when ``None``.

    Returns:
        The matplotlib ``Figure``.

    Raises:
        ImportError: Without matplotlib, with the install line.

    Example:
        ```python
        from langchain_tokencal import TokenCalibrationHandler

        handler = TokenCalibrationHandler()
        figure = handler.plot()  # one line per model once reports came in
        ```
    """
    try:
        import matplotlib.pyplot as plt  # noqa: PLC0415 - optional: [plot]
    except ImportError as err:
        raise ImportError(_HINT) from err
    if ax is None:
        figure, ax = plt.subplots(figsize=(9, 3.5))
    else:
        figure = ax.figure
    drawn = 0
    for name, s in stats.items():
        if not s.errors:
            continue
        reports = range(1, len(s.errors) + 1)
        (line,) = ax.plot(
            reports,
            [100 * abs(e[1]) for e in s.errors],
            marker="o",
            markersize=3,
            label=f"{name}: calibrated",
        )
        ax.plot(
            reports,
            [100 * abs(e[0]) for e in s.errors],
            linestyle="--",
            color=line.get_color(),
            alpha=0.6,
            label=f"{name}: local",
        )
        if s.baseline_error is not None:
            ax.axhline(
                100 * s.baseline_error,
                linestyle=":",
                color=line.get_color(),
                label=f"{name}: {s.baseline} (mean)",
            )
        drawn += 1
    ax.set_xlabel("report (newest 500), error measured before learning it")
    ax.set_ylabel("absolute error (%)")
    ax.set_yscale("symlog", linthresh=1)
    ax.grid(alpha=0.3)
    if drawn:
        # Beside the axes: one line per model and kind would hide the curves.
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.set_title("no reports yet")
    figure.tight_layout()
    return figure
