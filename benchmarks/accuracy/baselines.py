"""The methods compared: tokencal itself and the baselines, each predicting the same prompts.

Every method is a `Method`: ``predict(call)`` before the call (`Call` holds the
model, messages, tools and tokencal's `TokenEstimate` of the same prompt,
computed once: ``count_messages`` is ``estimate().tokens``), and
``learn(call, reported)`` after it. Only tokencal
learns through the real callback path; the median-ratio baseline is fed the
same reports by the driver.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING, Any

import tiktoken
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_tokencal import TokenEstimate

__all__ = ["BASELINES", "METHODS", "Call", "Method", "make_methods"]


@dataclass(frozen=True, slots=True)
class Call:
    """What a method sees of one call before it is made."""

    model: str
    messages: Sequence[BaseMessage]
    tools: list[dict[str, Any]] | None
    est: TokenEstimate  # tokencal's estimate of the same prompt, made once
    local: int  # tokencal's uncalibrated local count (`TokenEstimate.local_tokens`)


class Method:
    """A way of predicting a prompt's token count before the call."""

    name = ""

    def predict(self, call: Call) -> int:
        raise NotImplementedError

    def learn(self, call: Call, reported: int) -> None:
        """Most baselines learn nothing."""


class TokencalTokens(Method):
    name = "tokencal"

    def predict(self, call: Call) -> int:
        return call.est.tokens


class TokencalHigh(Method):
    name = "tokencal_high"

    def predict(self, call: Call) -> int:
        return call.est.high


def _chars(m: BaseMessage) -> int:
    n = len(m.content) if isinstance(m.content, str) else len(json.dumps(m.content))
    if isinstance(m, AIMessage) and m.tool_calls:
        n += sum(len(c["name"]) + len(json.dumps(c["args"])) for c in m.tool_calls)
    if isinstance(m, ToolMessage):
        n += len(m.tool_call_id)
    return n


class CharsPer4(Method):
    name = "chars4"

    def predict(self, call: Call) -> int:
        chars = sum(_chars(m) for m in call.messages)
        if call.tools:
            chars += len(json.dumps(call.tools))
        return round(chars / 4 + 4 * len(call.messages) + 3)


class LCApprox(Method):
    name = "lc_approx"

    def predict(self, call: Call) -> int:
        return count_tokens_approximately(call.messages, tools=call.tools)


class LCApproxScaled(Method):
    name = "lc_approx_scaled"

    def predict(self, call: Call) -> int:
        return count_tokens_approximately(
            call.messages, tools=call.tools, use_usage_metadata_scaling=True
        )


class MedianRatio(Method):
    """The original design: median of reported/local over the last 100 reports.

    Ratios outside 0.5-2.0 are dropped; the median scales tokencal's
    uncalibrated local count of the same prompt (``TokenEstimate.local_tokens``).
    """

    name = "median_ratio"
    WINDOW = 100

    def __init__(self) -> None:
        self._ratios: dict[str, deque[float]] = {}

    def predict(self, call: Call) -> int:
        ratios = self._ratios.get(call.model)
        if not ratios:
            return call.local
        return round(call.local * median(ratios))

    def learn(self, call: Call, reported: int) -> None:
        if call.local <= 0:
            return
        ratio = reported / call.local
        if 0.5 <= ratio <= 2.0:
            self._ratios.setdefault(call.model, deque(maxlen=self.WINDOW)).append(ratio)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        b if isinstance(b, str) else str(b.get("text", ""))
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
    )


class PlainTiktoken(Method):
    """A tiktoken vocabulary with OpenAI's message framing, uncalibrated.

    3 per message + 1 for the role + the content, 3 priming the reply; a tool
    call is its name and JSON arguments, bound tools are the tokens of their
    JSON. What people count with when they have no tokenizer for the model;
    independent of the package under test.
    """

    ENCODING = ""

    def __init__(self) -> None:
        enc = tiktoken.get_encoding(self.ENCODING)
        self._count = functools.lru_cache(maxsize=50_000)(
            lambda text: len(enc.encode_ordinary(text))
        )

    def predict(self, call: Call) -> int:
        count = self._count
        total = 3
        for m in call.messages:
            total += 4 + count(_text(m.content))
            if isinstance(m, AIMessage):
                for c in m.tool_calls:
                    total += count(c["name"]) + count(json.dumps(c["args"]))
        if call.tools:
            total += count(json.dumps(call.tools))
        return total


class Cl100k(PlainTiktoken):
    name = "cl100k"
    ENCODING = "cl100k_base"


class O200k(PlainTiktoken):
    name = "o200k"
    ENCODING = "o200k_base"


METHODS = ("tokencal", "tokencal_high")
BASELINES = (
    "chars4",
    "lc_approx",
    "lc_approx_scaled",
    "median_ratio",
    "cl100k",
    "o200k",
)
_CLASSES: dict[str, type[Method]] = {
    c.name: c
    for c in (
        TokencalTokens,
        TokencalHigh,
        CharsPer4,
        LCApprox,
        LCApproxScaled,
        MedianRatio,
        Cl100k,
        O200k,
    )
}


def make_methods() -> list[Method]:
    """Fresh instances of every method, tokencal's first."""
    return [_CLASSES[name]() for name in (*METHODS, *BASELINES)]
