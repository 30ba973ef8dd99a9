"""The callback handler, its pending runs, the bound counter and the context manager."""
