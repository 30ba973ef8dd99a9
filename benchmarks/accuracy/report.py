"""The text tables of the accuracy benchmark."""

from __future__ import annotations

from typing import Any

from benchmarks.accuracy.baselines import BASELINES, METHODS
from benchmarks.accuracy.metrics import BUCKETS, errors, mape, quantile

__all__ = [
    "format_coverage",
    "format_facts",
    "format_matrix",
    "format_order",
    "format_shared",
    "format_table",
    "format_workloads",
    "worst",
]

LABELS = {
    "tokencal": "tokencal count_messages",
    "tokencal_high": "tokencal estimate().high",
    "chars4": "chars/4 +4/msg +3",
    "lc_approx": "count_tokens_approximately",
    "lc_approx_scaled": "  ..with usage scaling",
    "median_ratio": "median ratio x local",
    "cl100k": "plain cl100k_base",
    "o200k": "plain o200k_base",
}


def _pct(value: float | None, width: int = 6) -> str:
    return f"{value * 100:{width}.1f}" if value is not None else " " * (width - 1) + "-"


def format_table(title: str, st: dict[str, Any]) -> str:
    """Rows are methods; columns each bucket's MAPE/p95, then bias and under>2%."""
    n = st["n"]
    head = (
        f"{'method':<30}"
        + "".join(f"{f'{b} (n={n[b]})':>16}" for b, _, _ in BUCKETS)
        + f"{'all (n=' + str(n['all']) + ')':>16}{'bias':>8}{'under>2%':>9}"
    )
    sub = (
        f"{'':<30}"
        + f"{'MAPE%':>8}{'p95%':>8}" * (len(BUCKETS) + 1)
        + f"{'%':>8}{'%':>9}"
    )
    lines = [f"== {title}", head, sub]
    for method in (*METHODS, *BASELINES):
        row = st[method]
        cells = "".join(
            _pct(row[b]["mean"], 8) + _pct(row[b]["p95"], 8)
            for b in (*(x[0] for x in BUCKETS), "all")
        )
        lines.append(
            f"{LABELS[method]:<30}{cells}{_pct(row['all']['bias'], 8)}{_pct(row['all']['under2'], 9)}"
        )
    return "\n".join(lines)


def _group(records: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r[key]), []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def format_workloads(records: list[dict[str, Any]], key: str, title: str) -> str:
    """tokencal per label (workload, content, source...): buckets, p95, intervals, best baseline."""
    lines = [
        f"== {title}",
        (
            f"{key:<12}{'n':>6}{'1-5%':>7}{'6-20%':>7}{'21+%':>7}{'p95%':>7}{'bias%':>7}"
            f"{'<-2%':>6}{'high<-2%':>9}{'high+%':>8}   best baseline (MAPE%)"
        ),
    ]
    for value, group in _group(records, key).items():
        by = {b: [r for r in group if lo <= r["call"] <= hi] for b, lo, hi in BUCKETS}
        errs = errors(group)
        high = errors(group, "tokencal_high")
        best = min(BASELINES, key=lambda b: mape(group, b) or 0.0)
        lines.append(
            f"{value:<12}{len(group):>6}"
            + "".join(_pct(mape(by[b]), 7) for b, _, _ in BUCKETS)
            + _pct(quantile([abs(e) for e in errs], 0.95), 7)
            + _pct(sum(errs) / len(errs), 7)
            + _pct(sum(e < -0.02 for e in errs) / len(errs), 6)
            + _pct(sum(e < -0.02 for e in high) / len(high), 9)
            + _pct(sum(high) / len(high), 8)
            + f"   {best} {_pct(mape(group, best), 0).strip()}"
        )
    return "\n".join(lines)


def format_matrix(records: list[dict[str, Any]], providers: list[str]) -> str:
    """tokencal MAPE per workload (rows) and provider (columns), all calls and 21+."""
    short = [p[:11] for p in providers]
    lines = [
        "== tokencal MAPE% by workload x provider (all calls / calls 21+)",
        f"{'kind':<12}" + "".join(f"{s:>13}" for s in short),
    ]
    for kind, group in _group(records, "kind").items():
        cells = []
        for p in providers:
            mine = [r for r in group if r["provider"] == p]
            late = [r for r in mine if r["call"] >= 21]
            cells.append(f"{_pct(mape(mine), 0).strip()}/{_pct(mape(late), 0).strip()}")
        lines.append(f"{kind:<12}" + "".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def format_coverage(cov: dict[str, dict[str, Any]]) -> str:
    lines = [
        "== estimate() intervals by source",
        f"{'source':<12}{'n':>7}{'high>=true':>12}{'low<=true<=high':>17}{'high<-2%':>10}{'high+%':>8}{'point MAPE%':>13}",
    ]
    for source, c in sorted(cov.items(), key=lambda kv: (kv[0] == "all", -kv[1]["n"])):
        lines.append(
            f"{source:<12}{c['n']:>7}{_pct(c['high_covers'], 12)}{_pct(c['interval_covers'], 17)}"
            f"{_pct(c['high_under2'], 10)}{_pct(c['high_overcount'], 8)}{_pct(c['point_mape'], 13)}"
        )
    return "\n".join(lines)


def format_shared(shared: dict[str, dict[str, Any]]) -> str:
    lines = [
        "== single-turn pipeline, one shared system prompt (fresh handler; calls 6+)",
        (
            f"{'provider':<22}{'n':>6}{'calls1-5%':>11}{'tokencal%':>11}{'bias%':>8}{'worst%':>8}"
            f"{'approx%':>9}{'examples%':>11}{'documents%':>12}"
        ),
    ]
    for p, s in shared.items():
        if not s.get("n"):
            continue
        lines.append(
            f"{p:<22}{s['n']:>6}{_pct(s['first5'], 11)}{_pct(s['tokencal'], 11)}{_pct(s['tokencal_bias'], 8)}"
            f"{_pct(s['tokencal_worst'], 8)}{_pct(s['lc_approx'], 9)}"
            f"{_pct(s['by_style']['examples'], 11)}{_pct(s['by_style']['documents'], 12)}"
        )
    return "\n".join(lines)


def format_order(order: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "== batch of 5 through .batch(), completed in shuffled orders (fresh handler each)",
        f"{'provider':<22}{'warm':>5}{'orders':>8}  identical  repeatable  probe counts (first order / others differing)",
    ]
    for p, checks in order.items():
        for c in checks:
            first = c["states"][0]["probes"]
            counts = [s[0] for s in first]
            others = {tuple(s[0] for s in st["probes"]) for st in c["states"][1:]}
            other_counts = sorted(others - {tuple(counts)})
            note = ""
            if other_counts:
                note = " vs " + ", ".join(map(str, other_counts))
            elif not c["identical"]:
                note = " (same counts; low/high differ)"
            lines.append(
                f"{p:<22}{c['warm']:>5}{c['orders']:>8}  {'yes' if c['identical'] else 'NO ':<9}  "
                f"{'yes' if c['repeatable'] else 'NO ':<10}  {counts}{note}"
            )
    return "\n".join(lines)


def format_facts(facts: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in facts["kinds"].items())
    return "\n".join(
        [
            "== workload facts",
            f"calls {facts['calls']} in {facts['streams']} streams; median prompt {facts['median_true']:.0f} tokens",
            (
                f"tiny (<50 tokens): {facts['tiny_share'] * 100:.1f}% (issue 10 asks >= 10%) | no message "
                f"known before the call: {facts['no_known_share'] * 100:.1f}% | tool-bound: "
                f"{facts['tool_bound_share'] * 100:.1f}%"
            ),
            (
                f"tool sets per main stream: >= {facts['toolsets_per_main_stream_min']} (asks >= 8) | tool-bound one-shots: "
                f"{facts['toolshot_calls']} | pipeline calls: {facts['pipeline_calls']} | batched calls: {facts['batch_calls']}"
                f" | calls with \\uXXXX-escaped tool results: {facts['escaped_tool_results']}"
            ),
            f"by kind: {kinds}",
        ]
    )


def worst(records: list[dict[str, Any]], n: int) -> str:
    """The calls tokencal got most wrong, with what they were."""
    ranked = sorted(
        records, key=lambda r: -abs(r["pred"]["tokencal"] - r["true"]) / r["true"]
    )[:n]
    lines = [
        f"== worst {n} calls (tokencal)",
        (
            f"{'provider':<21}{'call':>5} {'kind':<12}{'lang':<7}{'msgs':>5}{'known':>6}{'tools':>10}{'true':>8}"
            f"{'pred':>8}{'high':>8}{'err%':>8} source"
        ),
    ]
    for r in ranked:
        err = (r["pred"]["tokencal"] - r["true"]) / r["true"]
        lines.append(
            f"{r['provider']:<21}{r['call']:>5} {r['kind']:<12}{r['profile']:<7}{r['messages']:>5}{r['known']:>6}"
            f"{r['toolset'] or '-':>10}{r['true']:>8}{r['pred']['tokencal']:>8}{r['pred']['tokencal_high']:>8}"
            f"{err * 100:>8.1f} {r['source']}"
        )
    return "\n".join(lines)
