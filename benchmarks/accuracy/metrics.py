"""Error statistics over call records.

Errors are relative to the reported prompt tokens: ``(predicted - true) / true``.
Buckets are by call index per stream (one handler), i.e. 1 + how many reports
the handler had seen before the call: ``1-5`` (cold start), ``6-20``, ``21+``.
MAPE is the mean absolute error; ``under2`` the share of calls predicted more
than 2% below the truth.
"""

from __future__ import annotations

from typing import Any

from benchmarks.accuracy.baselines import BASELINES, METHODS

__all__ = [
    "BUCKETS",
    "bucket_of",
    "coverage",
    "errors",
    "mape",
    "quantile",
    "shared_system",
    "stats",
    "toolset_reuse",
    "workload_facts",
]

BUCKETS = (("1-5", 1, 5), ("6-20", 6, 20), ("21+", 21, 10**9))


def bucket_of(call: int) -> str:
    return next(name for name, lo, hi in BUCKETS if lo <= call <= hi)


def quantile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def errors(records: list[dict[str, Any]], method: str = "tokencal") -> list[float]:
    return [(r["pred"][method] - r["true"]) / r["true"] for r in records]


def mape(records: list[dict[str, Any]], method: str = "tokencal") -> float | None:
    errs = errors(records, method)
    return sum(map(abs, errs)) / len(errs) if errs else None


def _summary(errs: list[float]) -> dict[str, float | None]:
    absolute = [abs(e) for e in errs]
    n = len(errs)
    return {
        "mean": sum(absolute) / n if n else None,
        "p95": quantile(absolute, 0.95),
        "bias": sum(errs) / n if n else None,
        "under2": sum(e < -0.02 for e in errs) / n if n else None,
    }


def stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method and bucket (and ``all``): mean and p95 of |err|, bias, under>2%."""
    out: dict[str, Any] = {"n": {"all": len(records)}}
    groups = {
        name: [r for r in records if lo <= r["call"] <= hi] for name, lo, hi in BUCKETS
    }
    groups["all"] = records
    for name, group in groups.items():
        out["n"][name] = len(group)
    for method in (*METHODS, *BASELINES):
        out[method] = {name: _summary(errors(g, method)) for name, g in groups.items()}
    return out


def coverage(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """By ``estimate().source``: how often ``high`` (and [low, high]) holds the truth."""
    out: dict[str, dict[str, Any]] = {}
    by: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by.setdefault(r["source"], []).append(r)
    by["all"] = records
    for source, group in by.items():
        n = len(group)
        high = errors(group, "tokencal_high")
        out[source] = {
            "n": n,
            "high_covers": sum(r["pred"]["tokencal_high"] >= r["true"] for r in group)
            / n,
            "interval_covers": sum(
                r["low"] <= r["true"] <= r["pred"]["tokencal_high"] for r in group
            )
            / n,
            "high_under2": sum(e < -0.02 for e in high) / n,
            "high_overcount": sum(high) / n,
            "point_mape": mape(group),
        }
    return out


def shared_system(records: list[dict[str, Any]], after: int = 5) -> dict[str, Any]:
    """The pipeline stream after its first ``after`` calls: tokencal vs the approximation."""
    late = [r for r in records if r["stream"] == "pipeline" and r["call"] > after]
    if not late:
        return {"n": 0}
    errs = errors(late)
    styles = {
        style: mape([r for r in late if r["session"] == f"pipeline-{style}"])
        for style in ("examples", "documents")
    }
    return {
        "n": len(late),
        "by_style": styles,
        "tokencal": mape(late),
        "tokencal_bias": sum(errs) / len(errs),
        "tokencal_worst": max(map(abs, errs)),
        "lc_approx": mape(late, "lc_approx"),
        "first5": mape(
            [r for r in records if r["stream"] == "pipeline" and r["call"] <= after]
        ),
    }


def toolset_reuse(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Tool-bound calls by whether their tool set was reported before in the stream.

    ``second`` are the calls after a first report of the same tool set;
    ``second_plain`` those of them with no tool call or result in the prompt
    (the tool set is then the only thing the first report did not pin down).
    """
    tool = [r for r in records if r["tools"]]
    first = [r for r in tool if r["toolset_seen"] == 0]
    second = [r for r in tool if r["toolset_seen"] > 0]
    plain = [r for r in second if r["tool_msgs"] == 0]

    def exact(group: list[dict[str, Any]], slack: int = 0) -> float | None:
        if not group:
            return None
        return sum(
            abs(r["pred"]["tokencal"] - r["true"]) <= slack for r in group
        ) / len(group)

    return {
        "n_first": len(first),
        "n_second": len(second),
        "n_second_plain": len(plain),
        "first_mape": mape(first),
        "second_mape": mape(second),
        "second_exact": exact(second),
        "second_plain_exact": exact(plain),
        "second_plain_within1": exact(plain, 1),
    }


def workload_facts(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the workloads hold, against what the issue asks of them."""
    n = len(records)
    streams: dict[tuple[str, int, str], set[str]] = {}
    for r in records:
        key = (r["provider"], r["replica"], r["stream"])
        if r["toolset"]:
            streams.setdefault(key, set()).add(r["toolset"])
        else:
            streams.setdefault(key, set())
    main = [len(v) for (_, _, s), v in streams.items() if s == "main"]
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {
        "calls": n,
        "streams": len(streams),
        "tiny_share": sum(r["true"] < 50 for r in records) / n,
        "no_known_share": sum(r["known"] == 0 for r in records) / n,
        "toolshot_calls": kinds.get("toolshot", 0),
        "toolsets_per_main_stream_min": min(main) if main else 0,
        "pipeline_calls": kinds.get("pipeline", 0),
        "batch_calls": kinds.get("batch", 0),
        "escaped_tool_results": sum(bool(r.get("escaped")) for r in records),
        "tool_bound_share": sum(bool(r["tools"]) for r in records) / n,
        "median_true": quantile([float(r["true"]) for r in records], 0.5),
        "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
    }
