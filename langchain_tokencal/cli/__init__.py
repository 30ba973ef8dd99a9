"""The ``tokencal`` command: count prompts, calibrate from logs, inspect and move it.

Every subcommand but ``demo`` works on one store (``--store URL``; by default
`default_store_url`: ``$TOKENCAL_STORE`` or a per-user SQLite file) through a
`TokenCalibrationHandler`, which is always closed (flushed) before the command
returns. Errors are one ``tokencal: error: ...`` line on stderr and exit code 1;
the store is append-only, so a failing run never removes what it held.
"""

from langchain_tokencal.cli._main import main

__all__ = [
    "main",
]
