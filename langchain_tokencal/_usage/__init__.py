"""Usage reports: the normalized record, parsing LangChain objects and payloads.

Modules, bottom to top: `record` (`TokenUsage`, `USAGE_FIELDS`,
`usage_metadata`), `draft` (unchecked counts and their checks), `families` (one
parser per provider convention), `search` (where usage sits in an envelope),
`messages` (LangChain messages and results), `streams` (chunk and event
lists), `parse` (`parse_usage`, `explain_usage`, `coerce_usage`).
"""

from langchain_tokencal._usage.parse import (
    SUPPORTED_PROVIDERS,
    coerce_usage,
    explain_usage,
    parse_usage,
)
from langchain_tokencal._usage.record import USAGE_FIELDS, TokenUsage, usage_metadata
from langchain_tokencal._usage.search import USAGE_CONTAINERS

__all__ = [
    "SUPPORTED_PROVIDERS",
    "USAGE_CONTAINERS",
    "USAGE_FIELDS",
    "TokenUsage",
    "coerce_usage",
    "explain_usage",
    "parse_usage",
    "usage_metadata",
]
