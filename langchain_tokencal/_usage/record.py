"""The usage record: one call's tokens in LangChain's `UsageMetadata` convention.

`TokenUsage` is what every parser produces; `USAGE_FIELDS` is the order in which
per-model totals are summed (by a handler, by a store); `usage_metadata` turns
such totals back into LangChain's `UsageMetadata`, as `TokenUsage` does for one
call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from langchain_core.messages.ai import UsageMetadata

__all__ = [
    "NO_EXTRAS",
    "NO_FLAGS",
    "USAGE_FIELDS",
    "TokenUsage",
    "usage_metadata",
]

USAGE_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read",
    "cache_creation",
    "reasoning",
    "input_audio",
    "output_audio",
)
"""The order of per-model usage totals: what a handler bills and a store sums."""

# Shared empty values: records without extras or flags (most of them) allocate
# nothing for them.
NO_EXTRAS: Final[Mapping[str, int]] = MappingProxyType({})
NO_FLAGS: Final[frozenset[str]] = frozenset()


def _no_extras() -> Mapping[str, int]:
    return NO_EXTRAS


def usage_metadata(totals: Sequence[int]) -> UsageMetadata:
    """LangChain's `UsageMetadata` from counts in `USAGE_FIELDS` order.

    Args:
        totals: Eight counts (one call's, or a model's sums), ordered as
            `USAGE_FIELDS`.

    Returns:
        A new dict; ``input_token_details`` (``cache_read``,
        ``cache_creation``, ``audio``) and ``output_token_details``
        (``reasoning``, ``audio``) hold only the nonzero details and are left
        out when all of theirs are zero. Pure and thread-safe.

    Example:
        ```python
        from langchain_tokencal._usage import usage_metadata

        meta = usage_metadata((100, 20, 120, 80, 0, 0, 0, 0))
        assert meta == {
            "input_tokens": 100,
            "output_tokens": 20,
            "total_tokens": 120,
            "input_token_details": {"cache_read": 80},
        }
        ```
    """
    inp, out, total, read, write, reasoning, audio_in, audio_out = totals
    # A plain dict, cast once: mypy targets 3.10, where langchain-core's
    # `typing.NotRequired` keys read as required.
    meta: dict[str, Any] = {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": total,
    }
    inputs = {
        name: value
        for name, value in (
            ("cache_read", read),
            ("cache_creation", write),
            ("audio", audio_in),
        )
        if value
    }
    if inputs:
        meta["input_token_details"] = inputs
    outputs = {
        name: value
        for name, value in (("reasoning", reasoning), ("audio", audio_out))
        if value
    }
    if outputs:
        meta["output_token_details"] = outputs
    return cast("UsageMetadata", meta)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """One call's token usage in LangChain's `UsageMetadata` convention.

    Attributes:
        input_tokens: The whole prompt, cache reads and writes included.
        output_tokens: The completion, reasoning/thinking included.
        total_tokens: As reported, else input + output (+ billed extras such as
            Gemini's tool-use prompt).
        cache_read: Input tokens read from a prompt cache (subset of input).
        cache_creation: Input tokens written to a prompt cache (subset of input).
        reasoning: Reasoning tokens (subset of output).
        provider: Canonical provider name, or the payload's own
            ``model_provider`` string when it is not a known alias.
        model: Model name found in the payload, if any.
        extras: Provider additions (``input_audio``, ``tool_use_prompt``,
            ``billed_input``, ``prediction_accepted``...), read-only.
        raw_keys: The keys of the usage object that was read.
        flags: ``llm_cache_hit``, ``server_tool_input``, ``cumulative_stream``,
            ``count_only``
            (described in `langchain_tokencal._usage.parse`).

    Records are immutable and thread-safe; ``extras`` is left out of the hash.

    Example:
        ```python
        from langchain_tokencal import parse_usage

        usage = parse_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        assert usage is not None and usage.total_tokens == 15
        ```
    """

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read: int = 0
    cache_creation: int = 0
    reasoning: int = 0
    provider: str | None = None
    model: str | None = None
    extras: Mapping[str, int] = field(default_factory=_no_extras, hash=False)
    raw_keys: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Freeze a plain ``extras`` dict given by a caller."""
        if type(self.extras) is not MappingProxyType:
            object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    def to_usage_metadata(self) -> UsageMetadata:
        """Convert to LangChain's `UsageMetadata`, details only when nonzero.

        Returns:
            A new dict, as `usage_metadata` makes it from this record's counts
            (audio comes from ``extras``).

        Example:
            ```python
            from langchain_tokencal import TokenUsage

            meta = TokenUsage(100, 20, 120, cache_read=80).to_usage_metadata()
            assert meta["input_token_details"] == {"cache_read": 80}
            ```
        """
        extras = self.extras
        return usage_metadata(
            (
                self.input_tokens,
                self.output_tokens,
                self.total_tokens,
                self.cache_read,
                self.cache_creation,
                self.reasoning,
                extras.get("input_audio", 0),
                extras.get("output_audio", 0),
            )
        )
