"""The counter factory: the right local counter for a model and provider."""

from langchain_tokencal._counting.approximate import ApproximateCounter
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai import OpenAICounter
from langchain_tokencal._counting.openai_rules import encoding_for_model
from langchain_tokencal._providers import counts_with_openai_tokenizer
from langchain_tokencal.errors import UnknownModelError

__all__ = ["local_counter"]


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
        from langchain_tokencal._counting import local_counter

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
