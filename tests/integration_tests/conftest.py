"""Integration tests: the real partner clients against provider-shaped APIs on 127.0.0.1.

Every test here may open sockets to 127.0.0.1 only (pytest-socket's
``allow_hosts`` marker is added to each item, whatever the command line
says), provider keys are dummies, base-URL variables are cleared and proxies
are bypassed for loopback, so no client can reach a real provider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from langchain_tokencal import TokenCalibrationHandler
from tests.integration_tests.clients import CLIENTS, Client
from tests.integration_tests.loopback import LoopbackServer
from tests.integration_tests.loops import LOOP_REPORT
from tests.offline_encodings import encoding_cache

if TYPE_CHECKING:
    from collections.abc import Iterator

_HERE = Path(__file__).parent

_DUMMY_KEYS = {
    "OPENAI_API_KEY": "sk-loopback",
    "ANTHROPIC_API_KEY": "sk-ant-loopback",
    "MISTRAL_API_KEY": "loopback",
    "GOOGLE_API_KEY": "loopback",
    "DEEPSEEK_API_KEY": "loopback",
    "AWS_ACCESS_KEY_ID": "AKIDLOOPBACK",
    "AWS_SECRET_ACCESS_KEY": "loopback-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_CLEARED = (
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_URL",
    "ANTHROPIC_AUTH_TOKEN",
    "MISTRAL_BASE_URL",
    "OLLAMA_HOST",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DEEPSEEK_API_BASE",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

# Once per session, before any test loads an encoding (and never with a cache
# the user configured).
_CACHE = None if os.environ.get("TIKTOKEN_CACHE_DIR") else encoding_cache()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Let this folder's tests connect to 127.0.0.1, and nowhere else."""
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))


@pytest.fixture(autouse=True)
def _loopback_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy keys, no base URLs from the environment, no proxy for loopback."""
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in _DUMMY_KEYS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    if _CACHE is not None:
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_CACHE))


@pytest.fixture
def handler() -> Iterator[TokenCalibrationHandler]:
    """A fresh handler that raises its own bugs into the call."""
    h = TokenCalibrationHandler()
    h.raise_error = True
    yield h
    h.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The loop numbers the Done-when criteria are about, one line per loop."""
    if not LOOP_REPORT:
        return
    write = terminalreporter.write_line
    terminalreporter.section("tokencal loops through the partner clients")
    write(
        f"{'loop':<28} {'calls':>5} {'MAPE 16+':>9} {'max 16+':>8} "
        f"{'high<truth':>10} {'first-use err':>14} {'first-use high':>15}"
    )
    for name, r in sorted(LOOP_REPORT.items()):
        first = ", ".join(f"{e:+.1%}" for e in r["first_use_errors"]) or "-"
        first_high = (
            ", ".join("under" if u else "ok" for u in r["first_use_under"]) or "-"
        )
        write(
            f"{name:<28} {r['calls']:>5} {r['mape_after']:>9.2%} {r['max_after']:>8.2%} "
            f"{r['under']:>4}/{r['calls']:<5} {first:>14} {first_high:>15}"
        )


@pytest.fixture(params=CLIENTS, ids=lambda c: c.id)
def client(request: pytest.FixtureRequest) -> Client:
    """Each partner client in turn."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def api(client: Client) -> Iterator[LoopbackServer]:
    """The client's provider-shaped API on 127.0.0.1; it must answer without errors."""
    with LoopbackServer(client.app()) as server:
        yield server
        assert not server.errors, server.errors
