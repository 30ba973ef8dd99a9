"""Measurement 5: bytes per memoized message, and bounded caches.

Bytes per entry: 20,000 distinct messages are built first; then, under
``tracemalloc``, a local counter counts them in conversation-sized batches.
What is still allocated afterwards (after a collection), divided by the memo's
entries, is the memo's cost per message: the key, the features record, the
vector, the digest and the map's own slot. A handler counts the same kind of
messages too, for its extra per-message state.

Bounds: a handler with small sizes counts and learns three times its sizes;
every cache must stay within its configured bound.
"""

import gc
import tracemalloc
from typing import Any
from uuid import uuid4

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from benchmarks.speed.corpus import Corpus
from benchmarks.speed.timing import Table
from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting import LocalCounter, local_counter

TARGET_BYTES = 200.0
_BATCH = 200
_SMALL = 100


def _messages(corpus: Corpus, n: int) -> list[BaseMessage]:
    texts = corpus.short_texts(n)
    return [(HumanMessage if i % 2 == 0 else AIMessage)(t) for i, t in enumerate(texts)]


def _traced(fn: Any) -> tuple[int, list[tuple[str, int]]]:
    """Net bytes still allocated after ``fn()`` and the top allocation sites."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    fn()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    net = sum(d.size_diff for d in diff)
    top = [
        (
            f"{d.traceback[0].filename.rsplit('/', 2)[-1]}:{d.traceback[0].lineno}",
            d.size_diff,
        )
        for d in diff[:6]
    ]
    return net, top


def bytes_per_entry(corpus: Corpus, n: int) -> tuple[Table, float]:
    messages = _messages(corpus, n)
    counter: LocalCounter = local_counter("gpt-4o", memo_size=max(n, 100_000))
    counter([HumanMessage("warm up: role tokens and encoding")])
    size0 = counter.memo_stats().size

    def count_all() -> None:
        for i in range(0, n, _BATCH):
            counter(messages[i : i + _BATCH])

    net, top = _traced(count_all)
    entries = counter.memo_stats().size - size0
    per = net / entries

    handler = TokenCalibrationHandler()
    handler.count_messages([HumanMessage("warm")], model="gpt-4o")
    others = _messages(corpus, n)

    def handler_count() -> None:
        for i in range(0, n, _BATCH):
            handler.count_messages(others[i : i + _BATCH], model="gpt-4o")

    h_net, h_top = _traced(handler_count)
    table = Table(f"5. Memory per memoized message ({entries:,} distinct messages)")
    ok = per <= TARGET_BYTES
    table.add(
        "local_counter('gpt-4o') memo",
        None,
        f"{per:.0f} B/entry",
        f"<= {TARGET_BYTES:g} B",
        ok=ok,
    )
    table.add(
        "handler.count_messages (memo + handler state)",
        None,
        f"{h_net / n:.0f} B/message",
    )
    table.notes.append(
        "top allocation sites (local counter): "
        + "; ".join(f"{site} {size / entries:.0f} B" for site, size in top)
    )
    table.notes.append(
        "top allocation sites (handler): "
        + "; ".join(f"{site} {size / n:.0f} B" for site, size in h_top)
    )
    return table, per


def _tools(i: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": f"tool_{i}",
                "description": f"Tool number {i}.",
                "parameters": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                },
            },
        }
    ]


def bounds(corpus: Corpus) -> tuple[Table, bool]:
    """Count and learn 3x the configured sizes; check every cache's size."""
    size = _SMALL
    handler = TokenCalibrationHandler(
        memo_size=size, cache_size=size, pending_size=size, max_points=size // 2
    )
    model = "bounded-model"
    messages = _messages(corpus, 3 * size)
    learned = 0
    for i in range(len(messages)):
        prompt = messages[max(0, i - 6) : i + 1]  # a sliding-window chat
        tools = _tools(i) if i % 2 else None
        handler.count_messages(prompt, model=model, tools=tools)
        n_in = (
            5 + sum(4 + len(str(m.content)) // 4 for m in prompt) + (40 if tools else 0)
        )
        usage = {"input_tokens": n_in, "output_tokens": 10, "total_tokens": n_in + 10}
        reason = handler.observe(prompt, usage, model=model, tools=tools)
        learned += reason is None
    for _ in range(3 * size):  # starts that never end (cancelled ainvoke)
        handler.on_chat_model_start(
            {}, [messages[:2]], run_id=uuid4(), metadata={"ls_model_name": model}
        )
    handler.flush()
    stats = handler.stats()[model]
    counter = handler._counters[model]  # noqa: SLF001 - the benchmark inspects private caches
    checks: list[tuple[str, int, int]] = [
        ("local memo (memo_size)", stats.memo.size, size),
        ("ledger prompts (cache_size)", stats.ledger.prompts.size, size),
        ("ledger messages (cache_size)", stats.ledger.messages.size, size),
        ("ledger bases (cache_size)", stats.ledger.bases.size, size),
        ("calibrated-cost cache (cache_size)", len(counter._state.costs), size),  # noqa: SLF001
        ("pending runs (pending_size)", handler.pending_runs, size),
        ("residuals (max_points)", len(counter._state.residuals), size // 2),  # noqa: SLF001
        ("tool memo (fixed 256)", len(counter.local._tool_memo), 256),  # noqa: SLF001
    ]
    table = Table(
        f"5. Caches stay bounded: sizes {size}, after {3 * size} messages, "
        f"{learned} learned calls, {3 * size // 2} tool sets and {3 * size} open runs"
    )
    all_ok = True
    for name, got, bound in checks:
        ok = got <= bound
        all_ok &= ok
        table.add(name, None, f"{got} entries", f"<= {bound}", ok=ok)
    table.notes.append(
        "not configurable: the tool memo (256 per counter), handler._aliases (one per "
        f"snapshot name, now {len(handler._registry.aliases)}), one counter per model name"  # noqa: SLF001
    )
    return table, all_ok
