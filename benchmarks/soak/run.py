"""Soak benchmark: latency under busy threads, memory across models, stores at scale.

Three sections, each printed as a table and written to
``benchmarks/results/soak.json`` with the date, machine and command:

- ``latency``: `benchmarks.soak.latency`, the worst ``count_messages`` while
  16 threads invoke with the handler attached, beside the same run without it;
  also how many reports were learned and how many the bounded queue dropped.
- ``models``: `benchmarks.soak.models`, resident memory over M x R reports.
- ``stores``: `benchmarks.soak.stores`, N reports in SQLite and in Redis
  with a live handler writing snapshots, and fewer without (the whole log
  replayed): write time, events kept, size, a new handler's start-up time
  and memory.

- ``fuzz``: `benchmarks.soak.fuzz`, a million mutated payloads, event lines,
  events and snapshots through the decoders; unexpected exceptions counted.

``--quick`` shrinks every section for a smoke run (a minute or so).
"""

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.soak import fuzz, latency, models, stores

RESULTS = Path(__file__).resolve().parents[1] / "results" / "soak.json"


def _latency(threads: int, seconds: float) -> list[dict[str, Any]]:
    rows = []
    print(f"\nlatency: count_messages while {threads} threads invoke ({seconds:g} s)")
    print(
        f"{'workers':<24} {'counts':>7} {'reports':>8} {'learned':>8} {'dropped':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    for with_handler in (False, True):
        r = latency.run(threads, seconds, with_handler=with_handler)
        rows.append(asdict(r))
        print(
            f"{r.label:<24} {r.counts:>7} {r.reports:>8} {r.learned:>8} "
            f"{r.dropped:>8} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.max_ms:>8.3f}"
        )
    return rows


def _models(n_models: int, reports: int) -> dict[str, Any]:
    print(f"\nmodels: {n_models} models x {reports} reports through one handler")
    r = models.run(n_models, reports)
    print(
        f"{r.seconds:.0f} s; resident memory +{r.rss_end_mb - r.rss_start_mb:.0f} MB "
        f"({r.per_model_kb:.0f} KB per model; {r.live} live, {r.parked} parked); "
        "by tenths of the models: " + ", ".join(f"+{x:.0f}" for x in r.curve_mb)
    )
    return asdict(r)


def _stores(
    reports: int, replay_reports: int, seed_reports: int
) -> list[dict[str, Any]]:
    print(
        f"\nstores: {reports:,} reports with snapshots, {replay_reports:,} without "
        f"(copies of {seed_reports} learned reports)"
    )
    seed = stores.seed_events(seed_reports)
    rows = []
    print(
        f"{'store':<7} {'snapshots':>9} {'reports':>9} {'events':>10} {'kept':>8} "
        f"{'write s':>8} {'size MB':>8} {'ready s':>8} {'RSS MB':>7} {'(empty)':>7} "
        f"{'loaded':>9}"
    )
    for fill in (stores.run_sqlite, stores.run_redis):
        for snapshots, n in ((True, reports), (False, replay_reports)):
            if not n:
                continue
            r = fill(seed, seed_reports, n, snapshots=snapshots)
            if r is None:
                print("redis   (redis-server not installed: skipped)")
                break
            rows.append(asdict(r))
            print(
                f"{r.store:<7} {'yes' if r.snapshots else 'no':>9} {r.reports:>9,} "
                f"{r.events:>10,} {r.events_kept:>8,} {r.write_s:>8.1f} "
                f"{r.size_mb:>8.1f} {r.ready_s:>8.3f} {r.rss_mb:>7.0f} "
                f"{r.baseline_rss_mb:>7.0f} {r.observations_loaded:>9,}"
            )
    return rows


def _fuzz(total: int) -> list[dict[str, Any]]:
    print(f"\nfuzz: {total:,} mutated inputs")
    print(f"{'kind':<10} {'inputs':>9} {'accepted':>9} {'unexpected':>10} {'s':>7}")
    runs = fuzz.run(total)
    for line in fuzz.examples(runs):
        print(line)
    return [asdict(r) for r in runs]


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument(
        "--only", choices=("latency", "models", "stores", "fuzz"), action="append"
    )
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--models", type=int, default=None)
    parser.add_argument("--reports-per-model", type=int, default=None)
    parser.add_argument("--store-reports", type=int, default=None)
    parser.add_argument(
        "--replay-reports",
        type=int,
        default=None,
        help="reports in the stores without snapshots (whole-log replay)",
    )
    parser.add_argument("--fuzz-inputs", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    quick = args.quick
    sections = args.only or ["latency", "models", "stores", "fuzz"]
    started = time.perf_counter()
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "python": sys.version.split()[0],
        "command": "python -m benchmarks.soak " + " ".join(argv or sys.argv[1:]),
    }
    if "latency" in sections:
        seconds = args.seconds or (3.0 if quick else 20.0)
        out["latency"] = _latency(args.threads, seconds)
    if "models" in sections:
        out["models"] = _models(
            args.models or (20 if quick else 1000),
            args.reports_per_model or (50 if quick else 1000),
        )
    if "stores" in sections:
        n = args.store_reports or (20_000 if quick else 1_000_000)
        replay = args.replay_reports
        if replay is None:
            replay = min(n, 5_000 if quick else 200_000)
        out["stores"] = _stores(n, replay, 500)
    if "fuzz" in sections:
        out["fuzz"] = _fuzz(args.fuzz_inputs or (4_000 if quick else 1_000_000))
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(f"\ntime: {out['seconds']:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0
