"""``python -m langchain_tokencal``: the ``tokencal`` command."""

from langchain_tokencal.cli import main

raise SystemExit(main())
