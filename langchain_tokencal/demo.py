"""The offline demonstration behind ``make demo`` and ``tokencal demo``.

Two parts. First, one realistic conversation counted by the local counters of
several models next to the usual heuristics. Second, a simulated session with
an offline model whose hidden tokenizer and chat template differ from every
local one (as Claude's or Gemini's do): before each call the handler predicts
the prompt tokens, the model reports the truth, and the handler learns.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import tool

from langchain_tokencal import TokenCalibrationHandler, local_counter
from langchain_tokencal.testing import FakeUsageChatModel

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["CONVERSATION_TURNS", "calibration_session", "count_table", "run_demo"]

# Coefficients closer to zero than this are left out of the printed summary.
_SHOWN = 1e-3

_SYSTEM = (
    "You are a careful assistant for a logistics company. Answer in the user's "
    "language, cite order numbers exactly, and prefer short tables."
)

_TRACKING = json.dumps(
    {
        "order": 48213,
        "events": [
            {"ts": "2026-11-20T08:14:00Z", "status": "picked_up", "hub": "LYS"},
            {"ts": "2026-11-21T19:02:00Z", "status": "in_transit", "hub": "CDG"},
            {"ts": "2026-11-23T06:40:00Z", "status": "held", "reason": "customs"},
        ],
        "weight_kg": 12.5,
    },
    indent=2,
)

CONVERSATION_TURNS: tuple[str, ...] = (
    "Where is order 48213? The customer says it was due on Tuesday.",
    f"Here is the tracking payload from the carrier:\n{_TRACKING}",
    "客户说包裹在海关被扣留了。请用中文写一段简短的道歉信，并说明预计的交货时间。",  # noqa: RUF001
    (
        "Now write a Python function that parses that payload and returns the "
        "last status with its timestamp, with type hints and a docstring."
    ),
    (
        "```python\ndef last_status(payload: dict) -> tuple[str, str]:\n"
        "    events = sorted(payload['events'], key=lambda e: e['ts'])\n"
        "    return events[-1]['status'], events[-1]['ts']\n```\nIs this correct?"
    ),
    "Клиент из Москвы спрашивает, можно ли изменить адрес доставки. Что ответить?",
    "Summarize everything so far in three bullet points for the support ticket.",
    "What were the hub codes, in order, and how many hours passed between them?",
    (
        "Draft a polite email to the customs broker asking for the release status "
        "of shipment 48213, mentioning the 12.5 kg weight and the CDG hub."
    ),
    "Translate that email into Chinese: 请保持正式的语气。",
    (
        "List the three most common reasons parcels are held at customs, with one "
        "sentence on how to avoid each."
    ),
    "Give me a JSON object with fields order, delayed_days and next_action.",
    (
        "The customer replied: 'Thanks, but I need it by Friday for a wedding.' "
        "Suggest two options, with costs if we upgrade to express."
    ),
    (
        "Write a SQL query returning all orders held at customs for more than two "
        "days, newest first, with the hub and the hold reason."
    ),
    (
        "Compare DHL, UPS and La Poste for a 12.5 kg parcel from Lyon to Moscow in "
        "a Markdown table: price range, typical days, customs support."
    ),
    "Rewrite the apology in a warmer tone, at most 60 words.",
    "Now in Spanish, and sign it as 'Equipo de soporte'.",
    "What should we log in the ticket so the next agent understands the case?",
    (
        "Estimate the refund if the parcel arrives 5 days late and the policy "
        "gives 10% per late day, capped at 40%, on an order worth 189.90 EUR."
    ),
    "Thank you. Close the ticket with a one-line summary.",
)


@tool
def track_order(order_id: int, include_events: bool = True) -> str:  # noqa: FBT001, FBT002
    """Look up the carrier's tracking events for an order.

    Args:
        order_id: The order number.
        include_events: Whether to return every event or only the last one.
    """
    events = ["picked_up", "in_transit", "held"] if include_events else ["held"]
    return json.dumps({"order": order_id, "events": events})


def _sample_history() -> list[BaseMessage]:
    history: list[BaseMessage] = [SystemMessage(_SYSTEM)]
    for i, turn in enumerate(CONVERSATION_TURNS[:6]):
        history.append(HumanMessage(turn, name="agent_claire" if i % 3 == 0 else None))
        if i == 1:
            history.append(
                AIMessage(
                    "",
                    tool_calls=[
                        {
                            "name": "track_order",
                            "args": {"order_id": 48213},
                            "id": "call_1",
                        }
                    ],
                )
            )
            history.append(
                ToolMessage('{"order": 48213, "status": "held"}', tool_call_id="call_1")
            )
        history.append(AIMessage(f"Noted (step {i + 1}). Let me check that for you."))
    return history


def _chars4(messages: Sequence[BaseMessage]) -> int:
    return sum(len(str(m.content)) // 4 + 4 for m in messages) + 3


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        out.write(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            + "\n"
        )
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def count_table(out: TextIO) -> None:
    """Print one conversation counted by several models' local counters.

    Example:
        ```python
        import io

        from langchain_tokencal.demo import count_table

        out = io.StringIO()
        count_table(out)
        assert "o200k_base" in out.getvalue()
        ```
    """
    history = _sample_history()
    rows = [["model", "counter", "encoding", "tokens", "chars/4", "approx (core)"]]
    for model, provider in (
        ("gpt-4o", "openai"),
        ("gpt-4", "openai"),
        ("claude-sonnet-4-5", "anthropic"),
        ("gemini-2.5-pro", "google"),
    ):
        counter = local_counter(model, provider)
        info = counter.info
        rows.append(
            [
                model,
                info.kind + (" (fallback)" if info.fallback else ""),
                info.encoding or "characters",
                str(counter(history)),
                str(_chars4(history)),
                str(count_tokens_approximately(history)),
            ]
        )
    out.write(
        f"One conversation ({len(history)} messages: English, JSON, Chinese, "
        "code, Russian, a tool call)\n\n"
    )
    _table(rows, out)


def calibration_session(out: TextIO, calls: int = 20) -> dict[str, Any]:
    """Run a simulated session and print the estimate error per call.

    Args:
        out: Where the table and the statistics are written.
        calls: How many calls the session makes.

    Returns:
        ``{"errors": [(local_error, calibrated_error), ...], "stats": ModelStats}``:
        the relative error of each call's local and calibrated estimates, and
        the handler's final statistics for the model.

    Example:
        ```python
        import io

        from langchain_tokencal.demo import calibration_session

        result = calibration_session(io.StringIO(), calls=5)
        assert len(result["errors"]) == 5
        ```
    """
    handler = TokenCalibrationHandler()
    llm = FakeUsageChatModel(
        model="fake-claude",
        provider="anthropic",
        tokenizer="cl100k_base",
        framing_tokens=9,
        tokens_per_message=6,
        tool_preamble_tokens=346,
    ).bind_tools([track_order])
    history: list[BaseMessage] = [SystemMessage(_SYSTEM)]
    rows = [
        [
            "call",
            "msgs",
            "local",
            "estimate",
            "source",
            "reported",
            "local err",
            "calibrated err",
        ]
    ]
    errors: list[tuple[float, float]] = []
    for i in range(calls):
        history.append(HumanMessage(CONVERSATION_TURNS[i % len(CONVERSATION_TURNS)]))
        est = handler.estimate(history, model="fake-claude", tools=[track_order])
        reply = llm.invoke(history, config={"callbacks": [handler]})
        usage = getattr(reply, "usage_metadata", None) or {}
        reported = int(usage.get("input_tokens", 0))
        local_err = (est.local_tokens - reported) / reported
        cal_err = (est.tokens - reported) / reported
        errors.append((local_err, cal_err))
        rows.append(
            [
                str(i + 1),
                str(len(history)),
                str(est.local_tokens),
                str(est.tokens),
                est.source,
                str(reported),
                _pct(local_err),
                _pct(cal_err),
            ]
        )
        history.append(reply)
    out.write(
        "\nA simulated session: an offline model whose hidden tokenizer "
        "(cl100k_base),\nchat template (9 framing + 6 per message) and tool "
        "preamble (346 tokens)\ndiffer from the local counter. Before each call "
        "the handler predicts the\nprompt; the model then reports the truth "
        "through the callback.\n\n"
    )
    _table(rows, out)
    stats = handler.stats()["fake-claude"]
    out.write("\nCalibration statistics\n\n")
    coef = ", ".join(
        f"{k}={v:.3g}" for k, v in stats.coefficients.items() if abs(v) > _SHOWN
    )
    _table(
        [
            [
                "model",
                "reports",
                "local error",
                "calibrated error",
                "last 10",
                "confidence",
            ],
            [
                stats.model,
                str(stats.observations),
                f"{100 * (stats.local_error or 0):.2f}%",
                f"{100 * (stats.calibrated_error or 0):.2f}%",
                f"{100 * (stats.recent_error or 0):.2f}%",
                f"{stats.confidence:.2f}",
            ],
        ],
        out,
    )
    out.write(f"coefficients: {coef}\n")
    return {"errors": errors, "stats": stats}


def run_demo(out: TextIO) -> dict[str, Any]:
    """Run both parts of the demonstration, writing to ``out``.

    Returns:
        What `calibration_session` returns.

    Example:
        ```python
        import sys

        from langchain_tokencal.demo import run_demo

        run_demo(sys.stdout)
        ```
    """
    count_table(out)
    return calibration_session(out)
