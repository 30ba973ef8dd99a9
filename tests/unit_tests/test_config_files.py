"""Settings from files and the environment: TOML, YAML, JSON, pyproject, TOKENCAL_*."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from langchain_tokencal import TokenCalibrationHandler
from langchain_tokencal.config import environment_settings, read_settings
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = {"cache_size": 1000, "min_points": 3, "sync_interval": 5.0}


class TestFiles:
    """from_config reads each format; every value is validated."""

    @pytest.mark.parametrize(
        ("name", "text"),
        [
            (
                "tokencal.toml",
                "cache_size = 1000\nmin_points = 3\nsync_interval = 5.0\n",
            ),
            ("tokencal.yaml", "cache_size: 1000\nmin_points: 3\nsync_interval: 5.0\n"),
            (
                "tokencal.yml",
                "tokencal:\n  cache_size: 1000\n  min_points: 3\n  sync_interval: 5.0\n",
            ),
            ("tokencal.json", json.dumps(SETTINGS)),
            (
                "pyproject.toml",
                (
                    "[project]\nname = 'app'\n\n[tool.tokencal]\ncache_size = 1000\n"
                    "min_points = 3\nsync_interval = 5.0\n"
                ),
            ),
        ],
    )
    def test_formats(self, tmp_path: Path, name: str, text: str) -> None:
        """The same settings from TOML, YAML, a tokencal table, JSON, pyproject."""
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert read_settings(path) == SETTINGS
        handler = TokenCalibrationHandler.from_config(path, environ={})
        try:
            assert handler.config.cache_size == 1000
            assert handler.config.min_points == 3
        finally:
            handler.close()

    def test_store_in_a_file(self, tmp_path: Path) -> None:
        """store= from the file opens that store."""
        path = tmp_path / "tokencal.toml"
        path.write_text(f"store = 'sqlite:///{tmp_path / 'c.db'}'\n", encoding="utf-8")
        handler = TokenCalibrationHandler.from_config(str(path), environ={})
        handler.close()
        assert (tmp_path / "c.db").exists()

    @pytest.mark.parametrize(
        ("name", "text", "match"),
        [
            ("tokencal.toml", "cache_sise = 1000\n", "Unknown setting.*cache_sise"),
            ("tokencal.toml", "cache_size = -1\n", "cache_size must be a positive"),
            ("tokencal.toml", "cache_size = = 1\n", "cannot parse"),
            ("tokencal.yaml", "- a list\n", "must hold a table"),
            ("tokencal.ini", "x", "settings files are .toml"),
            (
                "tokencal.toml",
                "sync_interval = 0\n",
                "sync_interval must be a positive",
            ),
        ],
    )
    def test_bad_files(self, tmp_path: Path, name: str, text: str, match: str) -> None:
        """A ConfigError that names the problem, never a parser's traceback."""
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=match):
            TokenCalibrationHandler.from_config(path, environ={})

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist is a ConfigError naming it."""
        with pytest.raises(ConfigError, match="cannot read the settings file"):
            TokenCalibrationHandler.from_config(tmp_path / "nope.toml", environ={})


class TestEnvironment:
    """TOKENCAL_* variables, converted and validated, override the file."""

    def test_conversion(self) -> None:
        """Integers, numbers, booleans, none and JSON."""
        env = {
            "TOKENCAL_CACHE_SIZE": "1000",
            "TOKENCAL_CACHE_TTL": "none",
            "TOKENCAL_COVERAGE": "0.9",
            "TOKENCAL_OWN_TOKENIZERS": "false",
            "TOKENCAL_TOKENIZERS": '{"llama3.1:8b": "meta-llama/Llama-3.1-8B-Instruct"}',
            "TOKENCAL_SYNC_INTERVAL": "7",
            "OTHER": "ignored",
        }
        assert environment_settings(env) == {
            "cache_size": 1000,
            "cache_ttl": None,
            "coverage": 0.9,
            "own_tokenizers": False,
            "tokenizers": {"llama3.1:8b": "meta-llama/Llama-3.1-8B-Instruct"},
            "sync_interval": 7.0,
        }

    def test_overrides_the_file(self, tmp_path: Path) -> None:
        """The environment wins over the file."""
        path = tmp_path / "tokencal.toml"
        path.write_text("cache_size = 1000\n", encoding="utf-8")
        handler = TokenCalibrationHandler.from_config(
            path, environ={"TOKENCAL_CACHE_SIZE": "50"}
        )
        assert handler.config.cache_size == 50
        handler.close()

    def test_from_the_process_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With no source, from_config reads os.environ."""
        monkeypatch.setenv("TOKENCAL_MIN_POINTS", "9")
        handler = TokenCalibrationHandler.from_config()
        assert handler.config.min_points == 9
        handler.close()

    @pytest.mark.parametrize(
        ("name", "value"),
        [("TOKENCAL_CACHE_SIZE", "lots"), ("TOKENCAL_OWN_TOKENIZERS", "maybe")],
    )
    def test_bad_values_name_the_variable(self, name: str, value: str) -> None:
        """A value that does not convert names its variable."""
        with pytest.raises(ConfigError, match=name):
            environment_settings({name: value})
