"""What a ``model=`` argument names: a model key, or a chat model to key.

Every counting entry point takes ``model=`` as the name a user configured or as
the chat model itself (what ``trim_messages`` users have at hand). A model is
keyed exactly as the callback keys its runs: from ``_get_ls_params()``, the
metadata LangChain hands the start hook. A ``bind_tools`` binding also says
which tools the call will carry. Pure functions; they never call a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from langchain_tokencal._callbacks.introspect import model_key
from langchain_tokencal.errors import ConfigError

__all__ = ["ModelRef", "model_ref"]

logger = logging.getLogger(__name__)

# How deep to follow wrappers (bindings of bindings, fallbacks) to the model.
_MAX_DEPTH = 8


class ModelRef(NamedTuple):
    """A resolved ``model=`` argument.

    Attributes:
        name: The model name (``None``: not given; the handler decides).
        provider: Where the model is served, when the model object says so.
        tools: Tools a binding carries (``None``: none bound).
    """

    name: str | None
    provider: str | None
    tools: list[Any] | None


def model_ref(model: Any) -> ModelRef:
    """Resolve a name or a chat model (or a runnable wrapping one).

    Args:
        model: ``None``, a model name, a chat model, or a runnable around one
            (``llm.bind_tools(...)``, ``llm.with_config(...)``,
            ``llm.with_fallbacks(...)``: the primary model counts).

    Returns:
        The name, provider and bound tools.

    Raises:
        ConfigError: For anything else (a number, a model whose name cannot
            be found), with what was given.

    Example:
        ```python
        from langchain_tokencal._callbacks.models import model_ref
        from langchain_tokencal.testing import FakeUsageChatModel

        assert model_ref("gpt-4o").name == "gpt-4o"
        assert model_ref(FakeUsageChatModel(model="m")).name == "m"
        ```
    """
    if model is None:
        return ModelRef(None, None, None)
    if isinstance(model, str):
        name = model.strip()
        if not name:
            msg = "model= is an empty string; pass the model's name."
            raise ConfigError(msg)
        return ModelRef(name, None, None)
    tools: list[Any] | None = None
    obj = model
    for _ in range(_MAX_DEPTH):
        kwargs = getattr(obj, "kwargs", None)
        if tools is None and isinstance(kwargs, Mapping):
            bound = kwargs.get("tools")
            if isinstance(bound, Sequence) and not isinstance(bound, str) and bound:
                tools = list(bound)
        inner = _unwrap(obj)
        if inner is None:
            break
        obj = inner
    ls_params = _ls_params(obj)
    if ls_params is None:
        msg = (
            f"model= must be a model name or a chat model; got "
            f"{type(model).__name__} ({model!r:.80})."
        )
        raise ConfigError(msg)
    name, provider = model_key(None, ls_params, _attributes(obj))
    if name == "unknown":
        msg = (
            f"Cannot tell which model {type(obj).__name__} is (no ls_model_name "
            "and no model attribute); pass model= as its name."
        )
        raise ConfigError(msg)
    return ModelRef(name, provider, tools)


def _unwrap(obj: Any) -> Any:
    """The runnable one wrapper holds, or None when ``obj`` is no wrapper."""
    if callable(getattr(obj, "_get_ls_params", None)):
        return None
    for attr in ("bound", "runnable"):  # RunnableBinding, RunnableWithFallbacks
        inner = getattr(obj, attr, None)
        if inner is not None and inner is not obj:
            return inner
    return None


def _ls_params(obj: Any) -> dict[str, Any] | None:
    """The model's LangSmith parameters, or None when it has none."""
    get = getattr(obj, "_get_ls_params", None)
    if not callable(get):
        return None
    try:
        params = get()
    except Exception:  # noqa: BLE001 - a partner model's own bug
        logger.debug("_get_ls_params() of %s failed", type(obj).__name__)
        params = {}
    return dict(params) if isinstance(params, Mapping) else {}


def _attributes(obj: Any) -> dict[str, Any]:
    """The model's name attributes, where ``_get_ls_params`` names none."""
    found = {}
    for key in ("model", "model_name", "model_id", "deployment_name"):
        value = getattr(obj, key, None)
        if isinstance(value, str) and value:
            found[key] = value
    return found
