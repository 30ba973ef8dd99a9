r"""The tools the agents bind, and their (deterministic) results.

Each tool returns JSON the way Python code usually does (``json.dumps`` with
its default ``ensure_ascii=True``), so non-ASCII text reaches the prompt as
``\uXXXX`` escapes, as it does from real agents.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

from langchain_core.tools import BaseTool, tool

from tests.integration_tests.replies import seed_of

__all__ = ["TOOLS_A", "TOOLS_B", "run_tool"]


@tool(parse_docstring=True)
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather and a three-day forecast for a city.

    Args:
        city: City name, e.g. "Zürich" or "São Paulo".
        unit: Temperature unit.
    """
    rng = random.Random(seed_of("weather", city, unit))
    return json.dumps(
        {
            "city": city,
            "now": {
                "temp": rng.randint(-5, 32),
                "sky": rng.choice(["clear", "rain", "fog"]),
            },
            "forecast": [
                {"day": d, "high": rng.randint(0, 35), "low": rng.randint(-10, 15)}
                for d in ("Mon", "Tue", "Wed")
            ],
            "station": "Zürich-Kloten" if rng.random() < 0.5 else "Genève-Cointrin",
        }
    )


@tool(parse_docstring=True)
def search_docs(query: str, top_k: int = 3) -> str:
    """Search the company's internal documents.

    Args:
        query: What to look for, in natural language.
        top_k: How many passages to return.
    """
    rng = random.Random(seed_of("docs", query, top_k))
    hits = [
        {
            "doc": f"policy-{rng.randint(1, 99):02d}.md",
            "score": round(rng.uniform(0.5, 0.99), 3),
            "text": rng.choice(
                [
                    "Claims for damaged goods must be filed within 14 days of delivery.",
                    "Dangerous goods (class 9) need a shipper's declaration signed by a certified person.",
                    "Liegegeld wird ab dem dritten Tag berechnet; Ausnahmen regelt der Vertrag.",
                    "港口滞期费自第四天起按每天每箱计算。",
                ]
            ),
        }
        for _ in range(max(1, min(int(top_k), 5)))
    ]
    return json.dumps({"query": query, "hits": hits})


@tool(parse_docstring=True)
def run_sql(query: str, limit: int = 20) -> str:
    """Run a read-only SQL query on the shipments database.

    Args:
        query: A SELECT statement.
        limit: Most rows to return.
    """
    rng = random.Random(seed_of("sql", query, limit))
    rows = [
        [
            f"SHP-{rng.randint(100000, 999999)}",
            rng.choice(["RTM", "HAM", "SHA"]),
            rng.randint(0, 600),
        ]
        for _ in range(rng.randint(1, 6))
    ]
    return json.dumps({"columns": ["id", "port", "delay_min"], "rows": rows})


@tool(parse_docstring=True)
def convert_currency(amount: float, source: str, target: str) -> str:
    """Convert an amount between currencies at today's rate.

    Args:
        amount: The amount to convert.
        source: ISO 4217 code of the amount's currency.
        target: ISO 4217 code to convert to.
    """
    rng = random.Random(seed_of("fx", amount, source, target))
    rate = round(rng.uniform(0.5, 1.5), 4)
    return json.dumps(
        {
            "amount": amount,
            "rate": rate,
            "result": round(amount * rate, 2),
            "target": target,
        }
    )


TOOLS_A: list[BaseTool] = [get_weather, search_docs, run_sql]
TOOLS_B: list[BaseTool] = [*TOOLS_A, convert_currency]
_BY_NAME = {t.name: t for t in TOOLS_B}


def run_tool(call: dict[str, Any]) -> str:
    """Execute a tool call as an agent would (bad arguments become an error text)."""
    fn = _BY_NAME.get(call["name"])
    if fn is None:
        return json.dumps({"error": f"unknown tool {call['name']}"})
    try:
        return str(fn.invoke(call["args"]))
    except Exception as err:  # noqa: BLE001 - the model sees the error, as agents do
        return json.dumps({"error": str(err)[:200]})
