"""Run introspection: what a run's serialized form, metadata and parameters say.

LangChain hands each start hook the model's serialized constructor, the run's
metadata and the invocation parameters; these helpers read the model key, the
provider and the tools bound to the call out of them, and the tool calls out
of a reply. Pure functions, safe from any thread; they never mutate what they
are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_tokencal._providers import provider_of_llm_type

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

__all__ = ["bound_tools", "model_key", "tool_calls"]

# Invocation parameters that carry tools or an output schema.
_TOOL_PARAMS = frozenset({"tools", "functions", "response_format"})


def model_key(
    serialized: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
) -> tuple[str, str | None]:
    """The stable model key and provider of a run (configured name first).

    Example:
        ```python
        from langchain_tokencal._callbacks.introspect import model_key

        meta = {"ls_model_name": "gpt-4o", "ls_provider": "openai"}
        assert model_key({}, meta, {"model": "gpt-4o-2024-08-06"}) == (
            "gpt-4o",
            "openai",
        )
        ```
    """
    md = metadata or {}
    ip = params or {}
    model = md.get("ls_model_name")
    provider = md.get("ls_provider")
    if not model:
        for key in ("model", "model_name", "model_id", "deployment_name"):
            if ip.get(key):
                model = ip[key]
                break
    if not model and serialized:
        kwargs = serialized.get("kwargs") or {}
        model = kwargs.get("model") or kwargs.get("model_name")
    if not provider:
        provider = provider_of_llm_type(str(ip.get("_type", "")))
    return str(model or "unknown"), (str(provider) if provider else None)


def bound_tools(
    params: Mapping[str, Any] | None, options: Mapping[str, Any] | None
) -> list[Any] | None:
    """Tools and structured-output schemas bound to a call: they are prompt.

    Example:
        ```python
        from langchain_tokencal._callbacks.introspect import bound_tools

        assert bound_tools({"model": "gpt-4o"}, None) is None
        assert bound_tools({"tools": [{"type": "function"}]}, None) == [
            {"type": "function"}
        ]
        ```
    """
    ip = params or {}
    if ip.keys().isdisjoint(_TOOL_PARAMS) and (
        not options or options.get("ls_structured_output_format") is None
    ):
        return None  # the common call: nothing bound, nothing to inspect
    tools: list[Any] = []
    for key in ("tools", "functions"):
        value = ip.get(key)
        if isinstance(value, (list, tuple)):
            tools.extend(value)
    response_format = ip.get("response_format")
    inner = (
        response_format.get("json_schema")
        if isinstance(response_format, Mapping)
        else None
    )
    if isinstance(inner, Mapping) and isinstance(inner.get("schema"), Mapping):
        # OpenAI's {"type": "json_schema", ...} is no tool format the counters
        # read: restate it as the function tool of the same schema.
        function = {"name": str(inner.get("name") or "response_format")}
        if inner.get("description"):
            function["description"] = str(inner["description"])
        tools.append(
            {
                "type": "function",
                "function": {**function, "parameters": dict(inner["schema"])},
            }
        )
    elif isinstance(response_format, type):
        # A pydantic class, passed through as is (ChatOpenAI does).
        tools.append(response_format)
    if not tools and options:
        # ``with_structured_output`` by JSON mode leaves only this trace.
        structured = options.get("ls_structured_output_format")
        schema = structured.get("schema") if isinstance(structured, Mapping) else None
        if isinstance(schema, Mapping):
            tools.append(dict(schema))
    return tools or None


def tool_calls(message: BaseMessage) -> list[Any]:
    """The reply's tool calls, copied (an LLM cache may rewrite the originals)."""
    calls = getattr(message, "tool_calls", None)
    return [dict(c) for c in calls] if calls else []
