"""The never-raise rule of the callback hooks, in one place.

A bug in the handler must not break the user's model call: every hook, and
the settling of ended runs, passes what it caught to `contain`, which logs it,
or re-raises it when the handler's ``raise_error`` is set (as in tests).
"""

from __future__ import annotations

import logging

__all__ = ["contain"]

logger = logging.getLogger(__name__)


def contain(error: Exception, *, raise_error: bool, doing: str) -> None:
    """Log ``error`` with its traceback, or re-raise it when ``raise_error``.

    Call it from an ``except`` clause; the happy path pays nothing.

    Args:
        error: What the hook caught.
        raise_error: The handler's ``raise_error`` flag.
        doing: What failed, for the log line ("record a chat model start").

    Raises:
        Exception: ``error`` itself, when ``raise_error`` is True.

    Example:
        ```python
        from langchain_tokencal._callbacks.guard import contain

        try:
            {}["missing"]
        except KeyError as err:
            contain(err, raise_error=False, doing="read a report")  # logged
        ```
    """
    if raise_error:
        raise error
    logger.error("tokencal: could not %s", doing, exc_info=error)
