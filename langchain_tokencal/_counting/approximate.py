"""The approximate counter: OpenAI's message structure, a reference tokenizer."""

from typing import Any, Final

from langchain_tokencal._counting.encodings import REFERENCE_ENCODING, counter_info
from langchain_tokencal._counting.local import LocalCounter

__all__ = ["ApproximateCounter"]

_APPROX_TOOL_INIT: Final = 7  # per tool, like the cookbook's func_init
_APPROX_TOOLS_END: Final = 12  # per tool set, like the cookbook's func_end


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
        from langchain_tokencal._counting import ApproximateCounter

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
            counter_info(
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
