"""Run the README's examples and compare their output with what it shows.

``make docs-check`` runs this; ``--write`` puts the fresh outputs into the
README instead (``make docs``). `tests/unit_tests/test_readme.py` fails while
they differ. What is checked, in README order, in one temporary folder:

- a ``python`` block followed by a ``text`` block: the code runs, and its
  output must equal the text;
- every ``console`` block: each ``$ command`` runs (``tokencal ...`` through
  `main`, ``export NAME=value``, ``NAME=value tokencal ...``, ``echo $?``), and
  what it prints on stdout and stderr must equal the lines below it. The
  blocks share the folder and the environment, so a store written by one is
  read by the next, as for a reader who types them in order;
- a ``text`` block after ``<!-- docs-check: tokencal demo -->`` is compared
  with ``tokencal demo``, a line ``...`` standing for any number of lines;
- a ``text`` block after ``<!-- docs-check: summary FILE... -->`` must list
  the ``summary`` lines of those recorded benchmark results.

``<!-- docs-check: setup -->`` before a ``python`` block runs it for what it
writes (the recorded log), ``<!-- docs-check: file NAME -->`` before a block
writes the block to ``NAME``, and ``<!-- docs-check: skip -->`` leaves a block
alone (one that needs a server). Two more files the README describes are made
here: ``mixed.jsonl`` (the log's first two lines, a line cut short, a line
without a model) and ``nousage.jsonl`` (one call of model ``m1`` without
usage).

Usage::

    python -m tests.docs_check [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w+)\s*$")
_MARK = re.compile(r"^<!-- docs-check: (.+?) -->\s*$")
_ASSIGN = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass
class Block:
    """A fenced block of the README: its language, lines and marker."""

    lang: str
    start: int  # index of the first content line
    lines: list[str]
    mark: str | None


def blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``, each with the marker just above it."""
    lines = text.split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        j = i + 1
        while lines[j].strip() != "```":
            j += 1
        above = next((x for x in reversed(lines[:i]) if x.strip()), "")
        mark = _MARK.match(above)
        found.append(
            Block(m.group(1), i + 1, lines[i + 1 : j], mark.group(1) if mark else None)
        )
        i = j + 1
    return found


def _followed(all_blocks: list[Block], text: str) -> dict[int, int]:
    """Index of each python block to the text block right after it."""
    lines = text.split("\n")
    pairs = {}
    for k in range(len(all_blocks) - 1):
        a, b = all_blocks[k], all_blocks[k + 1]
        between = lines[a.start + len(a.lines) + 1 : b.start - 1]
        if (
            a.lang == "python"
            and b.lang == "text"
            and not any(x.strip() for x in between)
        ):
            pairs[k] = k + 1
    return pairs


@contextlib.contextmanager
def _captured() -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def _run_python(code: str) -> str:
    with _captured() as out:
        exec(compile(code, "<README>", "exec"), {"__name__": "__readme__"})  # noqa: S102 - the README's own examples
    return out.getvalue()


class Shell:
    """Runs a console block's commands in-process, keeping the environment."""

    def __init__(self) -> None:
        """No command has run yet: ``$?`` is 0."""
        self.status = 0

    def run(self, command: str) -> str:
        """What one ``$ command`` prints (stdout and stderr, in order)."""
        from langchain_tokencal.cli import main  # noqa: PLC0415

        words = shlex.split(command)
        if words[:1] == ["export"]:
            for word in words[1:]:
                name, _, value = word.partition("=")
                os.environ[name] = value
            return ""
        if words == ["echo", "$?"]:
            return f"{self.status}\n"
        scoped = {}
        while words and _ASSIGN.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            scoped[name] = value
        if words[:1] != ["tokencal"]:
            msg = f"the docs check runs tokencal commands only, not {command!r}"
            raise ValueError(msg)
        saved = {k: os.environ.get(k) for k in scoped}
        os.environ.update(scoped)
        try:
            with _captured() as out:
                try:
                    self.status = main(words[1:])
                except SystemExit as exit_:
                    self.status = int(exit_.code or 0)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return out.getvalue()


def _console(block: Block, shell: Shell) -> list[str]:
    """The block as it should read: each command, then what it printed."""
    out: list[str] = []
    for line in block.lines:
        if line.startswith("$ "):
            out.append(line)
            printed = shell.run(line[2:]).rstrip("\n")
            if printed:
                out.extend(printed.split("\n"))
    return out


def _excerpt(expected: list[str], actual: list[str]) -> list[str]:
    """The lines of ``actual`` that ``expected`` shows, ``...`` where it skips.

    Each shown line is matched, in order, to the next actual line with the
    same first word (a table's row key), so a regenerated excerpt keeps its
    rows and takes their new values.
    """
    out: list[str] = []
    at = 0
    for line in expected:
        if line.strip() == "...":
            out.append(line)
            continue
        key = line.split()[0] if line.split() else ""
        while at < len(actual) and (actual[at].split() or [""])[0] != key:
            at += 1
        if at == len(actual):
            out.append(f"<no line for {key!r}>")
            continue
        out.append(actual[at])
        at += 1
    return out


def _demo() -> list[str]:
    from langchain_tokencal.cli import main  # noqa: PLC0415

    with _captured() as out:
        main(["demo"])
    return out.getvalue().split("\n")


def _summary(files: list[str]) -> list[str]:
    return [json.loads((ROOT / name).read_text("utf-8"))["summary"] for name in files]


def _extra_files(folder: Path) -> None:
    """The two logs the README describes but does not list."""
    calls = (folder / "calls.jsonl").read_text("utf-8").splitlines()
    no_model = json.loads(calls[2])
    no_model.pop("model")
    (folder / "mixed.jsonl").write_text(
        "\n".join([calls[0], calls[1], calls[2][:40], json.dumps(no_model)]) + "\n",
        "utf-8",
    )
    line = {"model": "m1", "messages": [["user", "hello"]], "usage": None}
    (folder / "nousage.jsonl").write_text(json.dumps(line) + "\n", "utf-8")


def check(*, write: bool = False) -> tuple[list[str], int]:
    """Differences between the README and fresh runs (and fix them if ``write``).

    Returns one message per block that differs (none when all agree), and
    the number of blocks compared.
    """
    text = README.read_text("utf-8")
    found = blocks(text)
    pairs = _followed(found, text)
    fresh: dict[int, list[str]] = {}
    previous = Path.cwd()
    environ = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="tokencal-docs-") as folder:
        os.chdir(folder)
        os.environ.pop("TOKENCAL_STORE", None)
        os.environ["XDG_DATA_HOME"] = str(Path(folder) / "data")
        shell = Shell()
        try:
            for k, block in enumerate(found):
                mark = block.mark or ""
                if mark == "skip":
                    continue
                if mark.startswith("file "):
                    Path(mark[5:]).write_text("\n".join(block.lines) + "\n", "utf-8")
                elif mark == "setup":
                    _run_python("\n".join(block.lines))
                    if Path("calls.jsonl").exists():
                        _extra_files(Path(folder))
                elif k in pairs:
                    output = _run_python("\n".join(block.lines))
                    fresh[pairs[k]] = output.rstrip("\n").split("\n")
                elif block.lang == "console":
                    fresh[k] = _console(block, shell)
                elif mark == "tokencal demo":
                    fresh[k] = _excerpt(block.lines, _demo())
                elif mark.startswith("summary "):
                    fresh[k] = _summary(mark.split()[1:])
        finally:
            os.chdir(previous)
            os.environ.clear()
            os.environ.update(environ)
    problems = []
    lines = text.split("\n")
    for k in sorted(fresh, reverse=True):
        block = found[k]
        if fresh[k] != block.lines:
            line = block.start
            problems.append(f"README.md:{line}: the {block.lang} block differs")
            lines[block.start : block.start + len(block.lines)] = fresh[k]
    if write and problems:
        README.write_text("\n".join(lines), "utf-8")
    return sorted(problems), len(fresh)


def main(argv: list[str] | None = None) -> int:
    """Check (or ``--write``) the README's outputs; exit 1 on a difference."""
    parser = argparse.ArgumentParser(prog="python -m tests.docs_check")
    parser.add_argument(
        "--write", action="store_true", help="write the fresh outputs into README"
    )
    args = parser.parse_args(argv)
    problems, checked = check(write=args.write)
    for problem in problems:
        sys.stdout.write(problem + "\n")
    if problems and not args.write:
        sys.stdout.write("run `make docs` to take the fresh outputs\n")
        return 1
    sys.stdout.write(
        f"{'rewrote' if args.write else 'checked'} README.md: {checked} output "
        f"block(s) compared, {len(problems)} differed\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
