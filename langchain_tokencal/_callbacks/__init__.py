"""The callback handler, its pending runs, the bound counter and the context manager."""

from langchain_tokencal._callbacks.handler import (
    TokenCalibrationHandler,
    get_tokencal_callback,
)

__all__ = [
    "TokenCalibrationHandler",
    "get_tokencal_callback",
]
