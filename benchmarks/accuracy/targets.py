"""The "Done when" targets of issue 10, each measured and marked PASS or FAIL.

Targets the accuracy benchmark cannot measure (misreporting servers, the real
partner clients, speed) are listed as ``n/a`` with where they are measured.
"""

from __future__ import annotations

from typing import Any

from benchmarks.accuracy.baselines import BASELINES
from benchmarks.accuracy.metrics import BUCKETS

__all__ = ["beaten_by", "done_when", "format_targets", "summary_line"]

TIE = 0.0005  # an exact baseline cannot be beaten, only matched


def _pct(v: float | None) -> str:
    # Three significant digits: 0.301% must not print as a passing 0.30%.
    return "-" if v is None else f"{v * 100:.3g}%"


def beaten_by(st: dict[str, Any]) -> list[str]:
    """Baselines and buckets where tokencal's MAPE is not the lowest (ties allowed)."""
    failures = []
    for b, _, _ in BUCKETS:
        ours = st["tokencal"][b]["mean"]
        if ours is None:
            continue
        for base in BASELINES:
            theirs = st[base][b]["mean"]
            if theirs is not None and ours > theirs + TIE:
                failures.append(f"{base}@{b}")
    return failures


def _worst(values: dict[str, float | None]) -> tuple[str, float | None]:
    known = {k: v for k, v in values.items() if v is not None}
    if not known:
        return "-", None
    k = max(known, key=lambda x: known[x])
    return k, known[k]


def done_when(
    overall: dict[str, Any],
    per_provider: dict[str, dict[str, Any]],
    *,
    cov: dict[str, dict[str, Any]],
    shared: dict[str, dict[str, Any]],
    reuse: dict[str, Any] | None,
    openai_tools: dict[str, Any] | None,
    order: dict[str, list[dict[str, Any]]],
    openai_model: str = "gpt-4o",
) -> list[dict[str, Any]]:
    """Every target: name, measured value, detail, pass (True/False/None for n/a)."""
    out: list[dict[str, Any]] = []
    t, h = overall["tokencal"], overall["tokencal_high"]

    def put(name: str, value: Any, ok: bool | None, detail: str = "") -> None:  # noqa: FBT001
        out.append({"name": name, "value": value, "pass": ok, "detail": detail})

    late = {p: st["tokencal"]["21+"]["mean"] for p, st in per_provider.items()}
    who, v = _worst(late)
    put("every provider: MAPE 21+ <= 2.5%", v, v is not None and v <= 0.025,
        f"worst {who}; " + " ".join(f"{p}={_pct(x)}" for p, x in late.items()))  # fmt: skip
    for name, bucket, key, limit in (
        ("pooled: MAPE 21+ <= 1.5%", "21+", "mean", 0.015),
        ("pooled: p95 21+ <= 6%", "21+", "p95", 0.06),
        ("pooled: MAPE 1-5 <= 6%", "1-5", "mean", 0.06),
        ("pooled: MAPE 6-20 <= 2.5%", "6-20", "mean", 0.025),
    ):
        v = t[bucket][key]
        put(name, v, v is not None and v <= limit)
    under = {p: st["tokencal"]["all"]["under2"] for p, st in per_provider.items()}
    v = t["all"]["under2"]
    who, w = _worst(under)
    put("point under-counted by >2% on <= 8% of calls", v, v is not None and v <= 0.08,
        f"worst provider {who} {_pct(w)}")  # fmt: skip
    v = h["all"]["under2"]
    who, w = _worst(
        {p: st["tokencal_high"]["all"]["under2"] for p, st in per_provider.items()}
    )
    put("high: under-counted by >2% on <= 1.5% of calls", v, v is not None and v <= 0.015,
        f"worst provider {who} {_pct(w)}")  # fmt: skip
    v = h["all"]["bias"]
    put("high: mean over-count <= 6% pooled", v, v is not None and v <= 0.06)
    over = {p: st["tokencal_high"]["all"]["bias"] for p, st in per_provider.items()}
    who, v = _worst(over)
    put("high: mean over-count <= 10% every provider", v, v is not None and v <= 0.10,
        f"worst {who}; " + " ".join(f"{p}={_pct(x)}" for p, x in over.items()))  # fmt: skip
    lowest = min(
        ((s, c["high_covers"]) for s, c in cov.items() if s != "all"),
        key=lambda kv: kv[1],
        default=("-", None),
    )
    put("high: coverage reported per source", cov["all"]["high_covers"], True,
        f"high >= truth overall; lowest source {lowest[0]} {_pct(lowest[1])}")  # fmt: skip
    oa = per_provider.get(openai_model)
    if oa is not None:
        means = {b: oa["tokencal"][b]["mean"] for b, _, _ in BUCKETS}
        _, v = _worst(means)
        put(f"{openai_model}: MAPE <= 0.3% every bucket", v, v is not None and v <= 0.003,
            " ".join(f"{b}={_pct(m)}" for b, m in means.items()))  # fmt: skip
    if openai_tools is not None:
        means = {b: openai_tools["tokencal"][b]["mean"] for b, _, _ in BUCKETS}
        _, v = _worst(means)
        put(f"{openai_model}: MAPE <= 0.3% every bucket, tool-bound calls", v,
            v is not None and v <= 0.003, " ".join(f"{b}={_pct(m)}" for b, m in means.items()))  # fmt: skip
    if reuse is not None:
        v = reuse["second_plain_exact"]
        put(f"{openai_model}: a tool set's second use is exact", v, v is not None and v >= 1.0,
            f"share exact of {reuse['n_second_plain']} later uses without tool messages; "
            f"within 1 token {_pct(reuse['second_plain_within1'])}; all later uses exact "
            f"{_pct(reuse['second_exact'])} of {reuse['n_second']}")  # fmt: skip
    errs = {p: s.get("tokencal") for p, s in shared.items()}
    who, v = _worst(errs)
    put("shared system prompt: error after call 5 <= 2% every provider", v,
        v is not None and v <= 0.02, f"worst {who}; " + " ".join(f"{p}={_pct(x)}" for p, x in errs.items()))  # fmt: skip
    worse = [
        p for p, s in shared.items() if s.get("n") and s["tokencal"] > s["lc_approx"]
    ]
    put("shared system prompt: never worse than count_tokens_approximately",
        len(worse), not worse, "worse on: " + (", ".join(worse) or "none"))  # fmt: skip
    differ = [
        f"{p}(warm={c['warm']}: {c['distinct_states']} states)"
        for p, cs in order.items()
        for c in cs
        if not c["identical"]
    ]
    checks = sum(len(cs) for cs in order.values())
    unrepeatable = sum(not c["repeatable"] for cs in order.values() for c in cs)
    put("batch: learned state the same whatever the completion order", len(differ),
        not differ and checks > 0,
        f"{checks} checks, {unrepeatable} not repeatable in the same order; differ: " + (", ".join(differ) or "none"))  # fmt: skip
    fails = [f"{p}:{f}" for p, st in per_provider.items() for f in beaten_by(st)]
    put("beats every baseline in every bucket for every provider", len(fails), not fails,
        ", ".join(fails) or "none")  # fmt: skip
    put("misreporting servers: named rejections and health warnings", None, None,
        "not measured here: unit tests through LangChain")  # fmt: skip
    put("real partner clients: <= 1% after call 15, high below truth <= 2%", None, None,
        "not measured here: loopback integration tests")  # fmt: skip
    put(
        "speed targets still hold",
        None,
        None,
        "not measured here: python -m benchmarks.speed",
    )
    return out


def format_targets(results: list[dict[str, Any]]) -> str:
    lines = ["== Done-when targets of issue 10 (tokencal; pooled unless stated)"]
    for r in results:
        mark = {True: "PASS", False: "FAIL", None: " n/a"}[r["pass"]]
        v = r["value"]
        shown = _pct(v) if isinstance(v, float) else ("" if v is None else str(v))
        detail = f"  [{r['detail']}]" if r["detail"] else ""
        lines.append(f"  {mark}  {r['name']:<66} {shown:>8}{detail}")
    return "\n".join(lines)


def summary_line(overall: dict[str, Any], results: list[dict[str, Any]]) -> str:
    t, h = overall["tokencal"], overall["tokencal_high"]
    measured = [r for r in results if r["pass"] is not None]
    failed = [r["name"] for r in measured if not r["pass"]]
    return (
        f"SUMMARY MAPE 1-5={_pct(t['1-5']['mean'])} 6-20={_pct(t['6-20']['mean'])} "
        f"21+={_pct(t['21+']['mean'])} p95 21+={_pct(t['21+']['p95'])} | "
        f"under>2%={_pct(t['all']['under2'])} | high: under>2%={_pct(h['all']['under2'])} "
        f"overcount={_pct(h['all']['bias'])} | targets passed "
        f"{len(measured) - len(failed)}/{len(measured)}"
    )
