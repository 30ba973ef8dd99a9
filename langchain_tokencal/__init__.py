"""Accurate prompt token counts for LangChain chat models, learned from usage."""

from langchain_tokencal.errors import (
    ConfigError,
    EncodingUnavailableError,
    TokenCalError,
    UnknownModelError,
    UnknownProviderError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "EncodingUnavailableError",
    "TokenCalError",
    "UnknownModelError",
    "UnknownProviderError",
    "UsageError",
    "__version__",
]
