"""Execute the notebooks under notebooks/ and write their outputs back.

``make notebooks`` runs this after a change to a notebook or to what it shows;
``tests/unit_tests/test_notebooks.py`` fails while the committed outputs differ
from a fresh run's.

Usage::

    .venv/bin/python -m tests.run_notebooks
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def execute(path: Path, **client_options: object) -> object:
    """The notebook at ``path``, executed in a fresh kernel (timings stripped)."""
    import nbclient  # noqa: PLC0415 - the notebook extra
    import nbformat  # noqa: PLC0415

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="tokencal-nb-") as folder:
        options = {"timeout": 600, "resources": {"metadata": {"path": folder}}}
        options.update(client_options)
        nbclient.NotebookClient(nb, **options).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata.pop("execution", None)
    return nb


def text_outputs(nb: object) -> list[str]:
    """Every stream and rich text output, in order (images left out)."""
    found: list[str] = []
    for cell in getattr(nb, "cells", []):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                found.append(out["text"])
            elif kind in {"execute_result", "display_data"}:
                data = out["data"]
                found.append(data.get("text/html") or data.get("text/plain", ""))
    return found


def main() -> int:
    """Execute every notebook and write it back."""
    import nbformat  # noqa: PLC0415

    for path in NOTEBOOKS:
        nbformat.write(execute(path), path)
        sys.stdout.write(f"executed {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
