"""Keyed digests: a store read does not confirm a guessed message.

With ``hash_key`` (or ``TOKENCAL_HASH_KEY``) every message digest and tool-set
fingerprint is keyed; handlers sharing the key share what they learned, a
handler with another key (or none) cannot match it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from langchain_core.messages import HumanMessage

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal._counting.digests import plain_digest
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import ConfigError
from langchain_tokencal.storage import SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

MODEL = "claude-sonnet-4-5"
GUESS = [HumanMessage("Is the merger with Initech going ahead on Friday?")]
USAGE = {"input_tokens": 31, "output_tokens": 2}


def stored_hashes(path: Path) -> set[int]:
    """Every integer value of every event in the file."""
    with SQLiteStore(path) as store:
        events, _ = store.read()
    return {v for e in events for v in e.values if isinstance(v, int)}


def learn(url: str, **settings: object) -> None:
    """One handler learns `GUESS` into the store and closes."""
    handler = TokenCalibrationHandler(store=url, **settings)
    handler.observe(GUESS, USAGE, MODEL, provider="anthropic")
    handler.close()


class TestKeyedDigests:
    """The store holds keyed digests; only the same key reuses them."""

    def test_guess_is_not_confirmed(self, tmp_path: Path) -> None:
        """The plain digest of the message is in an unkeyed store only."""
        text = str(GUESS[0].content).encode()
        guess = plain_digest("user", None, None, text)
        plain, keyed = tmp_path / "plain.db", tmp_path / "keyed.db"
        learn(f"sqlite:///{plain}")
        learn(f"sqlite:///{keyed}", hash_key="a long random secret")
        assert guess in stored_hashes(plain)
        assert guess not in stored_hashes(keyed)

    def test_same_key_shares_learning(self, tmp_path: Path) -> None:
        """Same key: the prompt is known exactly; another key: it is not."""
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        learn(url, hash_key="k1")
        same = TokenCalibrationHandler(store=url, hash_key="k1")
        other = TokenCalibrationHandler(store=url, hash_key="k2")
        try:
            assert same.estimate(GUESS, model=MODEL).source == "exact"
            assert same.count_messages(GUESS, model=MODEL) == USAGE["input_tokens"]
            assert other.estimate(GUESS, model=MODEL).source != "exact"
        finally:
            same.close()
            other.close()

    def test_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """TOKENCAL_HASH_KEY is the default; the key never shows in a repr."""
        monkeypatch.setenv("TOKENCAL_HASH_KEY", "from-the-env")
        config = CounterConfig()
        assert config.hash_key == "from-the-env"
        assert "from-the-env" not in repr(config)
        handler = TokenCalibrationHandler()
        assert "from-the-env" not in repr(handler.config)

    @pytest.mark.parametrize("key", ["", 5, b"bytes"])
    def test_bad_key(self, key: object) -> None:
        """A key that is not a non-empty string is a ConfigError naming its type only."""
        with pytest.raises(ConfigError, match="hash_key") as info:
            CounterConfig(hash_key=key)  # type: ignore[arg-type]
        assert type(key).__name__ in str(info.value)
        assert "bytes'" not in str(info.value)


class TestHandlerSettings:
    """The library follows TOKENCAL_STORE; sync_interval must be positive."""

    def test_default_store_follows_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TokenCalibrationHandler() uses $TOKENCAL_STORE, as the command does."""
        url = f"sqlite:///{tmp_path / 'env.db'}"
        monkeypatch.setenv("TOKENCAL_STORE", url)
        handler = TokenCalibrationHandler()
        try:
            assert handler._sync.store is not None
            assert handler._sync.store.url == url
        finally:
            handler.close()
        assert (tmp_path / "env.db").exists()

    @pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "2", True])
    def test_bad_sync_interval(self, seconds: object) -> None:
        """Zero would spin the sync thread: a ConfigError naming the setting."""
        with pytest.raises(ConfigError, match="sync_interval"):
            TokenCalibrationHandler(sync_interval=seconds)  # type: ignore[arg-type]
