"""The counter factory: the right local counter for a model and provider."""

from langchain_tokencal._counting.approximate import ApproximateCounter
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai import OpenAICounter
from langchain_tokencal._counting.openai_rules import encoding_for_model
from langchain_tokencal._providers import counts_with_openai_tokenizer
from langchain_tokencal.errors import EncodingUnavailableError, UnknownModelError

__all__ = ["local_counter"]


def local_counter(
    model: str,
    provider: str | None = None,
    *,
    memo_size: int = 100_000,
    strict: bool = False,
) -> LocalCounter:
    """Make the local counter for a model.

    Args:
        model: The model name.
        provider: ``openai`` or ``azure`` for an `OpenAICounter`; any other
            provider gets an `ApproximateCounter`; None decides by the model
            name (`encoding_for_model`).
        memo_size: Most messages memoized.
        strict: Refuse to count without the tiktoken encoding the counter
            needs, instead of approximating with character classes (for a
            deployment check: a counter that silently approximates is 15-25%
            off where it would be exact).

    Returns:
        The counter. It never raises for an unknown model: it approximates.

    Raises:
        EncodingUnavailableError: With ``strict=True``, if the encoding cannot
            be loaded (offline with no ``TIKTOKEN_CACHE_DIR`` holding it).

    Example:
        ```python
        from langchain_core.messages import trim_messages
        from langchain_tokencal._counting import local_counter

        counter = local_counter("claude-sonnet-4-5", "anthropic")
        history = [("user", "hi"), ("assistant", "hello"), ("user", "bye")]
        trim_messages(history, max_tokens=20, token_counter=counter, strategy="last")
        ```
    """
    counter = _make(model, provider, memo_size)
    info = counter.info
    if strict and info.fallback:
        msg = (
            f"{info.reason}. Fix: set TIKTOKEN_CACHE_DIR to a folder holding the "
            "encoding files (tiktoken writes them there on its first online use), "
            "or drop strict=True to count approximately."
        )
        raise EncodingUnavailableError(msg)
    return counter


def _make(model: str, provider: str | None, memo_size: int) -> LocalCounter:
    """The counter for a model and provider, whether its encoding loads or not."""
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
