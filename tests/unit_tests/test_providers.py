"""Provider identity: one alias table, one tokenizer rule, one snapshot rule."""

import pytest

from langchain_tokencal import (
    ApproximateCounter,
    OpenAICounter,
    UnknownProviderError,
    create_counter,
    local_counter,
    parse_usage,
)


class TestCounterChoice:
    """Which local counter a provider name gets."""

    @pytest.mark.parametrize(
        ("model", "provider", "expected"),
        [
            pytest.param("grok-2", "xai", ApproximateCounter, id="xai"),
            pytest.param(
                "accounts/fireworks/models/llama-v3p1-8b-instruct",
                "fireworks",
                ApproximateCounter,
                id="fireworks",
            ),
            pytest.param("gpt-4o", "azure", OpenAICounter, id="azure"),
            pytest.param("gpt-4o", "openai", OpenAICounter, id="openai"),
            pytest.param(
                "claude-sonnet-4-5", "anthropic", ApproximateCounter, id="anthropic"
            ),
        ],
    )
    def test_both_entry_points_pick_the_same_local_counter(
        self, model, provider, expected
    ):
        """`local_counter` and `create_counter` agree on who tokenizes a model."""
        assert type(local_counter(model, provider)) is expected
        assert type(create_counter(model, provider).local) is expected

    def test_an_openai_compatible_host_still_bills_as_openai(self):
        """The xai host speaks OpenAI's usage format, so its counter's family is openai."""
        assert create_counter("grok-2", "xai").provider == "openai"


class TestUnknownProvider:
    """The message for a provider name nobody knows."""

    def test_one_message_for_every_entry_point(self):
        """Both `create_counter` and `parse_usage` name the same known providers."""
        with pytest.raises(UnknownProviderError) as counter_error:
            create_counter("m", "nope")
        with pytest.raises(UnknownProviderError) as usage_error:
            parse_usage({"input_tokens": 1, "output_tokens": 1}, provider="nope")
        head = "Unknown provider 'nope'; expected one of anthropic, bedrock"
        assert str(counter_error.value).startswith(head)
        assert str(usage_error.value).startswith(head)
        assert "model name" in str(counter_error.value)
        assert "payload" in str(usage_error.value)
