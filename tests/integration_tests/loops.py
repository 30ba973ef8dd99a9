"""Chat and agent loops through a real client, measuring each count before its call.

Before every call the handler estimates the prompt; the server then bills the
truth (its hidden template). A `LoopResult` holds both for every call, and
the numbers the Done-when criteria use: the mean absolute relative error after
call 15 and how often ``estimate().high`` fell below the truth (a trimmed
history that would overflow), the first use of each tool set included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

from langchain_tokencal import TokenCalibrationHandler
from tests.integration_tests.corpus import SYSTEM, SYSTEM_TOOLS, questions
from tests.integration_tests.loopback import LoopbackServer
from tests.integration_tests.tools import TOOLS_A, TOOLS_B, run_tool

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from tests.integration_tests.clients import Client

__all__ = ["AFTER", "CALLS", "LOOP_REPORT", "LoopResult", "loop_result", "run_loop"]

CALLS = 30
AFTER = 15  # the error criterion counts calls after this one
SWITCH = 20  # the tool loop binds a second tool set from this call (0-based)

# Each loop's numbers, printed at the end of the run (conftest's terminal summary).
LOOP_REPORT: dict[str, dict[str, Any]] = {}
_RESULTS: dict[tuple[str, str], LoopResult] = {}


@dataclass(frozen=True)
class Point:
    """One call: the estimate made before it and the count the server billed."""

    call: int  # 1-based
    tokens: int
    high: int
    source: str
    truth: int
    first_use: bool  # the first call with this tool set

    @property
    def error(self) -> float:
        """Signed relative error of the estimate."""
        return (self.tokens - self.truth) / self.truth


@dataclass(frozen=True)
class LoopResult:
    """A loop's points and the criteria's numbers."""

    name: str
    points: tuple[Point, ...]

    @property
    def after(self) -> list[Point]:
        """The points after call `AFTER`."""
        return [p for p in self.points if p.call > AFTER]

    @property
    def mape_after(self) -> float:
        """Mean absolute relative error after call `AFTER`."""
        return sum(abs(p.error) for p in self.after) / len(self.after)

    @property
    def max_after(self) -> float:
        """Largest absolute relative error after call `AFTER`."""
        return max(abs(p.error) for p in self.after)

    @property
    def under(self) -> int:
        """Calls whose ``high`` was below the truth."""
        return sum(p.high < p.truth for p in self.points)

    @property
    def under_rate(self) -> float:
        """Share of calls whose ``high`` was below the truth."""
        return self.under / len(self.points)

    def report(self) -> dict[str, Any]:
        """The numbers the terminal summary prints."""
        first = [p for p in self.points if p.first_use]
        return {
            "calls": len(self.points),
            "mape_after": self.mape_after,
            "max_after": self.max_after,
            "under": self.under,
            "first_use_errors": [p.error for p in first],
            "first_use_under": [p.high < p.truth for p in first],
        }

    def describe(self) -> str:
        """Every call, for the assertion message."""
        rows = [
            (
                f"{self.name}: MAPE after call {AFTER} {self.mape_after:.2%}, "
                f"high < truth on {self.under}/{len(self.points)} calls"
            )
        ]
        rows.extend(
            f"  call {p.call:>2} {p.source:>10} est {p.tokens:>6} high {p.high:>6} "
            f"truth {p.truth:>6} err {p.error:+.2%}{' first use' if p.first_use else ''}"
            for p in self.points
        )
        return "\n".join(rows)


def run_loop(client: Client, kind: str) -> LoopResult:
    """Run a ``"chat"`` or ``"tool"`` loop of `CALLS` calls through ``client``."""
    with LoopbackServer(client.app()) as server:
        # The Mistral API here counts with a stand-in (Llama 3's vocabulary
        # under Mistral's control tokens, see truth.py), not Mistral's own
        # encoder; the package's exact mistral-common counter would be judged
        # against a fake, so this loop measures learning as before.
        # test_exact_first_call.py checks the real Mistral count.
        handler = TokenCalibrationHandler(own_tokenizers=client.id != "mistral")
        handler.raise_error = True
        llm = client.make(server.url, callbacks=[handler])
        try:
            loop = _chat if kind == "chat" else _tools
            points = loop(llm, handler, client.key, server)
        finally:
            handler.close()
        assert not server.errors, server.errors
    return LoopResult(f"{client.id} {kind}", tuple(points))


def loop_result(client: Client, kind: str) -> LoopResult:
    """`run_loop` once per client and kind in a session (several tests read it)."""
    key = (client.id, kind)
    if key not in _RESULTS:
        result = _RESULTS[key] = run_loop(client, kind)
        LOOP_REPORT[result.name] = result.report()
    return _RESULTS[key]


def _measure(
    handler: TokenCalibrationHandler,
    key: str,
    history: list[BaseMessage],
    tools: Any,
    *,
    server: LoopbackServer,
    send: Any,
) -> tuple[BaseMessage, int, int, str]:
    est = handler.estimate(history, model=key, tools=tools)
    billed_before = len(server.app.bills)
    reply = send(history)
    assert len(server.app.bills) == billed_before + 1
    return reply, est.tokens, est.high, est.source


def _chat(
    llm: Any, handler: TokenCalibrationHandler, key: str, server: LoopbackServer
) -> list[Point]:
    history: list[BaseMessage] = [SystemMessage(SYSTEM)]
    points = []
    for i, question in enumerate(questions(CALLS, seed=1)):
        history.append(HumanMessage(question))
        reply, tokens, high, source = _measure(
            handler, key, history, None, server=server, send=llm.invoke
        )
        truth = server.app.bills[-1].input_tokens
        points.append(Point(i + 1, tokens, high, source, truth, first_use=False))
        history.append(reply)
    return points


def _tools(
    llm: Any, handler: TokenCalibrationHandler, key: str, server: LoopbackServer
) -> list[Point]:
    history: list[BaseMessage] = [SystemMessage(SYSTEM_TOOLS)]
    asks = iter(questions(3 * CALLS, seed=4))
    points = []
    pending = False  # the last reply called tools: their results are the next prompt
    for i in range(CALLS):
        tools = TOOLS_A if i < SWITCH else TOOLS_B
        if not pending:
            history.append(HumanMessage(next(asks)))
        bound = llm.bind_tools(tools)
        reply, tokens, high, source = _measure(
            handler, key, history, tools, server=server, send=bound.invoke
        )
        truth = server.app.bills[-1].input_tokens
        points.append(
            Point(i + 1, tokens, high, source, truth, first_use=i in (0, SWITCH))
        )
        history.append(reply)
        calls = getattr(reply, "tool_calls", None) or []
        history.extend(ToolMessage(run_tool(c), tool_call_id=c["id"]) for c in calls)
        pending = bool(calls)
    return points
