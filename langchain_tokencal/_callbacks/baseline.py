"""A staged rollout: the counter a team uses today, measured beside ours.

``baseline=`` names a token counter (``count_tokens_approximately``, the
team's own, any ``(messages) -> int`` or ``(messages, *, tools=None) -> int``);
every report the handler learns from is also counted with it, and its error
against the reported input tokens is kept per model, next to ours, in
`stats()` (``baseline_error``, ``baseline_bias``). With ``mode="shadow"``,
`count_messages`, `counter()` and `trim` answer with the baseline's number
while ours keeps learning and being measured: the gain on a team's own
traffic is visible before anything depends on it; ``mode="calibrated"``
then switches.

The baseline runs when a report is settled (off the model call), and never
raises: a baseline that fails on a prompt is skipped for that report.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Literal

from langchain_core.messages.utils import convert_to_messages

from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.messages import BaseMessage

__all__ = ["MODES", "Baseline", "Mode", "check_mode"]

logger = logging.getLogger(__name__)

Mode = Literal["calibrated", "shadow"]
MODES: Final = ("calibrated", "shadow")
# Errors kept per model (the newest): the window of `stats()`'s means.
_WINDOW: Final = 500


def check_mode(mode: object) -> Mode:
    """Validate ``mode=``.

    Raises:
        ConfigError: Not one of `MODES`.
    """
    if mode == "calibrated":
        return "calibrated"
    if mode == "shadow":
        return "shadow"
    msg = f"mode must be 'calibrated' or 'shadow', got {mode!r:.40}."
    raise ConfigError(msg)


class Baseline:
    """Another token counter, measured against every learned report.

    Args:
        counter: ``(messages) -> int``, or with a ``tools`` keyword.

    Raises:
        ConfigError: ``counter`` is not callable.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_core.messages.utils import count_tokens_approximately

        from langchain_tokencal._callbacks.baseline import Baseline

        baseline = Baseline(count_tokens_approximately)
        baseline.measure("m", [HumanMessage("hello there")], None, 12)
        error, bias = baseline.errors("m")
        assert error >= 0
        ```
    """

    def __init__(self, counter: Callable[..., int]) -> None:
        """Wrap ``counter``; nothing measured yet."""
        given: object = counter  # typed callers cannot pass anything else
        if not callable(given):
            msg = f"baseline= must be a token counter (a callable), got {given!r:.60}."
            raise ConfigError(msg)
        self.counter = counter
        self.name = getattr(counter, "__name__", type(counter).__name__)
        self._takes_tools = _takes_tools(counter)
        self._errors: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.failed = 0

    def count(self, messages: Sequence[Any], tools: Sequence[Any] | None) -> int:
        """The baseline's count of a prompt (its tools too, when it takes them)."""
        converted: list[BaseMessage] = convert_to_messages(messages)
        if tools and self._takes_tools:
            return int(self.counter(converted, tools=list(tools)))
        return int(self.counter(converted))

    def measure(
        self,
        model: str,
        messages: Sequence[Any],
        tools: Sequence[Any] | None,
        reported: int,
    ) -> None:
        """Count a reported prompt with the baseline, keep its error; never raises."""
        if reported <= 0:
            return
        try:
            counted = self.count(messages, tools)
        except Exception:
            self.failed += 1
            if self.failed == 1:
                logger.warning(
                    "tokencal: the baseline counter %s failed on a prompt; such "
                    "reports are left out of its error",
                    self.name,
                    exc_info=True,
                )
            return
        error = (counted - reported) / reported
        with self._lock:
            window = self._errors.get(model)
            if window is None:
                window = self._errors[model] = deque(maxlen=_WINDOW)
            window.append(error)

    def errors(self, model: str) -> tuple[float, float] | None:
        """Mean absolute and mean signed relative error of the baseline, if measured."""
        with self._lock:
            window = tuple(self._errors.get(model, ()))
        if not window:
            return None
        return (
            sum(abs(e) for e in window) / len(window),
            sum(window) / len(window),
        )


def _takes_tools(counter: Callable[..., Any]) -> bool:
    """Whether a counter accepts a ``tools`` keyword (LangChain's newer counters)."""
    try:
        parameters = inspect.signature(counter).parameters
    except (TypeError, ValueError):
        return False
    return "tools" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
