"""tiktoken's encoding files offline: the installer, `tokencal encodings`, one warning."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pytest

from langchain_tokencal._counting import encodings as loaded_encodings
from langchain_tokencal._counting import local_counter
from langchain_tokencal._counting.encoding_files import (
    ENCODING_FILES,
    cache_folder,
    install,
    status,
)
from langchain_tokencal.cli import main
from tests.unit_tests.test_counters import go_offline

pytest.importorskip("quicktok")
O200K = next(s for s in ENCODING_FILES if s.name == "o200k_base")


class TestInstaller:
    """Files written from quicktok or a folder, checked by tiktoken's hashes."""

    def test_quicktok_writes_tiktokens_own_files(self, tmp_path: Path) -> None:
        """The files hash to what tiktoken expects, and tiktoken loads them."""
        done = install(tmp_path)
        assert done == {
            "o200k_base": "installed",
            "cl100k_base": "installed",
            "p50k_base": "unavailable",
            "r50k_base": "unavailable",
        }
        data = (tmp_path / O200K.cache_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == O200K.sha256
        assert status(tmp_path)["o200k_base"] == "ok"
        assert install(tmp_path)["o200k_base"] == "present"

    def test_from_a_folder_and_a_wrong_file(self, tmp_path: Path) -> None:
        """A folder of <name>.tiktoken files installs; a wrong one is refused."""
        install(tmp_path / "good")
        source = tmp_path / "copied"
        source.mkdir()
        shutil.copy(
            tmp_path / "good" / O200K.cache_name, source / "o200k_base.tiktoken"
        )
        (source / "cl100k_base.tiktoken").write_bytes(b"not a vocabulary\n")
        done = install(tmp_path / "target", source)
        assert done["o200k_base"] == "installed"
        assert done["cl100k_base"] == "hash mismatch"
        assert status(tmp_path / "target")["cl100k_base"] == "missing"

    def test_damaged_file_is_seen_and_replaced(self, tmp_path: Path) -> None:
        """A cut file reads as damaged, and --install writes it again."""
        install(tmp_path)
        path = tmp_path / O200K.cache_name
        path.write_bytes(path.read_bytes()[:1000])
        assert status(tmp_path)["o200k_base"] == "damaged"
        assert install(tmp_path)["o200k_base"] == "installed"

    def test_cache_folder_follows_tiktoken(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TIKTOKEN_CACHE_DIR, then DATA_GYM_CACHE_DIR, then the temp default."""
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/x")
        assert cache_folder() == Path("/x")
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
        assert cache_folder() is None
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR")
        monkeypatch.setenv("DATA_GYM_CACHE_DIR", "/y")
        assert cache_folder() == Path("/y")
        monkeypatch.delenv("DATA_GYM_CACHE_DIR")
        assert cache_folder().name == "data-gym-cache"


class TestCommand:
    """`tokencal encodings` shows, installs, and gates."""

    def test_show_missing_exits_1(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """An empty cache: each file missing, the fix, exit 1."""
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
        assert main(["encodings"]) == 1
        out = capsys.readouterr().out
        assert "o200k_base   missing" in out
        assert f"folder: {tmp_path} ($TIKTOKEN_CACHE_DIR)" in out
        assert "tokencal encodings --install" in out

    def test_install_then_show_exits_0(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--install fills the folder tiktoken reads; then all is well."""
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
        assert main(["encodings", "--install"]) == 0
        assert "o200k_base   installed" in capsys.readouterr().out
        assert main(["encodings"]) == 0
        assert "o200k_base   ok" in capsys.readouterr().out

    def test_other_dir_says_how_to_point_tiktoken(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--dir elsewhere than tiktoken reads prints the variable to set."""
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "read"))
        assert main(["encodings", "--install", "--dir", str(tmp_path / "w")]) == 0
        assert f"set TIKTOKEN_CACHE_DIR={tmp_path / 'w'}" in capsys.readouterr().out

    def test_bad_source_and_missing_quicktok(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A --from that is not a folder, or no quicktok: one error line, exit 1."""
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
        assert main(["encodings", "--install", "--from", str(tmp_path / "no")]) == 1
        assert "not a folder" in capsys.readouterr().err
        import importlib.util  # noqa: PLC0415

        monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
        assert main(["encodings", "--install"]) == 1
        assert "pip install quicktok-v1" in capsys.readouterr().err


class TestOneWarning:
    """Offline, one short warning says how to get the files."""

    def test_two_encodings_one_warning(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """gpt-4o and gpt-4 both fall back; a single WARNING names the fix."""
        go_offline(monkeypatch, tmp_path)
        with caplog.at_level(logging.INFO, logger=loaded_encodings.__name__):
            assert local_counter("gpt-4o").info.fallback
            assert local_counter("gpt-4").info.fallback
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "tokencal encodings --install" in message
        assert len(message) < 500

    @pytest.mark.parametrize(
        ("error", "words"),
        [
            (
                OSError("Failed to resolve 'openaipublic.blob.core.windows.net'"),
                "no network",
            ),
            (OSError("[Errno 111] Connection refused"), "refused"),
            (OSError("x" * 400), "..."),
        ],
    )
    def test_reasons_are_short(self, error: Exception, words: str) -> None:
        """A download error becomes its kind and cause in a few words."""
        reason = loaded_encodings._why(error)
        assert words in reason
        assert len(reason) < 200
