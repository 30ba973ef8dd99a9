"""Local token counters: exact for OpenAI models (tiktoken), approximate for the rest.

Both counters are plain callables, ``counter(messages, tools=None) -> int``,
usable as ``trim_messages(..., token_counter=counter)``. They count a prompt
the way OpenAI's chat completions do: 3 tokens per message plus the role's
tokens, the name's tokens plus 1, tool calls, tool-call ids, images, the tool
schemas, and 3 tokens priming the reply. Each message's result is memoized as
one packed record (about 140 bytes with its key; `RecordMemo`), so counting a
list of messages seen before never calls the tokenizer; many new messages at
once are tokenized on two threads (`token_counts`).

Note:
    This module must not use ``from __future__ import annotations``:
    `trim_messages` reads the annotation of the first parameter of a counter's
    ``__call__`` at run time and treats a counter annotated ``BaseMessage`` as a
    per-message counter. Ours is annotated ``Sequence[BaseMessage]``.
"""

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, Protocol, cast, runtime_checkable

import tiktoken
import xxhash
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue

from langchain_tokencal._cache import CacheStats, RecordMemo, TTLCache
from langchain_tokencal._counting.openai_rules import (
    CL100K_TOOL_RULES,
    O200K_TOOL_RULES,
    ToolRules,
    encoding_for_model,
    function_tokens,
    image_tokens,
    normalize_tool,
)
from langchain_tokencal._counting.parts import (
    all_messages,
    freeze,
    memo_lookup,
    message_digest,
    message_parts,
    plain_digest,
    plain_parts,
)
from langchain_tokencal._features import (
    CONTENT_CLASSES,
    NO_TOOLS,
    RECORD_HEAD,
    FeatureBatch,
    MessageFeatures,
    ToolFeatures,
    approx_tokens,
    class_chars,
    pack_record,
    split_tokens,
    text_classes,
)
from langchain_tokencal._providers import counts_with_openai_tokenizer
from langchain_tokencal.errors import UnknownModelError

__all__ = [
    "ApproximateCounter",
    "CounterInfo",
    "LocalCounter",
    "OpenAICounter",
    "TokenCounter",
    "as_messages",
    "encoding_for_model",
    "local_counter",
    "token_counts",
]

logger = logging.getLogger(__name__)

REFERENCE_ENCODING: Final = "o200k_base"
"""The tokenizer approximate counters measure content with."""

_TOOL_CALL_ID_TOKENS: Final = 3  # langchain-openai's inferred cost; undocumented
_APPROX_TOOL_INIT: Final = 7  # per tool, like the cookbook's func_init
_APPROX_TOOLS_END: Final = 12  # per tool set, like the cookbook's func_end

_N_CLASSES: Final = len(CONTENT_CLASSES)
_NO_CLASSES: Final = (0.0,) * _N_CLASSES
_unpack_head = RECORD_HEAD.unpack_from
_second = itemgetter(1)

# Tokenizing at least this many characters of new content at once (about
# 6 ms) splits the texts between the caller and a short-lived helper thread:
# tiktoken releases the GIL, a thread starts in about 0.1 ms, and two cores
# then take 0.55-0.65 of the time (measured, 2 CPUs). Below it, or on one
# CPU, texts are tokenized in the caller only.
_PARALLEL_CHARS: Final = 64_000


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


_CPUS: Final = _usable_cpus()

_encodings: dict[str, tiktoken.Encoding | None] = {}
_encoding_errors: dict[str, str] = {}
_encodings_lock = threading.RLock()


def _load_encoding(name: str) -> tiktoken.Encoding | None:
    """Load a tiktoken encoding once per process; None (and one warning) if it fails."""
    if name in _encodings:
        return _encodings[name]
    with _encodings_lock:
        if name in _encodings:
            return _encodings[name]
        encoding: tiktoken.Encoding | None
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception as err:  # noqa: BLE001 - offline loads fail with network, OS or hash errors; each means "not available"
            reason = (
                f"tiktoken encoding {name!r} could not be loaded "
                f"({type(err).__name__}: {err})"
            )
            logger.warning(
                "%s; counting with a character-class approximation instead. Fix: set "
                "TIKTOKEN_CACHE_DIR to a folder holding the encoding files (tiktoken "
                "stores them there on its first online use).",
                reason,
            )
            _encoding_errors[name] = reason
            encoding = None
        _encodings[name] = encoding
        return encoding


def token_counts(encoding: tiktoken.Encoding, texts: list[str]) -> list[int]:
    """``len(encoding.encode_ordinary(text))`` of each text, on two threads.

    The texts are split in two halves of about equal length: a helper thread
    tokenizes the first while the caller tokenizes the second (tiktoken
    releases the GIL). The thread exits before this returns, so no thread
    outlives a count (a process that forks later is not left with one).

    Example:
        ```python
        import tiktoken
        from langchain_tokencal._counting.local import token_counts

        encoding = tiktoken.get_encoding("o200k_base")
        assert token_counts(encoding, ["hello world", "hi"]) == [2, 1]
        ```
    """
    total = sum(map(len, texts))
    split, size = 0, 0
    while split < len(texts) and 2 * size < total:
        size += len(texts[split])
        split += 1
    encode = encoding.encode_ordinary
    head: list[int] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            head.extend(len(encode(text)) for text in texts[:split])
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller
            failure.append(err)

    helper = threading.Thread(target=work, name="tokencal-tokenize", daemon=True)
    helper.start()
    try:
        tail = [len(encode(text)) for text in texts[split:]]
    finally:
        helper.join()
    if failure:
        raise failure[0]
    return head + tail


def as_messages(messages: Sequence[Any] | PromptValue) -> Sequence[BaseMessage]:
    """Return ``messages`` as LangChain messages, converting only if needed.

    A list or tuple of `BaseMessage` is returned as it is (no copy); message-like
    items (tuples, dicts, strings) go through `convert_to_messages`; a single
    string, a `PromptValue` or an iterator are accepted too.

    Example:
        ```python
        from langchain_tokencal._counting.local import as_messages

        (message,) = as_messages([("user", "hi")])
        assert message.type == "human"
        ```
    """
    if not isinstance(messages, (list, tuple)):
        if isinstance(messages, str):
            return convert_to_messages([messages])
        if isinstance(messages, PromptValue):
            return messages.to_messages()
        messages = list(messages)  # an iterator must not be consumed twice
    if all_messages(messages):
        return messages
    return convert_to_messages(messages)


@runtime_checkable
class TokenCounter(Protocol):
    """Anything that counts the prompt tokens of a message list (and tools).

    Example:
        ```python
        from langchain_tokencal._counting.local import TokenCounter, local_counter

        assert isinstance(local_counter("gpt-4o"), TokenCounter)
        ```
    """

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the prompt tokens of ``messages`` with ``tools`` bound."""
        ...


@dataclass(frozen=True, slots=True)
class CounterInfo:
    """What a local counter counts with.

    Attributes:
        model: The model name the counter was made for.
        provider: The provider it was made for, or None.
        kind: ``"exact"`` for an OpenAI model counted with its own tiktoken
            encoding, else ``"approximate"``.
        encoding: The tiktoken encoding used, or None for the pure
            character-class approximation.
        fallback: True when the wanted encoding could not be loaded.
        reason: Why the count is not exact, or None.

    Example:
        ```python
        from langchain_tokencal._counting.local import local_counter

        info = local_counter("gpt-4o").info
        assert (info.kind, info.encoding) == ("exact", "o200k_base")
        ```
    """

    model: str
    provider: str | None
    kind: str
    encoding: str | None
    fallback: bool
    reason: str | None


class LocalCounter:
    """Base of the local counters: message structure, memo and tool schemas.

    Thread-safe: the memos lock their writes (memo lookups need no lock) and
    tiktoken encodings are shareable.

    Attributes:
        info: What the counter counts with.
        framing: Tokens added once per prompt (3 priming the reply).

    Example:
        ```python
        from langchain_core.messages import HumanMessage, SystemMessage
        from langchain_tokencal._counting.local import local_counter

        counter = local_counter("gpt-4o")
        assert counter([SystemMessage("Be brief."), HumanMessage("Hi!")]) == 16
        ```
    """

    framing: int = 3

    def __init__(
        self,
        info: CounterInfo,
        *,
        tool_rules: ToolRules = O200K_TOOL_RULES,
        tokens_per_message: int = 3,
        tokens_per_name: int = 1,
        memo_size: int = 100_000,
    ) -> None:
        """Set up the memos; subclasses resolve the encoding and build ``info``."""
        self.info = info
        self._tool_rules = tool_rules
        self._tokens_per_message = tokens_per_message
        self._tokens_per_name = tokens_per_name
        self._memo = RecordMemo(memo_size)
        self._tool_memo: TTLCache[Any, tuple[ToolFeatures, tuple[Any, ...]]] = TTLCache(
            max_size=256
        )
        self._role_tokens: dict[str, float] = {}  # a handful of roles, ever
        encoding = _load_encoding(info.encoding) if info.encoding else None
        self._encoding = encoding
        self._count: Callable[[str], float] = (
            self._approx_count if encoding is None else self._exact_count
        )

    def _exact_count(self, text: str) -> float:
        """Tokens of a text by the encoding; special-token text is ordinary text."""
        assert self._encoding is not None  # noqa: S101 - chosen only with an encoding
        return len(self._encoding.encode_ordinary(text))

    @staticmethod
    def _approx_count(text: str) -> float:
        """Tokens of a text from its character classes alone."""
        return approx_tokens(class_chars(text))

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Count the prompt tokens of ``messages`` (and ``tools``).

        Args:
            messages: Messages, or message-like values (``("user", "hi")``,
                ``{"role": ..., "content": ...}``, strings); never mutated.
            tools: Tools bound to the call: OpenAI or Anthropic dicts,
                `BaseTool`, pydantic classes or functions.

        Returns:
            ``framing`` + each message's local tokens + the tool set's tokens.
        """
        records = self._records(messages)
        total: int = self.framing + sum(map(_second, map(_unpack_head, records)))
        if tools:
            total += self.tool_features(tools).local
        return total

    def message_features(
        self, messages: Sequence[BaseMessage]
    ) -> list[MessageFeatures]:
        """Return each message's `MessageFeatures`, memoized per message.

        Messages counted before cost a key, a lookup and a small record each;
        only new ones are tokenized. Accepts what `as_messages` accepts; a
        list that holds only messages is used as it is, so there is no need
        to call `as_messages` first. Code that reads the digest and local
        count of every message should use `feature_batch`.
        """
        return list(FeatureBatch(self._records(messages)))

    def feature_batch(self, messages: Sequence[BaseMessage]) -> FeatureBatch:
        """Return the features of ``messages`` by column: digests and locals.

        The same features as `message_features`, for callers that read the
        digest and local count of every message and the vector of few: no
        record object is built per message, which makes reading a history
        seen before about 1.6 times as fast.

        Example:
            ```python
            from langchain_core.messages import HumanMessage
            from langchain_tokencal._counting.local import local_counter

            counter = local_counter("gpt-4o")
            batch = counter.feature_batch([HumanMessage("hi")])
            assert batch.locals == [5] and len(batch.digests) == 1
            ```
        """
        return FeatureBatch(self._records(messages))

    def _records(self, messages: Sequence[Any] | PromptValue) -> list[bytes]:
        """The memo record of each message, counting the new ones."""
        memo = self._memo
        # A list of messages is keyed as it is: memo_lookup checks the classes
        # on the way (None for anything else), so as_messages' check is not
        # run a second time when the caller already converted.
        looked = (
            memo_lookup(messages, memo.get)
            if isinstance(messages, (list, tuple))
            else None
        )
        if looked is None:
            messages = as_messages(messages)
            looked = memo_lookup(messages, memo.get)
            if looked is None:  # pragma: no cover - as_messages returns messages
                msg = "as_messages returned a non-message"
                raise TypeError(msg)
        keys, found = looked
        memo.record_lookups(keys, found)
        if None in found:
            self._count_new(cast("Sequence[BaseMessage]", messages), keys, found)
        return found  # type: ignore[return-value]  # every None was replaced

    def _count_new(
        self, messages: Sequence[BaseMessage], keys: list[int], found: list[Any]
    ) -> None:
        """Count the messages not found in the memo, memoize and fill them in."""
        first: dict[int, int] = {}  # key -> index of its first miss
        for i, record in enumerate(found):
            if record is None and keys[i] not in first:
                first[keys[i]] = i
        plains = {key: plain_parts(messages[i]) for key, i in first.items()}
        tokens = self._tokenize_contents(plains)
        new: dict[int, bytes] = {}
        put = self._memo.put
        for key, i in first.items():
            record = new[key] = self._features(
                messages[i], plains[key], tokens.get(key)
            )
            put(key, record)
        for i, record in enumerate(found):
            if record is None:
                found[i] = new[keys[i]]

    def _tokenize_contents(
        self, plains: dict[int, tuple[str, str | None, str | None, str] | None]
    ) -> dict[int, int]:
        """Token counts of many new contents at once, on two threads if large.

        Empty (tokenized one by one) unless there is an encoding, a second
        CPU and enough text to repay a helper thread's start (see
        `_PARALLEL_CHARS`).
        """
        encoding = self._encoding
        if encoding is None or _CPUS < 2:  # noqa: PLR2004 - two threads
            return {}
        contents = {key: p[3] for key, p in plains.items() if p is not None and p[3]}
        if sum(map(len, contents.values())) < _PARALLEL_CHARS:
            return {}
        counts = token_counts(encoding, list(contents.values()))
        return dict(zip(contents, counts, strict=True))

    def _role_cost(self, role: str) -> float:
        """Tokens of a role name (a handful of roles, ever)."""
        cost = self._role_tokens.get(role)
        if cost is None:
            cost = self._role_tokens[role] = self._count(role)
        return cost

    def _text(
        self, text: str, data: bytes, tokens: float | None = None
    ) -> tuple[float, tuple[float, ...]]:
        """Tokens of a text (unless given) and their split by content class."""
        chars = text_classes(text, data)
        if tokens is None:
            if self._encoding is None:
                tokens = approx_tokens(chars)
            else:
                tokens = len(self._encoding.encode_ordinary(text))
        return tokens, split_tokens(tokens, chars)

    def _features(
        self,
        message: BaseMessage,
        plain: tuple[str, str | None, str | None, str] | None,
        content_tokens: int | None = None,
    ) -> bytes:
        """Count one message from scratch (a memo miss): its packed record.

        Args:
            message: The message.
            plain: Its `plain_parts`.
            content_tokens: The content's tokens if already counted.
        """
        if plain is None:
            return self._general_features(message)
        # Most messages: string content, no tool calls. The same arithmetic
        # as `_general_features`, minus the parsing; the content's UTF-8
        # bytes serve the class count and the digest.
        role, name, tool_call_id, content = plain
        data = content.encode("utf-8", "surrogatepass")
        overhead = self._tokens_per_message + self._role_cost(role)
        if content:
            tokens, classes = self._text(content, data, content_tokens)
        else:
            tokens, classes = 0, _NO_CLASSES
        if name:
            name_tokens, name_classes = self._text(
                name, name.encode("utf-8", "surrogatepass")
            )
            tokens += name_tokens
            classes = tuple(a + b for a, b in zip(classes, name_classes, strict=True))
            overhead += self._tokens_per_name
        if tool_call_id is not None:
            overhead += _TOOL_CALL_ID_TOKENS
        return pack_record(
            plain_digest(role, name, tool_call_id, data),
            int(overhead + tokens + 0 + 0.5),
            (1.0, *(share or 0.0 for share in classes), 0.0),
        )

    def _general_features(self, message: BaseMessage) -> bytes:
        """Count a message of any shape: blocks, images, tool calls."""
        parts = message_parts(message)
        overhead = self._tokens_per_message + self._role_cost(parts.role)
        classes = [0.0] * _N_CLASSES

        def add(text: str) -> float:
            tokens, shares = self._text(text, text.encode("utf-8", "surrogatepass"))
            for i, share in enumerate(shares):
                classes[i] += share
            return tokens

        content = sum(add(text) for text in parts.texts if text)
        if parts.name:
            content += add(parts.name)
            overhead += self._tokens_per_name
        for name, arguments, _ in parts.tool_calls:
            content += (add(name) if name else 0) + (add(arguments) if arguments else 0)
        if parts.tool_call_id is not None:
            overhead += _TOOL_CALL_ID_TOKENS
        image = sum(image_tokens(source, detail) for source, detail in parts.images)
        return pack_record(
            message_digest(message, parts),
            int(overhead + content + image + 0.5),
            (1.0, *(share or 0.0 for share in classes), float(image) or 0.0),
        )

    def tool_features(self, tools: Sequence[Any] | None) -> ToolFeatures:
        """Return the `ToolFeatures` of a tool set, memoized.

        Raises:
            ConfigError: If a tool cannot be converted to a schema.
        """
        if not tools:
            return NO_TOOLS
        key = tuple(
            freeze(tool) if isinstance(tool, Mapping) else ("id", id(tool))
            for tool in tools
        )
        cached = self._tool_memo.get(key)
        # Non-dict tools are keyed by identity; the memo keeps them alive (dicts
        # are keyed by value and not kept), so an id cannot be reused while its
        # entry exists. Verify anyway.
        if cached is not None and all(
            a is None or a is b for a, b in zip(cached[1], tools, strict=True)
        ):
            return cached[0]
        normalized = [normalize_tool(tool) for tool in tools]
        canonical = json.dumps(
            normalized,
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        )
        schema_tokens = float(self._count(canonical))
        features = ToolFeatures(
            local=int(self._tools_local(normalized, schema_tokens) + 0.5),
            schema_tokens=schema_tokens,
            count=len(normalized),
            fingerprint=xxhash.xxh3_64_intdigest(
                canonical.encode("utf-8", "surrogatepass")
            ),
        )
        refs = tuple(None if isinstance(tool, Mapping) else tool for tool in tools)
        self._tool_memo.put(key, (features, refs))
        return features

    def _tools_local(self, tools: list[dict[str, Any]], schema_tokens: float) -> float:
        """Local tokens of a normalized tool set (OpenAI's cookbook rules)."""
        del schema_tokens
        return function_tokens(tools, self._tool_rules, self._count)

    def memo_stats(self) -> CacheStats:
        """Return the per-message memo's statistics."""
        return self._memo.stats()

    def __repr__(self) -> str:
        """Show the model and what the counter counts with."""
        i = self.info
        return (
            f"{type(self).__name__}(model={i.model!r}, kind={i.kind!r}, "
            f"encoding={i.encoding!r})"
        )


def _info(
    model: str, provider: str | None, encoding: str, *, exact: bool, reason: str | None
) -> CounterInfo:
    """Build a counter's info once its encoding is known to load or not."""
    loaded = _load_encoding(encoding) is not None
    return CounterInfo(
        model=model,
        provider=provider,
        kind="exact" if exact and loaded else "approximate",
        encoding=encoding if loaded else None,
        fallback=not loaded,
        reason=reason if loaded else _encoding_errors.get(encoding, reason),
    )


class OpenAICounter(LocalCounter):
    """Exact counts for OpenAI chat models with the model's own tiktoken encoding.

    Plain-text histories (names and system messages included) count exactly
    as ``ChatOpenAI(model=...).get_num_tokens_from_messages`` does. Beyond it:
    tool schemas are counted (OpenAI cookbook rules), image sizes are read from
    inline data headers and never fetched (an unknown size costs
    `DEFAULT_IMAGE_TOKENS`), and text containing special-token strings such as
    ``<|endoftext|>`` counts as ordinary text instead of raising.

    Args:
        model: An OpenAI model or deployment name.
        provider: Recorded in ``info``.
        encoding: The tiktoken encoding; by default `encoding_for_model`'s,
            or ``o200k_base`` (and an approximate ``info.kind``) for a name it
            does not know.
        memo_size: Most messages memoized.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting.local import OpenAICounter

        assert OpenAICounter("gpt-4")([HumanMessage("Hello there")]) == 9
        ```
    """

    def __init__(
        self,
        model: str,
        *,
        provider: str | None = "openai",
        encoding: str | None = None,
        memo_size: int = 100_000,
    ) -> None:
        """Resolve the encoding and set up the counter."""
        reason = None
        if encoding is None:
            try:
                encoding = encoding_for_model(model)
            except UnknownModelError:
                encoding = REFERENCE_ENCODING
                reason = (
                    f"model {model!r} is not a known OpenAI model; assumed {encoding}"
                )
        legacy = (
            model.strip().lower().rsplit("/", 1)[-1].startswith("gpt-3.5-turbo-0301")
        )
        super().__init__(
            _info(model, provider, encoding, exact=reason is None, reason=reason),
            tool_rules=CL100K_TOOL_RULES
            if encoding == "cl100k_base"
            else O200K_TOOL_RULES,
            # gpt-3.5-turbo-0301 rendered a name instead of the role.
            tokens_per_message=4 if legacy else 3,
            tokens_per_name=-1 if legacy else 1,
            memo_size=memo_size,
        )


class ApproximateCounter(LocalCounter):
    """Approximate counts for non-OpenAI models, with OpenAI's message structure.

    Content is measured with the reference tokenizer (``o200k_base``) when it
    loads, else from character classes; calibration learns how the real
    tokenizer differs. A tool set counts its schema JSON tokens plus fixed
    overheads (7 per tool, 12 per set).

    Args:
        model: Any model name (recorded in ``info``).
        provider: The provider (recorded in ``info``).
        memo_size: Most messages memoized.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_tokencal._counting.local import ApproximateCounter

        counter = ApproximateCounter("claude-sonnet-4-5", provider="anthropic")
        assert counter.info.kind == "approximate"
        assert counter([HumanMessage("Hello there")]) == 9
        ```
    """

    def __init__(
        self, model: str, *, provider: str | None = None, memo_size: int = 100_000
    ) -> None:
        """Load the reference encoding (or fall back) and set up the counter."""
        super().__init__(
            _info(
                model,
                provider,
                REFERENCE_ENCODING,
                exact=False,
                reason=f"no local tokenizer for {model!r}; measured with "
                f"{REFERENCE_ENCODING}",
            ),
            memo_size=memo_size,
        )

    def _tools_local(self, tools: list[dict[str, Any]], schema_tokens: float) -> float:
        """Schema tokens plus per-tool and per-set overheads."""
        return schema_tokens + _APPROX_TOOL_INIT * len(tools) + _APPROX_TOOLS_END


def local_counter(
    model: str, provider: str | None = None, *, memo_size: int = 100_000
) -> LocalCounter:
    """Make the local counter for a model.

    Args:
        model: The model name.
        provider: ``openai`` or ``azure`` for an `OpenAICounter`; any other
            provider gets an `ApproximateCounter`; None decides by the model
            name (`encoding_for_model`).
        memo_size: Most messages memoized.

    Returns:
        The counter. It never raises for an unknown model: it approximates.

    Example:
        ```python
        from langchain_core.messages import trim_messages
        from langchain_tokencal._counting.local import local_counter

        counter = local_counter("claude-sonnet-4-5", "anthropic")
        history = [("user", "hi"), ("assistant", "hello"), ("user", "bye")]
        trim_messages(history, max_tokens=20, token_counter=counter, strategy="last")
        ```
    """
    key = provider.strip().lower() if provider else None
    if key is not None and counts_with_openai_tokenizer(key):
        return OpenAICounter(model, provider=key, memo_size=memo_size)
    if key is None:
        if "gpt-oss" in model.lower():
            # Open weights in the harmony format, served by many hosts: OpenAI's
            # chat accounting does not apply, so it is not an exact count.
            return ApproximateCounter(model, memo_size=memo_size)
        try:
            encoding_for_model(model)
        except UnknownModelError:
            return ApproximateCounter(model, memo_size=memo_size)
        return OpenAICounter(model, provider=None, memo_size=memo_size)
    return ApproximateCounter(model, provider=key, memo_size=memo_size)
