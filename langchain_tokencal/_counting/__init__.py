"""Local counting: the counter protocol, encodings, OpenAI accounting, message parts."""

from langchain_tokencal._counting.approximate import ApproximateCounter
from langchain_tokencal._counting.encodings import REFERENCE_ENCODING, token_counts
from langchain_tokencal._counting.factory import local_counter
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai import OpenAICounter
from langchain_tokencal._counting.openai_rules import encoding_for_model
from langchain_tokencal._counting.protocol import CounterInfo, TokenCounter, as_messages

__all__ = [
    "REFERENCE_ENCODING",
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
