"""cProfile summaries of the operations behind failing targets (``--profile``).

Each profile lists the functions with the most own time, then our package's
functions by cumulative time, as percentages of the profiled run (cProfile
slows Python code down a few times; the shares are what matters).
"""

import cProfile
import io
import itertools
import pstats
from collections.abc import Callable
from typing import Any

from langchain_core.messages import trim_messages

from benchmarks.speed import overhead
from benchmarks.speed.corpus import Corpus
from benchmarks.speed.counting import LEARNED, Fixture
from langchain_tokencal import TokenCalibrationHandler

_PACKAGE = "langchain_tokencal"
_ROOT_HINTS = (_PACKAGE, "langchain_core", "langchain_openai", "tiktoken", "pydantic")


def _where(filename: str) -> str:
    for hint in _ROOT_HINTS:
        at = filename.find(hint)
        if at >= 0:
            return filename[at:]
    return filename.rsplit("/", 1)[-1]


def profile(label: str, op: Callable[[], object], calls: int, top: int = 12) -> str:
    """Run ``op`` ``calls`` times under cProfile and summarize where time went."""
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        op()
    prof.disable()
    st = pstats.Stats(prof, stream=io.StringIO())
    total: float = st.total_tt  # type: ignore[attr-defined]
    entries: dict[Any, Any] = st.stats  # type: ignore[attr-defined]

    def line(key: Any, row: Any) -> str:
        filename, lineno, name = key
        _cc, nc, tt, ct, _callers = row
        return (
            f"{100 * tt / total:6.1f} {100 * ct / total:6.1f} {nc / calls:9.1f}  "
            f"{name} ({_where(filename)}:{lineno})"
        )

    head = f"{'own %':>6} {'cum %':>6} {'calls/op':>9}  function"
    by_own = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    ours = [kv for kv in entries.items() if _PACKAGE in kv[0][0]]
    by_cum = sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:top]
    per_call = total / calls * 1e3
    return "\n".join(
        [
            f"-- profile: {label} ({calls} runs, {per_call:.2f} ms each under cProfile) --",
            "top by own time:",
            head,
            *(line(k, v) for k, v in by_own),
            f"{_PACKAGE} by cumulative time:",
            head,
            *(line(k, v) for k, v in by_cum),
        ]
    )


def _alone_op(case: overhead.Case) -> Callable[[], object]:
    handler = TokenCalibrationHandler()
    reply = overhead.reply_for(case.prompt, case.reply_text)
    model = overhead.BenchFakeChatModel(
        messages=itertools.cycle([reply]), callbacks=[handler]
    )
    for _ in range(3):
        model.invoke(case.prompt)
    return lambda: model.invoke(case.prompt)


def _loop_op(corpus: Corpus, runs: int) -> Callable[[], object]:
    """One iteration of the 8k chat loop (flush, count, invoke) on a fresh chat."""
    chat = overhead.Chat.build(corpus, runs + 3, 25, 300, corpus.system(300))
    handler = TokenCalibrationHandler()
    replies = [
        overhead.reply_for(p, t)
        for p, t in zip(chat.prompts, chat.replies, strict=True)
    ]
    model = overhead.BenchFakeChatModel(messages=iter(replies), callbacks=[handler])
    prompts = iter(chat.prompts)

    def op() -> None:
        prompt = next(prompts)
        handler.flush()
        handler.count_messages(prompt, model=overhead.MODEL)
        model.invoke(prompt)

    for _ in range(3):
        op()
    return op


def failing_profiles(
    failing: list[str],
    fixture: Fixture | None,
    corpus: Corpus,
    cases: list[overhead.Case],
) -> list[str]:
    """Profiles of our side of each kind of failing measurement."""
    kinds = {f.split("/")[0] for f in failing}
    out: list[str] = []
    if fixture is not None:
        h, fx = fixture.history, fixture
        if "seen" in kinds:
            out.append(
                profile(
                    f"seen: count_messages, learned model, {len(h)} messages",
                    lambda: fx.anchored.count_messages(h, model=LEARNED),
                    30,
                )
            )
            out.append(
                profile(
                    f"seen: count_messages, gpt-4o, {len(h)} messages",
                    lambda: fx.gpt4o.count_messages(h, model="gpt-4o"),
                    30,
                )
            )
        if "new" in kinds:
            out.append(
                profile(
                    f"new: fresh handler, gpt-4o, {len(h)} messages",
                    lambda: TokenCalibrationHandler().count_messages(h, model="gpt-4o"),
                    3,
                )
            )
        if "trim" in kinds:
            counter = fx.anchored.counter(LEARNED)
            out.append(
                profile(
                    f"trim: learned counter, {len(h)} messages",
                    lambda: trim_messages(
                        h,
                        max_tokens=fx.tokens // 2,
                        token_counter=counter,
                        strategy="last",
                    ),
                    10,
                )
            )
    alone = {f.split("/")[2] for f in failing if f.endswith("/alone")}
    out.extend(
        profile(
            f"overhead: invoke with our handler, {case.label} prompt, same prompt",
            _alone_op(case),
            640,  # ten drains of the 64-report queue
        )
        for case in cases
        if case.label in alone
    )
    if any(f.endswith("/loop") for f in failing):
        out.append(
            profile(
                "overhead: 8k chat loop iteration (flush + count + invoke)",
                _loop_op(corpus, 40),
                40,
            )
        )
    return out
