"""User turns for the loops: prose, code, JSON, tables, Chinese, short asks.

Deterministic: `questions(n, seed)` returns the same list on every run. The
mix mirrors what chat and agent prompts hold, including the content classes
a character count gets wrong (code, JSON, digits, CJK).
"""

# ruff: noqa: RUF001 - Chinese punctuation is full-width on purpose

from __future__ import annotations

import json
import random

__all__ = ["SYSTEM", "SYSTEM_TOOLS", "questions"]

SYSTEM = (
    "You are a careful assistant for a logistics company. Answer in plain English, "
    "cite figures exactly as given, and say so when the data is not enough to "
    "answer. Keep answers short unless the user asks for detail. Never invent "
    "shipment numbers, prices or dates."
)

SYSTEM_TOOLS = (
    SYSTEM + " You can look up the weather, search the internal documents and run "
    "read-only SQL on the shipments database; call a tool whenever the answer "
    "depends on current data."
)

_PROSE = (
    (
        "Our Rotterdam warehouse reported that inbound pallets were delayed again this "
        "week. The carrier blamed a strike at the port, but two other forwarders had no "
        "delays at all. I need to decide whether to move the contract."
    ),
    (
        "Can you explain the difference between a bill of lading and a commercial "
        "invoice, and which one customs asks for first when a container arrives?"
    ),
    (
        "Summarize the main risks of shipping lithium batteries by air versus by sea, "
        "in a way my sales team can repeat to customers without sounding alarmist."
    ),
    (
        "We are planning the winter schedule. Last year the northern route lost about "
        "a day per trip in December; what should we budget for this year, and how "
        "would you explain the buffer to the board?"
    ),
)

_CODE = (
    (
        "def volumetric_weight(length_cm, width_cm, height_cm, divisor=5000):\n"
        '    """Chargeable weight of a parcel in kilograms."""\n'
        "    volume = length_cm * width_cm * height_cm\n"
        "    return round(volume / divisor, 2)\n\n\n"
        "def chargeable(actual_kg, dims):\n"
        "    return max(actual_kg, volumetric_weight(*dims))\n"
    ),
    (
        "SELECT s.id, s.origin, s.destination, AVG(e.delay_minutes) AS avg_delay\n"
        "FROM shipments s JOIN events e ON e.shipment_id = s.id\n"
        "WHERE e.kind = 'arrival' AND s.created_at >= DATE '2025-01-01'\n"
        "GROUP BY s.id, s.origin, s.destination\nHAVING AVG(e.delay_minutes) > 90\n"
        "ORDER BY avg_delay DESC LIMIT 20;"
    ),
)

_CJK = (
    (
        "请帮我把下面这段话翻译成英文：本周上海港的集装箱吞吐量比上周增加了百分之十二，"
        "但由于天气原因，有三艘货轮推迟靠港。客户希望我们提供新的到港时间。"
    ),
    (
        "我们的仓库在深圳和宁波各有一个，请比较两地的租金、人工成本和到港口的距离，"
        "并给出一个简短的建议。"
    ),
)


def _table(rng: random.Random) -> str:
    rows = ["| lane | shipments | on time | avg delay (min) |", "|---|---|---|---|"]
    for lane in ("RTM-HAM", "SHA-RTM", "NGB-LAX", "SZX-FRA", "HAM-NYC"):
        n = rng.randint(40, 900)
        rows.append(
            f"| {lane} | {n} | {rng.randint(60, 99)}% | {rng.randint(5, 400)} |"
        )
    return "\n".join(rows)


def _json_blob(rng: random.Random) -> str:
    doc = {
        "shipment": f"SHP-{rng.randint(100000, 999999)}",
        "status": rng.choice(["in_transit", "customs_hold", "delivered"]),
        "legs": [
            {
                "from": a,
                "to": b,
                "eta": f"2025-12-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                "weight_kg": round(rng.uniform(100, 24000), 1),
            }
            for a, b in (("Shenzhen", "Rotterdam"), ("Rotterdam", "Zürich"))
        ],
        "notes": "Fragile; keep below 25 °C",
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


_SHORT = (
    "Thanks. And for next week?",
    "Why?",
    "Make it shorter.",
    "What would change if the volume doubled?",
    "Give me the three most important numbers only.",
    "ok, and in euros?",
)


def questions(n: int, seed: int = 7) -> list[str]:
    """``n`` user turns of mixed kinds and lengths."""
    rng = random.Random(seed)
    makers = (
        lambda: rng.choice(_PROSE),
        lambda: rng.choice(_SHORT),
        lambda: (
            "Why does this return the wrong weight for small parcels?\n\n```python\n"
            + rng.choice(_CODE[:1])
            + "```"
        ),
        lambda: (
            "This query is slow on 40 million rows, what index would help?\n\n"
            + _CODE[1]
        ),
        lambda: rng.choice(_CJK),
        lambda: (
            "Here are this month's lanes:\n\n"
            + _table(rng)
            + "\n\nWhich lane needs attention first?"
        ),
        lambda: (
            "The tracking API returned this:\n\n```json\n"
            + _json_blob(rng)
            + "\n```\nIs it late?"
        ),
        lambda: rng.choice(_SHORT),
    )
    return [makers[rng.randrange(len(makers))]() for _ in range(n)]
