"""The integration tests cannot reach a real provider."""

from __future__ import annotations

import os
import socket

import pytest
from pytest_socket import SocketConnectBlockedError

from tests.integration_tests.clients import CLIENTS


class TestIsolation:
    """Only 127.0.0.1 is reachable; keys are dummies; no proxy sits in between."""

    def test_other_hosts_are_blocked(self):
        """A connection to any address but 127.0.0.1 is refused before it is made."""
        with (
            pytest.raises(SocketConnectBlockedError),
            pytest.warns(UserWarning, match='allowed: "127.0.0.1"'),
        ):
            socket.create_connection(("192.0.2.1", 443), timeout=0.2)  # TEST-NET-1

    def test_environment(self):
        """Dummy keys, no base URL or proxy variables, loopback exempt from proxies."""
        assert os.environ["OPENAI_API_KEY"] == "sk-loopback"
        assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-loopback"
        for name in (
            "OPENAI_BASE_URL",
            "ANTHROPIC_BASE_URL",
            "OLLAMA_HOST",
            "HTTPS_PROXY",
        ):
            assert name not in os.environ
        assert "127.0.0.1" in os.environ["NO_PROXY"]

    @pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.id)
    def test_clients_point_at_loopback(self, client):
        """Every client is built against the URL it is given, not a provider's."""
        llm = client.make("http://127.0.0.1:9")
        urls = [
            str(getattr(llm, name, "") or "")
            for name in (
                "openai_api_base",
                "anthropic_api_url",
                "base_url",
                "endpoint",
                "endpoint_url",  # ChatBedrockConverse
                "api_base",  # ChatDeepSeek
            )
        ]
        assert any(u.startswith("http://127.0.0.1:9") for u in urls), urls
