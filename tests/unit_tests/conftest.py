"""Shared fixtures: every unit test runs offline, without provider keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.offline_encodings import encoding_cache

_API_KEYS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "COHERE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)

# Once per session, before any test loads an encoding (and never with a cache
# the user configured).
_CACHE = None if os.environ.get("TIKTOKEN_CACHE_DIR") else encoding_cache()

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear provider keys and tracing, and keep tiktoken on its local cache."""
    for key in _API_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    # A developer's own store and key must not leak into the tests.
    monkeypatch.delenv("TOKENCAL_STORE", raising=False)
    monkeypatch.delenv("TOKENCAL_HASH_KEY", raising=False)
    if _CACHE is not None:
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_CACHE))
