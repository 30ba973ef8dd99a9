"""Every notebook under notebooks/ executes without an error, as committed.

The committed outputs must be those of a fresh run (``make notebooks``
regenerates them), and the quickstart shows its plots as images.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
KernelManager = pytest.importorskip("jupyter_client").KernelManager

from tests.run_notebooks import text_outputs  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


class TestNotebooks:
    """The shipped notebooks run top to bottom, offline."""

    def test_there_is_a_notebook(self) -> None:
        """The quickstart notebook is shipped."""
        assert any(p.name == "quickstart.ipynb" for p in NOTEBOOKS)

    # The Jupyter client leaves zmq sockets to the garbage collector; collect
    # them here, inside this test's filters, so no later test sees the warning.
    @pytest.mark.filterwarnings("ignore::ResourceWarning")
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    @pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
    def test_executes(self, path: Path, tmp_path: Path) -> None:
        """Every cell runs; the outputs equal the committed ones; plots are PNGs."""
        nb = nbformat.read(path, as_version=4)
        committed = text_outputs(nb)
        # Unit tests run with TCP sockets disabled: talk to the kernel over
        # Unix domain sockets (zmq's ipc transport) instead.
        km = KernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=str(tmp_path / "kernel"),
            connection_file=str(tmp_path / "kernel.json"),
        )
        client = nbclient.NotebookClient(
            nb, km=km, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
        )
        try:
            client.execute()
        finally:
            del client, km
            gc.collect()
        errors = [
            out
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
            if out.get("output_type") == "error"
        ]
        assert not errors
        assert text_outputs(nb) == committed, (
            f"{path.name}'s committed outputs are stale: run `make notebooks`"
        )
        images = [
            out
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
            if "image/png" in out.get("data", {})
        ]
        if path.name == "quickstart.ipynb":
            assert len(images) >= 2
