"""Local counting: the counter protocol, encodings, OpenAI accounting, message parts."""

from langchain_tokencal._counting.local import (
    ApproximateCounter,
    CounterInfo,
    LocalCounter,
    OpenAICounter,
    TokenCounter,
    as_messages,
    local_counter,
)

__all__ = [
    "ApproximateCounter",
    "CounterInfo",
    "LocalCounter",
    "OpenAICounter",
    "TokenCounter",
    "as_messages",
    "local_counter",
]
