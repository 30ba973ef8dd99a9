"""What a handler learned reaches its store when the interpreter exits plainly.

Each case runs a child interpreter that learns and then just ends: no
``close()``, no ``flush()``, no signal. The child reports the identities of
the events it learned; the parent reads the file and finds each one there,
once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from contextlib import closing
from typing import TYPE_CHECKING

import pytest

from langchain_tokencal.storage import SQLiteStore

if TYPE_CHECKING:
    from pathlib import Path

PRELUDE = textwrap.dedent(
    """
    import atexit, json, sys
    from langchain_core.messages import HumanMessage
    from langchain_tokencal import TokenCalibrationHandler
    from langchain_tokencal.testing import FakeUsageChatModel

    url, report = sys.argv[1], sys.argv[2]
    handlers = []

    def learned():
        # Registered first, so it runs last: after the library's exit flush.
        ids = []
        for handler in handlers:
            events, _ = handler._sync.journal.read()
            ids += [[e.origin, e.seq] for e in events if e.origin == handler.origin]
        with open(report, "a") as out:
            out.write(json.dumps(ids) + "\\n")

    atexit.register(learned)

    def talk(handler, turns, tag):
        llm = FakeUsageChatModel(model="fake-claude")
        history = []
        for i in range(turns):
            history.append(HumanMessage(f"{tag} question {i}"))
            history.append(llm.invoke(history, config={"callbacks": [handler]}))
    """
)

CASES = {
    # The reports are still queued at exit: the exit flush learns them first.
    "module-level": """
        handler = TokenCalibrationHandler(store=url, sync_interval=3600)
        handlers.append(handler)
        talk(handler, 20, "a")
    """,
    # Two handlers on one file, the second created after the first learned.
    "two-handlers": """
        first = TokenCalibrationHandler(store=url, sync_interval=3600)
        handlers.append(first)
        talk(first, 10, "a")
        second = TokenCalibrationHandler(store=url, sync_interval=3600)
        handlers.append(second)
        talk(second, 10, "b")
    """,
    # A store object the caller opened and passed in.
    "store-object": """
        from langchain_tokencal.storage import open_store
        store = open_store(url)
        handler = TokenCalibrationHandler(store=store, sync_interval=3600)
        handlers.append(handler)
        talk(handler, 20, "a")
    """,
}

# A handler dropped without close(): its finalizer pushes what it published.
DROPPED = """
    def work():
        handler = TokenCalibrationHandler(store=url, sync_interval=3600)
        talk(handler, 20, "a")
        handler.count_messages([HumanMessage("x")], model="fake-claude")
        events, _ = handler._sync.journal.read()
        ids = [[e.origin, e.seq] for e in events if e.origin == handler.origin]
        with open(report, "a") as out:
            out.write(json.dumps(ids) + "\\n")

    work()
"""


def run_child(body: str, tmp_path: Path) -> tuple[Path, list[list[object]]]:
    """Run a child that learns and exits; the file and what it said it learned."""
    path = tmp_path / "calibration.db"
    report = tmp_path / "learned.jsonl"
    code = PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", code, f"sqlite:///{path}", str(report)],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    ids = [i for line in report.read_text().splitlines() for i in json.loads(line)]
    return path, ids


@pytest.mark.parametrize("case", [*CASES, "dropped"])
def test_every_learned_event_reaches_the_file(case: str, tmp_path: Path) -> None:
    """After a plain exit the file holds each event the child learned, once."""
    path, ids = run_child(CASES.get(case, DROPPED), tmp_path)
    assert len(ids) > 20
    with closing(SQLiteStore(path)) as store:
        held = [[e.origin, e.seq] for e in store.read()[0]]
        usage = store.usage()
    assert sorted(held) == sorted(ids)
    assert usage["fake-claude"][0] > 0


def test_close_is_idempotent(tmp_path: Path) -> None:
    """A second close() (and the exit flush after it) does nothing and raises nothing."""
    from langchain_tokencal import TokenCalibrationHandler  # noqa: PLC0415

    handler = TokenCalibrationHandler(store=f"sqlite:///{tmp_path / 'x.db'}")
    handler.close()
    handler.close()
    assert handler.flush() is False  # closed: nothing is pushed any more
