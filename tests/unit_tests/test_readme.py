"""The README shows what its examples really print."""

from __future__ import annotations

import os

import pytest

from tests import docs_check


def test_readme_outputs_are_current() -> None:
    """Every example's fresh output equals its block (`make docs` rewrites them)."""
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        pytest.skip("the README's counts need tiktoken's encodings")
    problems, checked = docs_check.check()
    assert checked >= 10  # the demo, two python outputs, every console block
    assert not problems, "\n".join([*problems, "run `make docs`"])


def test_excerpt_keeps_rows_and_ellipsis() -> None:
    """An excerpt is regenerated row by row, by each row's first word."""
    actual = ["head", "1 a", "2 b", "3 c", "4 d"]
    assert docs_check._excerpt(["head", "1 x", "...", "4 y"], actual) == [
        "head",
        "1 a",
        "...",
        "4 d",
    ]
    assert docs_check._excerpt(["9 z"], actual) == ["<no line for '9'>"]


def test_console_commands(tmp_path: object) -> None:
    """export, NAME=value prefixes and echo $? behave as in a shell."""
    shell = docs_check.Shell()
    saved = os.environ.get("TOKENCAL_DOCS_PROBE")
    try:
        assert shell.run("export TOKENCAL_DOCS_PROBE=1") == ""
        assert os.environ["TOKENCAL_DOCS_PROBE"] == "1"
    finally:
        if saved is None:
            os.environ.pop("TOKENCAL_DOCS_PROBE", None)
    shell.run("tokencal health --threshold nope=1")
    assert shell.run("echo $?") == "1\n"
    with pytest.raises(ValueError, match="tokencal commands only"):
        shell.run("rm -rf /")
