"""Run the speed benchmark, print the tables and the summary, write the JSON.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.speed            # about 3 minutes on 2 cores
    .venv/bin/python -m benchmarks.speed --quick    # about 20 seconds
    .venv/bin/python -m benchmarks.speed --profile  # and cProfile what fails

Exit status 0 whether targets pass or not (the tables and the JSON say which);
2 if the benchmark itself cannot run (e.g. no tiktoken encoding offline).
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import tiktoken
from langchain_openai import ChatOpenAI

from benchmarks.speed import counting, exact, memory, overhead, timing
from benchmarks.speed.corpus import Corpus
from benchmarks.speed.profiling import failing_profiles

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "speed.json"
PARTS = ("seen", "new", "trim", "overhead", "memory", "exact")


@dataclass(frozen=True, slots=True)
class Settings:
    sizes: tuple[int, ...]
    trim_sizes: tuple[int, ...]
    seen_reps: int
    new_reps: int
    trim_reps: int
    min_sample_ns: float
    overhead_reps: int
    overhead_min_ns: float
    loop_reps: int
    loop_warm: int
    memo_messages: int


DEFAULT = Settings(
    sizes=(200, 1000),
    trim_sizes=(200, 1000),
    seen_reps=15,
    new_reps=7,
    trim_reps=7,
    min_sample_ns=20e6,
    overhead_reps=25,
    overhead_min_ns=30e6,
    loop_reps=61,
    loop_warm=2,
    memo_messages=20_000,
)
# Quick: the 200-message history only, few repetitions, a smaller memory test.
QUICK = Settings(
    sizes=(200,),
    trim_sizes=(200,),
    seen_reps=5,
    new_reps=3,
    trim_reps=3,
    min_sample_ns=4e6,
    overhead_reps=7,
    overhead_min_ns=5e6,
    loop_reps=5,
    loop_warm=1,
    memo_messages=2_000,
)


def _setup_tiktoken() -> str | None:
    """Point tiktoken at the offline cache the Makefile uses; an error or None.

    tiktoken reads ``TIKTOKEN_CACHE_DIR`` when it loads an encoding, so setting
    it here, before any count, is in time.
    """
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        shared = ROOT.parent / "shared" / "tiktoken-cache"
        if shared.is_dir():
            os.environ["TIKTOKEN_CACHE_DIR"] = str(shared)
    try:
        tiktoken.get_encoding("o200k_base")
    except Exception as err:  # noqa: BLE001 - any load failure stops the benchmark
        return f"cannot load o200k_base ({err}); set TIKTOKEN_CACHE_DIR"
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _versions() -> dict[str, str]:
    dists = (
        "langchain-tokencal",
        "langchain-core",
        "langchain-openai",
        "tiktoken",
        "pydantic",
        "xxhash",
    )
    return {"python": platform.python_version(), **{d: _version(d) for d in dists}}


_START = time.perf_counter()


def _emit(table: timing.Table, tables: list[timing.Table]) -> None:
    print(table.render())
    print(
        f"  [{time.perf_counter() - _START:.0f} s since start]", end="\n\n", flush=True
    )
    tables.append(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (~20 s)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile failing paths")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default: {','.join(PARTS)})",
    )
    parser.add_argument(
        "--cpu-clock",
        action="store_true",
        help="time with process CPU time instead of perf_counter_ns "
        "(steadier on a machine other jobs load)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="JSON results path"
    )
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if unknown := parts - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    problem = _setup_tiktoken()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2

    if args.cpu_clock:
        timing.use_cpu_clock()
    cfg = QUICK if args.quick else DEFAULT
    started = time.perf_counter()
    versions = _versions()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cpus = os.cpu_count() or 1
    print(
        f"langchain-tokencal speed benchmark ({'quick' if args.quick else 'default'}, "
        f"clock {timing.CLOCK}); "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; {platform.platform()}, {cpus} CPUs, load {load:.1f}\n",
        flush=True,
    )
    if load > 0.5 * cpus and not args.cpu_clock:
        print(
            "warning: the machine is busy; wall-clock ratios will be noisy "
            "(try --cpu-clock)\n",
            flush=True,
        )

    corpus = Corpus()
    out = counting.Outcome()
    tables: list[timing.Table] = []
    fixtures: dict[int, counting.Fixture] = {}
    if parts & {"seen", "new", "trim"}:
        fixtures = _counting(corpus, cfg, parts, out, tables)
    loop_ratios: dict[str, float] = {}
    cases: list[overhead.Case] = []
    if "overhead" in parts:
        cases = overhead.build_cases(
            corpus, cfg.loop_warm + cfg.loop_reps, quick=args.quick
        )
        loop_ratios = _overhead(cases, cfg, out, tables)
    if "memory" in parts:
        table, per = memory.bytes_per_entry(corpus, cfg.memo_messages)
        _emit(table, tables)
        out.worst["memo"] = per
        if per > memory.TARGET_BYTES:
            out.failing.append("memory/bytes-per-entry")
        table, bounded = memory.bounds(corpus)
        _emit(table, tables)
        if not bounded:
            out.failing.append("memory/bounds")

    if "exact" in parts:
        history = corpus.history(min(cfg.sizes))
        for table in exact.run(history, cfg.seen_reps, cfg.min_sample_ns, out):
            _emit(table, tables)

    summary = _summary(out.worst, loop_ratios)
    elapsed = time.perf_counter() - started
    print(summary)
    print(f"failing: {', '.join(out.failing) or 'none'}  ({elapsed:.0f} s)", flush=True)
    if out.undetermined:
        print(f"undetermined (too noisy; rerun): {', '.join(out.undetermined)}")

    profile_text: list[str] = []
    if args.profile and out.failing:
        fixture = fixtures[max(fixtures)] if fixtures else None
        profile_text = failing_profiles(out.failing, fixture, corpus, cases)
        print("\n\n".join(profile_text))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "platform": {
                    "system": platform.platform(),
                    "machine": platform.machine(),
                    "processor": platform.processor(),
                    "cpus": os.cpu_count(),
                },
                "versions": versions,
                "mode": "quick" if args.quick else "default",
                "clock": timing.CLOCK,
                "load_before": round(load, 2),
                "settings": asdict(cfg),
                "parts": sorted(parts),
                "elapsed_s": round(elapsed, 1),
                "summary": summary,
                "values": {
                    k: None if math.isnan(v) else round(v, 3)
                    for k, v in {
                        **out.worst,
                        **{f"loop {k}": v for k, v in loop_ratios.items()},
                    }.items()
                },
                "failing": out.failing,
                "undetermined": out.undetermined,
                "tables": [t.to_json() for t in tables],
                "profiles": profile_text,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.output}")
    return 0


def _counting(
    corpus: Corpus,
    cfg: Settings,
    parts: set[str],
    out: counting.Outcome,
    tables: list[timing.Table],
) -> dict[int, counting.Fixture]:
    """Measurements 1-3 for each history size; the fixtures, for profiling."""
    chat_openai = ChatOpenAI(model="gpt-4o", api_key="sk-test")  # type: ignore[arg-type]
    full = corpus.history(max(cfg.sizes))
    fixtures: dict[int, counting.Fixture] = {}
    for n in cfg.sizes:
        fx = fixtures[n] = counting.Fixture.build(full[:n], chat_openai)
        done = len(out.tables)
        if "seen" in parts:
            counting.seen(fx, chat_openai, cfg.seen_reps, cfg.min_sample_ns, out)
        if "new" in parts:
            counting.new(fx, cfg.new_reps, out)
        if "trim" in parts and n in cfg.trim_sizes:
            counting.trim(fx, chat_openai, cfg.trim_reps, cfg.min_sample_ns, out)
        for table in out.tables[done:]:
            _emit(table, tables)
    return fixtures


def _overhead(
    cases: list[overhead.Case],
    cfg: Settings,
    out: counting.Outcome,
    tables: list[timing.Table],
) -> dict[str, float]:
    """Measurement 4, sync then async; the loop ratios.

    Returns:
        ``"invoke short"``-style keys for the loop's on-call ratios (a target)
        and ``"total invoke short"``-style keys for its totals with learning.
    """
    loop_ratios: dict[str, float] = {}
    for use_async in (False, True):
        kind = "ainvoke" if use_async else "invoke"
        runner = overhead.Runner(use_async=use_async)
        try:
            for case in cases:
                table, ratio, minimal = overhead.measure_alone(
                    case, runner, cfg.overhead_reps, cfg.overhead_min_ns
                )
                _emit(table, tables)
                out.worst[f"{kind} {case.label}"] = ratio
                if math.isnan(ratio):
                    out.undetermined.append(f"overhead/{kind}/{case.label}/alone")
                elif ratio > overhead.TARGET:
                    out.failing.append(f"overhead/{kind}/{case.label}/alone")
                table, ratio, total = overhead.measure_loop(
                    case, runner, cfg.loop_reps, cfg.loop_warm, minimal
                )
                _emit(table, tables)
                loop_ratios[f"{kind} {case.label}"] = ratio
                loop_ratios[f"total {kind} {case.label}"] = total
                if math.isnan(ratio):
                    out.undetermined.append(f"overhead/{kind}/{case.label}/loop")
                elif ratio > overhead.TARGET:
                    out.failing.append(f"overhead/{kind}/{case.label}/loop")
        finally:
            runner.close()
    return loop_ratios


def _summary(worst: dict[str, float], loop: dict[str, float]) -> str:
    def x(key: str, digits: int = 1, src: dict[str, float] = worst) -> str:
        value = src.get(key, math.nan)
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}x"

    memo = f"{worst['memo']:.0f}B/entry" if "memo" in worst else "n/a"
    line = (
        f"SUMMARY seen-vs-ChatOpenAI={x('seen-vs-ChatOpenAI')} "
        f"seen-vs-approx={x('seen-vs-approx', 2)} new-vs-encode={x('new-vs-encode', 2)} "
        f"trim={x('trim')} handler.trim={x('handler.trim', 2)} overhead-invoke short={x('invoke short', 2)} "
        f"8k={x('invoke 8k', 2)} ainvoke short={x('ainvoke short', 2)} "
        f"8k={x('ainvoke 8k', 2)} memo={memo}"
    )
    if "exact-new-vs-floor" in worst:
        line += (
            f" | exact counters new-vs-floor={x('exact-new-vs-floor', 2)} "
            f"seen-vs-approx={x('exact-seen-vs-approx', 2)} "
            f"grown-vs-floor={x('exact-grown-vs-floor', 2)}"
        )
    if loop:
        line += (
            f" | loop on-call invoke short={x('invoke short', 2, loop)} "
            f"8k={x('invoke 8k', 2, loop)} ainvoke short={x('ainvoke short', 2, loop)} "
            f"8k={x('ainvoke 8k', 2, loop)} | loop total with learning invoke "
            f"short={x('total invoke short', 2, loop)} 8k={x('total invoke 8k', 2, loop)} "
            f"ainvoke short={x('total ainvoke short', 2, loop)} "
            f"8k={x('total ainvoke 8k', 2, loop)}"
        )
    return line


if __name__ == "__main__":
    raise SystemExit(main())
