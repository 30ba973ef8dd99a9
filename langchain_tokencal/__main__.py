"""``python -m langchain_tokencal``: the ``tokencal`` command."""

from langchain_tokencal.cli._commands import main

raise SystemExit(main())
