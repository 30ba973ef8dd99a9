"""Usage reports: the normalized record, parsing LangChain objects and payloads."""

from langchain_tokencal._usage.parse import (
    SUPPORTED_PROVIDERS,
    USAGE_FIELDS,
    TokenUsage,
    explain_usage,
    parse_usage,
)

__all__ = [
    "SUPPORTED_PROVIDERS",
    "USAGE_FIELDS",
    "TokenUsage",
    "explain_usage",
    "parse_usage",
]
