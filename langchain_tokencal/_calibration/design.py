"""The regression's design: which coefficient multiplies which feature.

A calibrated count is the local count plus a residual that the regression
predicts from one row of features per report. The row is laid out as
`COEFFICIENT_NAMES` says, in two blocks:

| position | coefficient | feature of a report |
|---|---|---|
| `FRAMING` | ``framing`` | 1 for a prompt counted from its start (no anchor) |
| `TOOL_PREAMBLE` | ``tool_preamble`` | 1 if tools are bound (and no anchor) |
| `TOOL_SCHEMA_RATE` | ``tool_schema_rate`` | the tool schemas' reference tokens |
| `MESSAGES` | ``per_message`` ... ``tool_result`` | the new messages' summed vectors |

The message block starts at `PER_MESSAGE` and has one coefficient per entry of
a message's feature vector (`N_FEATURES`: its intercept, the content classes,
image tokens, tool calls and the tool-result flag), so a message's own
residual is the dot product of that block with its vector.

Example:
    ```python
    from langchain_tokencal._calibration.design import MESSAGES, PER_MESSAGE
    from langchain_tokencal._calibration.regression import COEFFICIENT_NAMES

    assert COEFFICIENT_NAMES[PER_MESSAGE] == "per_message"
    assert COEFFICIENT_NAMES[MESSAGES][-1] == "tool_result"
    ```
"""

from __future__ import annotations

from operator import mul
from typing import TYPE_CHECKING, Final

from langchain_tokencal._calibration.regression import COEFFICIENT_NAMES
from langchain_tokencal._features import FEATURE_CLASSES, FEATURE_IMAGE, N_FEATURES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal._features import MessageFeatures, ToolFeatures

__all__ = [
    "FRAMING",
    "MESSAGES",
    "PER_MESSAGE",
    "TOOL_PREAMBLE",
    "TOOL_SCHEMA_RATE",
    "base_estimate",
    "content_tokens",
    "design_row",
    "has_images",
    "message_estimate",
]

FRAMING: Final = COEFFICIENT_NAMES.index("framing")
TOOL_PREAMBLE: Final = COEFFICIENT_NAMES.index("tool_preamble")
TOOL_SCHEMA_RATE: Final = COEFFICIENT_NAMES.index("tool_schema_rate")
PER_MESSAGE: Final = COEFFICIENT_NAMES.index("per_message")
MESSAGES: Final = slice(PER_MESSAGE, PER_MESSAGE + N_FEATURES)
"""The message block: one coefficient per entry of a message feature vector."""

if MESSAGES.stop != len(COEFFICIENT_NAMES):  # pragma: no cover - a layout bug
    msg = "the message block must end the coefficient vector"
    raise RuntimeError(msg)


def message_estimate(coef: Sequence[float], f: MessageFeatures) -> float:
    """A message's calibrated cost: its local tokens plus its residual (>= 1)."""
    residual: float = sum(map(mul, coef[MESSAGES], f.vector))
    return max(f.local + residual, 1.0)


def base_estimate(coef: Sequence[float], framing: int, tools: ToolFeatures) -> float:
    """A prompt's calibrated fixed cost beyond its messages (>= 0).

    Args:
        coef: The regression's coefficients.
        framing: The local counter's framing tokens.
        tools: The bound tool set's features.
    """
    value = framing + tools.local + coef[FRAMING]
    if tools.count:
        value += coef[TOOL_PREAMBLE] + coef[TOOL_SCHEMA_RATE] * tools.schema_tokens
    return max(value, 0.0)


def design_row(totals: Sequence[float], tools: ToolFeatures | None) -> list[float]:
    """The regression row of a report.

    Args:
        totals: The sum of the new messages' feature vectors.
        tools: The tool set when the prompt is counted from its start; None
            when a reported prefix anchors it (its fixed costs are known).
    """
    x = [0.0] * len(COEFFICIENT_NAMES)
    if tools is not None:
        x[FRAMING] = 1.0
        if tools.count:
            x[TOOL_PREAMBLE] = 1.0
            x[TOOL_SCHEMA_RATE] = tools.schema_tokens
    x[PER_MESSAGE : PER_MESSAGE + len(totals)] = totals
    return x


def content_tokens(vector: Sequence[float]) -> float:
    """A message's local content tokens: its classes, not intercept or images."""
    return sum(vector[FEATURE_CLASSES])


def has_images(totals: Sequence[float]) -> bool:
    """True if summed message vectors include image tokens."""
    return bool(totals[FEATURE_IMAGE])
