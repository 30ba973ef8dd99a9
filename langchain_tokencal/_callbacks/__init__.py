"""The callback handler, its pending runs, the bound counter and the context manager.

Modules, one concept each: `introspect` (what a run's kwargs say), `runs`
(started runs), `registry` (counters by model key, name resolution),
`settle` (ended runs parsed, billed, queued for learning), `guard` (the
never-raise rule), `hooks` (LangChain's callbacks), `bound` (the
``trim_messages`` counter), `handler` (the public facade), `context`
(`get_tokencal_callback`).
"""

from langchain_tokencal._callbacks.context import get_tokencal_callback
from langchain_tokencal._callbacks.handler import TokenCalibrationHandler
from langchain_tokencal._callbacks.settle import SETTLE_AT

__all__ = [
    "SETTLE_AT",
    "TokenCalibrationHandler",
    "get_tokencal_callback",
]
