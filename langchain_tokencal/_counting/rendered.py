"""The base of counters that render a whole prompt and count it exactly.

A template counter knows the exact count of a whole prompt (messages and
tools rendered together), while calibration reads per-message records whose
cost is fixed by the message alone (`LocalCounter`'s memo). So each message
keeps a context-free local count (its content by the model's tokenizer plus
one), and whatever the rendering adds beyond them for this call (special
tokens, the tools section, a default system prompt, the generation prompt)
is the call's fixed cost, carried by its `ToolFeatures`: the local total,
``framing + tools.local + messages``, is then the exact rendered count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_tokencal._cache import TTLCache
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai_rules import normalize_tool
from langchain_tokencal._counting.protocol import CounterInfo, as_messages
from langchain_tokencal._features import ToolFeatures

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage

    from langchain_tokencal._features import FeatureBatch

__all__ = ["RenderedCounter"]


class RenderedCounter(LocalCounter):
    """A local counter whose whole-prompt count is exact; see the module.

    Subclasses implement `_count_text` (a text's tokens) and `_exact_total`
    (the rendered prompt's tokens). Thread-safe as `LocalCounter` is.
    """

    framing = 0
    renders_whole_prompt = True
    # True when the contents are tiktoken text of the counter's encoding, so
    # `LocalCounter`'s batch on two threads counts them.
    batch_contents = False
    # Token counts of rendered text pieces, by text, when the subclass counts
    # its rendering piece by piece; message contents share it, so the first
    # render of a list tokenizes each content once, not twice.
    _pieces: TTLCache[str, int] | None = None

    def __init__(
        self,
        model: str,
        provider: str | None,
        *,
        tokenizer: str,
        encoding: str | None = None,
        memo_size: int = 100_000,
    ) -> None:
        """Set up the memos; the message records count with `_count_text`."""
        super().__init__(
            CounterInfo(
                model=model,
                provider=provider,
                kind="exact",
                encoding=encoding,
                fallback=False,
                reason=None,
                tokenizer=tokenizer,
            ),
            tokens_per_message=1,
            tokens_per_name=0,
            memo_size=memo_size,
        )
        self._count = self._count_text
        self._totals: TTLCache[Any, int] = TTLCache(max_size=4096)

    def _count_text(self, text: str) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _exact_total(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _role_cost(self, role: str) -> float:
        """Roles are the template's business: in the call's fixed cost."""
        del role
        return 0.0

    def _tokenize_contents(self, plains: Any) -> dict[int, int]:
        """A tiktoken batch when `batch_contents`, else one by one."""
        return super()._tokenize_contents(plains) if self.batch_contents else {}

    def _text(
        self, text: str, data: bytes, tokens: float | None = None
    ) -> tuple[float, tuple[float, ...]]:
        """Tokens of a text by the model's tokenizer, split by content class."""
        pieces = self._pieces
        if tokens is None:
            found = pieces.get(text) if pieces is not None else None
            if found is None:
                found = self._count_text(text)
                if pieces is not None:
                    pieces.put(text, found)
            tokens = found
        elif pieces is not None:
            # Counted in a batch (`_tokenize_contents`): the rendering reuses it.
            pieces.put(text, int(tokens))
        return super()._text(text, data, tokens)

    def prepare(
        self, messages: Sequence[Any], tools: Sequence[Any] | None = None
    ) -> tuple[FeatureBatch, ToolFeatures]:
        """The message records and this call's fixed cost, exact together."""
        messages = as_messages(messages)
        batch = self.feature_batch(messages)
        tools_f = self.tool_features(tools)
        key = (tuple(batch.digests), tools_f.fingerprint)
        total = self._totals.get(key)
        if total is None:
            normalized = [normalize_tool(tool) for tool in tools or ()]
            total = self._exact_total(messages, normalized)
            self._totals.put(key, total)
        return batch, ToolFeatures(
            local=total - self.framing - batch.local_total,
            schema_tokens=tools_f.schema_tokens,
            count=tools_f.count,
            fingerprint=tools_f.fingerprint,
        )

    def __call__(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """The exact rendered count of ``messages`` with ``tools``."""
        batch, tools_f = self.prepare(messages, tools)
        return self.framing + tools_f.local + batch.local_total
