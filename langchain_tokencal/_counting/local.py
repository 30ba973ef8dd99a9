"""The local counter: message structure, the per-message memo and tool schemas.

`LocalCounter` counts a prompt the way OpenAI's chat completions do: 3 tokens
per message plus the role's tokens, the name's tokens plus 1, tool calls,
tool-call ids, images, the tool schemas, and 3 tokens priming the reply. Its
subclasses choose the tokenizer (`OpenAICounter`, `ApproximateCounter`).
Each message's result is memoized as one packed record (about 140 bytes with
its key; `RecordMemo`), so counting a list of messages seen before never
calls the tokenizer; many new messages at once are tokenized on two threads
(`token_counts`).

A record's vector has the layout `_features` names (`FEATURE_BIAS`,
`FEATURE_CLASSES`, `FEATURE_IMAGE`, `FEATURE_TOOL_CALLS`,
`FEATURE_TOOL_RESULT`); a plain message's is written as one tuple display,
``(1.0, *classes, 0.0, 0.0, result)``, on the path most new messages take.

Note:
    This module must not use ``from __future__ import annotations``:
    `trim_messages` reads the annotation of the first parameter of a counter's
    ``__call__`` at run time and treats a counter annotated ``BaseMessage`` as a
    per-message counter. Ours is annotated ``Sequence[BaseMessage]``.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from operator import itemgetter
from typing import Any, Final, cast

import xxhash
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue

from langchain_tokencal._cache import CacheStats, RecordMemo, TTLCache
from langchain_tokencal._counting.digests import (
    canonical_json,
    derive_key,
    freeze,
    keyed_digest,
    memo_lookup,
    message_digest,
    plain_digest,
)
from langchain_tokencal._counting.encodings import (
    CPUS,
    PARALLEL_CHARS,
    load_encoding,
    token_counts,
)
from langchain_tokencal._counting.openai_rules import (
    O200K_TOOL_RULES,
    ToolRules,
    function_tokens,
    image_tokens,
    normalize_tool,
)
from langchain_tokencal._counting.parts import message_parts, plain_parts
from langchain_tokencal._counting.protocol import CounterInfo, as_messages
from langchain_tokencal._features import (
    CONTENT_CLASSES,
    FEATURE_BIAS,
    FEATURE_CLASSES,
    FEATURE_IMAGE,
    FEATURE_TOOL_CALLS,
    FEATURE_TOOL_RESULT,
    N_FEATURES,
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
from langchain_tokencal.errors import ConfigError

__all__ = ["LocalCounter"]

_TOOL_CALL_ID_TOKENS: Final = 3  # langchain-openai's inferred cost; undocumented

_N_CLASSES: Final = len(CONTENT_CLASSES)
_NO_CLASSES: Final = (0.0,) * _N_CLASSES
_unpack_head = RECORD_HEAD.unpack_from
_second = itemgetter(1)


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
        from langchain_tokencal._counting import local_counter

        counter = local_counter("gpt-4o")
        assert counter([SystemMessage("Be brief."), HumanMessage("Hi!")]) == 16
        ```
    """

    framing: int = 3
    # True where a prompt's fixed cost depends on all of its messages (a chat
    # template's): the features of one list do not count its sub-lists.
    renders_whole_prompt: bool = False

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
        self._keyed: Callable[[int], int] = _unkeyed
        encoding = load_encoding(info.encoding) if info.encoding else None
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
            from langchain_tokencal._counting import local_counter

            counter = local_counter("gpt-4o")
            batch = counter.feature_batch([HumanMessage("hi")])
            assert batch.locals == [5] and len(batch.digests) == 1
            ```
        """
        return FeatureBatch(self._records(messages))

    def prepare(
        self, messages: Sequence[Any], tools: Sequence[Any] | None = None
    ) -> tuple[FeatureBatch, ToolFeatures]:
        """Return the `feature_batch` of ``messages`` and the `tool_features`.

        What calibration reads of a call. Counters that render the whole
        prompt (chat templates) override it: their fixed cost depends on the
        messages and tools together.
        """
        return self.feature_batch(messages), self.tool_features(tools)

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
        `PARALLEL_CHARS`).
        """
        encoding = self._encoding
        if encoding is None or CPUS < 2:  # noqa: PLR2004 - two threads
            return {}
        contents = {key: p[3] for key, p in plains.items() if p is not None and p[3]}
        if sum(map(len, contents.values())) < PARALLEL_CHARS:
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
        result = 0.0
        if tool_call_id is not None:
            overhead += _TOOL_CALL_ID_TOKENS
            result = 1.0
        return pack_record(
            self._keyed(plain_digest(role, name, tool_call_id, data)),
            int(overhead + tokens + 0 + 0.5),
            (1.0, *(share or 0.0 for share in classes), 0.0, 0.0, result),
        )

    def _general_features(self, message: BaseMessage) -> bytes:
        """Count a message of any shape: blocks, images, tool calls."""
        parts = message_parts(message)
        overhead = self._tokens_per_message + self._role_cost(parts.role)
        # Sums start at 0.0, so no entry is -0.0 (0.0 + -0.0 == 0.0): the same
        # record as the plain path's ``share or 0.0``.
        vector = [0.0] * N_FEATURES
        vector[FEATURE_BIAS] = 1.0
        first = FEATURE_CLASSES.start

        def add(text: str) -> float:
            tokens, shares = self._text(text, text.encode("utf-8", "surrogatepass"))
            for i, share in enumerate(shares, first):
                vector[i] += share
            return tokens

        content = sum(add(text) for text in parts.texts if text)
        if parts.name:
            content += add(parts.name)
            overhead += self._tokens_per_name
        for name, arguments, _ in parts.tool_calls:
            content += (add(name) if name else 0) + (add(arguments) if arguments else 0)
        vector[FEATURE_TOOL_CALLS] += len(parts.tool_calls)
        if parts.tool_call_id is not None:
            overhead += _TOOL_CALL_ID_TOKENS
            vector[FEATURE_TOOL_RESULT] = 1.0
        image = sum(image_tokens(source, detail) for source, detail in parts.images)
        vector[FEATURE_IMAGE] += image
        return pack_record(
            self._keyed(message_digest(message, parts)),
            int(overhead + content + image + 0.5),
            vector,
        )

    def tool_features(self, tools: Sequence[Any] | None) -> ToolFeatures:
        """Return the `ToolFeatures` of a tool set, memoized.

        Raises:
            ConfigError: If a tool cannot be converted to a schema.
        """
        if not tools:
            return NO_TOOLS
        try:
            return self._tool_features(tools)
        except RecursionError as err:
            # A schema that refers to itself (a dict inside itself) or nests
            # deeper than the interpreter's stack: no provider accepts it.
            msg = (
                "a tool's schema is cyclic or nested too deeply to be sent "
                "as JSON; pass tools whose schemas are plain JSON."
            )
            raise ConfigError(msg) from err

    def _tool_features(self, tools: Sequence[Any]) -> ToolFeatures:
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
        canonical = canonical_json(normalized)
        schema_tokens = float(self._count(canonical))
        features = ToolFeatures(
            local=int(self._tools_local(normalized, schema_tokens) + 0.5),
            schema_tokens=schema_tokens,
            count=len(normalized),
            fingerprint=self._keyed(
                xxhash.xxh3_64_intdigest(canonical.encode("utf-8", "surrogatepass"))
            ),
        )
        refs = tuple(None if isinstance(tool, Mapping) else tool for tool in tools)
        self._tool_memo.put(key, (features, refs))
        return features

    def _tools_local(self, tools: list[dict[str, Any]], schema_tokens: float) -> float:
        """Local tokens of a normalized tool set (OpenAI's cookbook rules)."""
        del schema_tokens
        return function_tokens(tools, self._tool_rules, self._count)

    def use_hash_key(self, key: str | None) -> None:
        """Key every digest and tool fingerprint with ``key`` (see `keyed_digest`).

        Forgets the memoized features, whose digests were made without it.
        """
        self._keyed = (
            _unkeyed if not key else partial(keyed_digest, key=derive_key(key))
        )
        self._memo.clear()
        self._tool_memo.clear()

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


def _unkeyed(digest: int) -> int:
    """A digest as it is (no ``hash_key``)."""
    return digest
