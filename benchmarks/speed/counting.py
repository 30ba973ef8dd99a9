"""Measurements 1-3: counting seen histories, new histories, and trimming.

1. *Seen*: a history whose messages the handler has counted before (one warm
   count), for ``gpt-4o`` (exact local counter, nothing learned) and for a
   model the handler learned from ``FakeUsageChatModel`` calls on prefixes of
   the history (``anchored``: the 3/4 prefix was reported; ``exact``: the whole
   list was). Against ``ChatOpenAI.get_num_tokens_from_messages`` (>= 100x
   faster) and ``count_tokens_approximately`` (<= 1.5x its time).
2. *New*: a fresh handler (or local counter) per sample, so every message is
   new to it; against the tokenizer floor, ``o200k_base`` ``encode_ordinary``
   over the messages' contents (<= 1.3x).
3. *Trim*: ``trim_messages(strategy="last", max_tokens=half)`` with our
   counters (warm) against ``token_counter=ChatOpenAI(model="gpt-4o")``
   (>= 50x faster).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tiktoken
from langchain_core.messages import BaseMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langchain_openai import ChatOpenAI

from benchmarks.speed.corpus import message_texts
from benchmarks.speed.timing import (
    Contender,
    Stat,
    Table,
    calibrate,
    interleaved,
    now,
    repeat,
    stats,
)
from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting import local_counter
from langchain_tokencal.testing import FakeUsageChatModel

LEARNED = "fake-claude"
SEEN_VS_OPENAI = 100.0
SEEN_VS_APPROX = 1.5
NEW_VS_ENCODE = 1.3
TRIM_VS_OPENAI = 50.0
# handler.trim against trim_messages with the same handler's counter: the same
# lists, and faster (it reads the history once, not once per candidate).
TRIM_VS_COUNTER = 1.0

CHAT_OPENAI = "ChatOpenAI(gpt-4o).get_num_tokens_from_messages"
APPROX = "count_tokens_approximately"
FLOOR = "tiktoken o200k_base encode_ordinary (floor)"


@dataclass(slots=True)
class Outcome:
    """Tables plus the worst ratio of each summary key."""

    tables: list[Table] = field(default_factory=list)
    worst: dict[str, float] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)
    undetermined: list[str] = field(default_factory=list)

    def keep(self, key: str, value: float, *, higher_is_better: bool) -> None:
        old = self.worst.get(key)
        if old is None or (value < old if higher_is_better else value > old):
            self.worst[key] = value


@dataclass(slots=True)
class Fixture:
    """A history and the handlers that know it, for one size."""

    history: list[BaseMessage]
    tokens: int
    gpt4o: TokenCalibrationHandler
    anchored: TokenCalibrationHandler
    exact: TokenCalibrationHandler

    @classmethod
    def build(cls, history: list[BaseMessage], chat_openai: ChatOpenAI) -> "Fixture":
        return cls(
            history,
            chat_openai.get_num_tokens_from_messages(history),
            TokenCalibrationHandler(),
            learned_handler(history, (0.25, 0.5, 0.75)),
            learned_handler(history, (0.5, 1.0)),
        )


def learned_handler(
    history: list[BaseMessage], fractions: tuple[float, ...]
) -> TokenCalibrationHandler:
    """A handler that saw FakeUsageChatModel calls on prefixes of ``history``."""
    handler = TokenCalibrationHandler()
    llm = FakeUsageChatModel(model=LEARNED, callbacks=[handler])
    for f in fractions:
        llm.invoke(history[: int(len(history) * f)])
    return handler


def _ours(fx: Fixture) -> dict[str, Callable[[], Any]]:
    h = fx.history
    return {
        "ours gpt-4o (local exact counter)": lambda: fx.gpt4o.count_messages(
            h, model="gpt-4o"
        ),
        f"ours {LEARNED}, anchored (3/4 reported)": lambda: fx.anchored.count_messages(
            h, model=LEARNED
        ),
        f"ours {LEARNED}, exact (whole list reported)": lambda: fx.exact.count_messages(
            h, model=LEARNED
        ),
    }


def _sources(fx: Fixture) -> str:
    """What each of our counts rests on, and its value (a sanity check)."""
    h = fx.history
    found = []
    for name, handler, model in (
        ("gpt-4o", fx.gpt4o, "gpt-4o"),
        ("anchored", fx.anchored, LEARNED),
        ("exact", fx.exact, LEARNED),
    ):
        est = handler.estimate(h, model=model)
        found.append(f"{name}: {est.source}, {est.tokens:,}")
    return (
        f"ours ({'; '.join(found)}); ChatOpenAI {fx.tokens:,}; approx "
        f"{count_tokens_approximately(h):,}; {LEARNED}'s true count "
        f"{FakeUsageChatModel(model=LEARNED).true_prompt_tokens(h):,}"
    )


def _contenders(ops: dict[str, Callable[[], Any]], min_ns: float) -> list[Contender]:
    return [
        Contender(name, repeat(op, calibrate(op, min_ns))) for name, op in ops.items()
    ]


def seen(
    fx: Fixture, chat_openai: ChatOpenAI, reps: int, min_ns: float, out: Outcome
) -> None:
    h = fx.history
    ours = _ours(fx)
    for op in ours.values():
        op()  # the warm count: learns what was reported, memoizes every message
    ops: dict[str, Callable[[], Any]] = {
        CHAT_OPENAI: lambda: chat_openai.get_num_tokens_from_messages(h),
        APPROX: lambda: count_tokens_approximately(h),
        **ours,
    }
    st = stats(interleaved(_contenders(ops, min_ns), reps))
    table = Table(
        f"1. Counting a seen history: {len(h)} messages, {fx.tokens:,} tokens"
    )
    table.add(CHAT_OPENAI, st[CHAT_OPENAI])
    table.add(APPROX, st[APPROX])
    for name in ours:
        vs_openai = st[CHAT_OPENAI].median / st[name].median
        vs_approx = st[name].median / st[APPROX].median
        ok1, ok2 = vs_openai >= SEEN_VS_OPENAI, vs_approx <= SEEN_VS_APPROX
        table.add(
            name,
            st[name],
            f"{vs_openai:.1f}x faster than ChatOpenAI",
            f">= {SEEN_VS_OPENAI:g}x",
            ok=ok1,
        )
        table.add(
            "",
            None,
            f"{vs_approx:.2f}x the time of approx",
            f"<= {SEEN_VS_APPROX:g}x",
            ok=ok2,
        )
        out.keep("seen-vs-ChatOpenAI", vs_openai, higher_is_better=True)
        out.keep("seen-vs-approx", vs_approx, higher_is_better=False)
        if not ok1:
            out.failing.append(f"seen/{len(h)}/{name} vs ChatOpenAI")
        if not ok2:
            out.failing.append(f"seen/{len(h)}/{name} vs approx")
    table.notes.append(f"counts: {_sources(fx)}")
    out.tables.append(table)


def new(fx: Fixture, reps: int, out: Outcome) -> None:
    h = fx.history
    texts = message_texts(h)
    enc = tiktoken.get_encoding("o200k_base")

    def floor() -> float:
        t0 = now()
        sum(len(enc.encode_ordinary(t)) for t in texts)
        return now() - t0

    def fresh(model: str) -> Callable[[], float]:
        def sample() -> float:
            handler = TokenCalibrationHandler()  # untimed: its memo is empty
            t0 = now()
            handler.count_messages(h, model=model)
            return now() - t0

        return sample

    def fresh_local() -> float:
        counter = local_counter("gpt-4o")
        t0 = now()
        counter(h)
        return now() - t0

    ours = {
        "ours gpt-4o, fresh handler": fresh("gpt-4o"),
        f"ours {LEARNED}, fresh handler (approximate)": fresh(LEARNED),
        "local_counter('gpt-4o'), fresh (no handler)": fresh_local,
    }
    contenders = [Contender(FLOOR, floor)] + [Contender(n, s) for n, s in ours.items()]
    st = stats(interleaved(contenders, reps))
    table = Table(
        f"2. Counting a history of new messages: {len(h)} messages, {fx.tokens:,} tokens"
    )
    table.add(FLOOR, st[FLOOR])
    for name in ours:
        ratio = st[name].median / st[FLOOR].median
        ok = ratio <= NEW_VS_ENCODE
        table.add(
            name, st[name], f"{ratio:.2f}x the floor", f"<= {NEW_VS_ENCODE:g}x", ok=ok
        )
        out.keep("new-vs-encode", ratio, higher_is_better=False)
        if not ok:
            out.failing.append(f"new/{len(h)}/{name}")
    out.tables.append(table)


def trim(
    fx: Fixture, chat_openai: ChatOpenAI, reps: int, min_ns: float, out: Outcome
) -> None:
    h = fx.history
    half = fx.tokens // 2
    counters: dict[str, Any] = {
        "token_counter=ChatOpenAI(model='gpt-4o')": chat_openai,
        "token_counter=count_tokens_approximately": count_tokens_approximately,
        "ours: handler.counter('gpt-4o')": fx.gpt4o.counter("gpt-4o"),
        f"ours: handler.counter('{LEARNED}'), learned": fx.anchored.counter(LEARNED),
    }
    kept: dict[str, int] = {}

    def op(counter: Any) -> Callable[[], Any]:
        return lambda: trim_messages(
            h, max_tokens=half, token_counter=counter, strategy="last"
        )

    for name, counter in counters.items():
        kept[name] = len(op(counter)())  # warm (and sanity)
    ops = {name: op(c) for name, c in counters.items()}
    st: dict[str, Stat] = stats(interleaved(_contenders(ops, min_ns), reps))
    base = "token_counter=ChatOpenAI(model='gpt-4o')"
    table = Table(
        f"3. trim_messages(strategy='last', max_tokens={half:,}): {len(h)} messages"
    )
    table.add(base, st[base])
    table.add(
        "token_counter=count_tokens_approximately",
        st["token_counter=count_tokens_approximately"],
    )
    for name in list(counters)[2:]:
        ratio = st[base].median / st[name].median
        ok = ratio >= TRIM_VS_OPENAI
        table.add(
            name, st[name], f"{ratio:.1f}x faster", f">= {TRIM_VS_OPENAI:g}x", ok=ok
        )
        out.keep("trim", ratio, higher_is_better=True)
        if not ok:
            out.failing.append(f"trim/{len(h)}/{name}")
    table.notes.append(
        "messages kept: "
        + ", ".join(f"{k.removeprefix('token_counter=')}: {v}" for k, v in kept.items())
    )
    out.tables.append(table)
    _handler_trim(fx, half, reps, min_ns, out)


def _handler_trim(
    fx: Fixture, budget: int, reps: int, min_ns: float, out: Outcome
) -> None:
    """``handler.trim`` against ``trim_messages`` with the same handler's counter."""
    h = fx.history
    table = Table(
        f"3b. handler.trim vs trim_messages(token_counter=handler.counter(m)), "
        f"max_tokens={budget:,}: {len(h)} messages"
    )
    for label, handler, model in (
        ("gpt-4o", fx.gpt4o, "gpt-4o"),
        (f"{LEARNED}, learned", fx.anchored, LEARNED),
    ):
        counter = handler.counter(model)
        ops = {
            f"trim_messages, {label}": lambda c=counter: trim_messages(
                h, max_tokens=budget, token_counter=c, strategy="last"
            ),
            f"handler.trim, {label}": lambda hd=handler, m=model: hd.trim(
                h, budget, model=m
            ),
        }
        lists = [op() for op in ops.values()]
        same = lists[0] == lists[1]
        st = stats(interleaved(_contenders(ops, min_ns), reps))
        base, ours = ops
        ratio = st[base].median / st[ours].median
        ok = same and ratio >= TRIM_VS_COUNTER
        table.add(base, st[base])
        table.add(
            ours,
            st[ours],
            f"{ratio:.2f}x faster" + ("" if same else ", DIFFERENT LIST"),
            f">= {TRIM_VS_COUNTER:g}x, same list",
            ok=ok,
        )
        out.keep("handler.trim", ratio, higher_is_better=True)
        if not ok:
            out.failing.append(f"handler.trim/{len(h)}/{label}")
    out.tables.append(table)
