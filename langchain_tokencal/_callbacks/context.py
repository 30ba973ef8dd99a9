"""The context manager that attaches a handler to every chat model in a block.

`get_tokencal_callback` works like langchain-core's
``get_usage_metadata_callback``: a context variable registered once as a
LangChain configure hook, so every run started inside the block (in this
context, its tasks and copied contexts) gets the handler.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain_core.tracers.context import register_configure_hook

from langchain_tokencal._callbacks.handler import TokenCalibrationHandler
from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["current_handler", "get_tokencal_callback"]

_tokencal_callback_var: ContextVar[TokenCalibrationHandler | None] = ContextVar(
    "tokencal_callback", default=None
)
# Registered once at import: registering per use would grow LangChain's hook
# list by one entry per ``with`` block.
register_configure_hook(_tokencal_callback_var, inheritable=True)


@contextmanager
def get_tokencal_callback(
    handler: TokenCalibrationHandler | None = None, **settings: Any
) -> Iterator[TokenCalibrationHandler]:
    """Attach a handler to every chat model called inside the block.

    Args:
        handler: An existing handler to attach (it keeps what it learned);
            a new one is created when omitted.
        **settings: `CounterConfig` settings for a new handler.

    Raises:
        ConfigError: When both ``handler`` and settings are given.

    Example:
        ```python
        from langchain_tokencal import get_tokencal_callback
        from langchain_tokencal.testing import FakeUsageChatModel

        llm = FakeUsageChatModel(model="fake-claude")
        with get_tokencal_callback() as handler:
            llm.invoke("Hello")
        print(handler.usage)
        ```
    """
    if handler is None:
        handler = TokenCalibrationHandler(**settings)
    elif settings:
        msg = "Pass either a handler or settings for a new one, not both."
        raise ConfigError(msg)
    token = _tokencal_callback_var.set(handler)
    try:
        yield handler
    finally:
        _tokencal_callback_var.reset(token)


def current_handler() -> TokenCalibrationHandler | None:
    """The handler a `get_tokencal_callback` block attaches here, if any."""
    return _tokencal_callback_var.get()
