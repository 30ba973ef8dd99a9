"""The OpenAI counter: exact counts with the model's own tiktoken encoding."""

from langchain_tokencal._counting.encodings import REFERENCE_ENCODING, counter_info
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai_rules import (
    CL100K_TOOL_RULES,
    O200K_TOOL_RULES,
    encoding_for_model,
)
from langchain_tokencal.errors import UnknownModelError

__all__ = ["OpenAICounter"]


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
        from langchain_tokencal._counting import OpenAICounter

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
            counter_info(
                model, provider, encoding, exact=reason is None, reason=reason
            ),
            tool_rules=CL100K_TOOL_RULES
            if encoding == "cl100k_base"
            else O200K_TOOL_RULES,
            # gpt-3.5-turbo-0301 rendered a name instead of the role.
            tokens_per_message=4 if legacy else 3,
            tokens_per_name=-1 if legacy else 1,
            memo_size=memo_size,
        )
