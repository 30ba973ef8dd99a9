"""Stores at scale: a log of N reports in SQLite and Redis, and a new handler on it.

Real events first: a handler learns a seed of conversations the way callbacks
feed it. The seed's events are then appended again under new origins (new
``(origin, seq)`` identities, so each copy is stored, not deduplicated) until
the log holds the requested number of reports. What is measured: how long the
appends took, the store's size, and the start-up of a new handler on the store
(time to ready and resident memory), in a fresh interpreter so that nothing
of the writer's memory is counted.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from langchain_tokencal import TokenCalibrationHandler, TokenUsage, create_counter
from langchain_tokencal.events import LearnEvent
from langchain_tokencal.storage import open_store

MODEL = "soak-store-model"
_BATCH = 5000

_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
from langchain_tokencal import TokenCalibrationHandler
imported = time.perf_counter()
handler = TokenCalibrationHandler(store=sys.argv[1])
if len(sys.argv) > 2:
    # The baseline: a handler on an empty store that has counted once, so
    # the model's tokenizer is loaded (o200k_base is ~80 MB on its own).
    handler.count_messages(["hello"], model=sys.argv[2], provider="anthropic")
ready = time.perf_counter()
stats = handler.stats()
rss = int(open("/proc/self/statm").read().split()[1]) * 4096
print(json.dumps({
    "import_s": imported - t0,
    "ready_s": ready - imported,
    "rss_mb": rss / 1e6,
    "models": len(stats),
    "observations": sum(s.observations for s in stats.values()),
}))
handler.close()
"""


@dataclass(frozen=True, slots=True)
class StoreRun:
    """One store filled with ``reports`` reports and opened again."""

    store: str
    snapshots: bool
    reports: int
    events: int
    events_kept: int
    write_s: float
    size_mb: float
    ready_s: float
    rss_mb: float
    baseline_rss_mb: float
    observations_loaded: int


def seed_events(reports: int) -> list[LearnEvent]:
    """The events a handler publishes while learning ``reports`` reports."""
    counter = create_counter(MODEL, provider="anthropic")
    events: list[LearnEvent] = []
    counter.listener = events.extend
    system = SystemMessage("You answer questions about soak tests, briefly.")
    n = 0
    convo: list[BaseMessage] = [system]
    while n < reports:
        if len(convo) > 30:  # a new conversation sharing the system prompt
            convo = [system]
        convo.append(HumanMessage(f"turn {n}: what changed since the last run?"))
        size = 14 + 11 * len(convo) + n % 5
        usage = TokenUsage(size, 9, size + 9)
        counter.observe(list(convo), usage)
        convo.append(AIMessage(f"Run {n} changed little."))
        n += 1
    counter.flush()
    return events


def _fill(
    url: str, seed: list[LearnEvent], per_copy: int, reports: int, *, snapshots: bool
) -> int:
    """Append copies of ``seed`` until ``reports`` reports are stored.

    With ``snapshots``, a handler on the store syncs after every batch, as
    a live handler's background thread would: it replays what the others
    appended and, holding the lease, writes snapshots (default interval).
    """
    store = open_store(url)
    live = TokenCalibrationHandler(store=url, sync_interval=3600) if snapshots else None
    copies = max(1, reports // per_copy)
    written = 0

    def append(batch: list[LearnEvent]) -> None:
        store.append(batch)
        if live is not None:
            live._sync.sync()  # noqa: SLF001 - the background round, run in step

    try:
        batch: list[LearnEvent] = []
        for c in range(copies):
            origin = f"soak-writer-{c}"
            for i, event in enumerate(seed, start=1):
                batch.append(replace(event, origin=origin, seq=i))
                if len(batch) >= _BATCH:
                    append(batch)
                    written += len(batch)
                    batch = []
        if batch:
            append(batch)
            written += len(batch)
    finally:
        if live is not None:
            live.close()
        store.close()
    return written


def _startup(url: str, *count: str) -> dict[str, float]:
    """Start-up of a new handler on ``url``, in a fresh interpreter."""
    out = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _STARTUP, url, *count],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
        timeout=1800,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _baseline() -> float:
    """Resident memory of a handler on an empty store that counted once."""
    return _startup("memory://", MODEL)["rss_mb"]


def _kept(url: str) -> int:
    store = open_store(url)
    try:
        return len(store.read()[0])
    finally:
        store.close()


def _measured(  # noqa: PLR0917 - one row's measurements
    store: str,
    url: str,
    snapshots: bool,  # noqa: FBT001
    reports: int,
    events: int,
    write_s: float,
    size: int,
) -> StoreRun:
    """A filled store's row: what it kept, and a new handler's start-up on it."""
    start = _startup(url)
    return StoreRun(
        store,
        snapshots,
        reports,
        events,
        _kept(url),
        round(write_s, 2),
        round(size / 1e6, 1),
        round(start["ready_s"], 3),
        round(start["rss_mb"], 1),
        round(_baseline(), 1),
        int(start["observations"]),
    )


def run_sqlite(
    seed: list[LearnEvent], per_copy: int, reports: int, *, snapshots: bool = True
) -> StoreRun:
    """Fill a SQLite file, then start a handler on it."""
    folder = Path(tempfile.mkdtemp(prefix="tokencal-soak-"))
    try:
        path = folder / "soak.db"
        url = f"sqlite:///{path}"
        t0 = time.perf_counter()
        events = _fill(url, seed, per_copy, reports, snapshots=snapshots)
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in folder.iterdir())
        return _measured(
            "sqlite", url, snapshots, max(1, reports // per_copy) * per_copy,
            events, write_s, size,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_redis(
    seed: list[LearnEvent], per_copy: int, reports: int, *, snapshots: bool = True
) -> StoreRun | None:
    """Fill a fresh redis-server (unix socket), then start a handler on it."""
    server = shutil.which("redis-server")
    if server is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="tokencal-soak-redis-"))
    sock = folder / "redis.sock"
    proc = subprocess.Popen(  # noqa: S603 - the system's redis-server
        [server, "--port", "0", "--unixsocket", str(sock), "--save", ""],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        url = f"unix://{sock}?db=0"
        t0 = time.perf_counter()
        events = _fill(url, seed, per_copy, reports, snapshots=snapshots)
        write_s = time.perf_counter() - t0
        import redis  # noqa: PLC0415 - the [redis] extra, only for this section

        used = redis.Redis(unix_socket_path=str(sock)).info("memory")["used_memory"]
        return _measured(
            "redis", url, snapshots, max(1, reports // per_copy) * per_copy,
            events, write_s, int(used),
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
