"""`create_counter`: the counter for a model, its settings checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_tokencal._calibration.counter import CalibratedCounter
from langchain_tokencal._providers import canonical, unknown_provider_message
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import UnknownProviderError

__all__ = ["create_counter"]


def create_counter(
    model: str,
    provider: str | None = None,
    *,
    config: CounterConfig | Mapping[str, Any] | None = None,
    **settings: Any,
) -> CalibratedCounter:
    """Create the right counter for a model, ready to learn from its reports.

    OpenAI models count exactly with their own tiktoken encoding; every other
    model starts from the approximate counter and is calibrated by `observe`
    (or by a `TokenCalibrationHandler` that feeds it).

    Args:
        model: The model name (``"gpt-4o"``, ``"claude-sonnet-4-5"``...).
        provider: ``"openai"``, ``"anthropic"``, ``"google"``...; guessed from
            the model name when omitted.
        config: A `CounterConfig` or a mapping of its settings.
        **settings: Individual settings (``cache_ttl=``, ``cache_size=``,
            ``min_points=``, ``max_points=``...), applied over ``config``.

    Raises:
        ConfigError: On an unknown or invalid setting.
        UnknownProviderError: On a provider that is not known.

    Example:
        ```python
        from langchain_core.messages import trim_messages

        from langchain_tokencal import create_counter

        counter = create_counter("gpt-4o", cache_size=10_000)
        history = [("system", "Be brief."), ("user", "Hi!")]
        trimmed = trim_messages(history, max_tokens=50, token_counter=counter)
        ```
    """
    if provider is not None:
        name = canonical(provider) if isinstance(provider, str) else None
        if name is None:
            msg = unknown_provider_message(
                provider, none_means="guess it from the model name"
            )
            raise UnknownProviderError(msg)
    if isinstance(config, Mapping):
        config = CounterConfig.from_mapping(config)
    config = config or CounterConfig()
    if settings:
        config = config.replace(**settings)
    return CalibratedCounter(model, provider, config=config)
