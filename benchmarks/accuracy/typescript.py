"""Tool schemas as the TypeScript ``namespace functions`` text OpenAI's models read.

Both OpenAI's hosted chat models and gpt-oss's harmony format show bound
functions to the model as TypeScript type declarations, not as JSON:

```text
namespace functions {

// Get the current weather for a city.
type get_weather = (_: {
// City name, in any language.
city: string,
// Temperature unit.
unit?: "celsius" | "fahrenheit", // default: "celsius"
}) => any;

} // namespace functions
```

Descriptions become ``//`` comments, optional properties get ``?``, enums
become unions of literals, ``integer`` is ``number``, arrays ``T[]``, nested
objects are indented blocks, and a default is a trailing comment. This module
renders that text from OpenAI-format function objects; it is the benchmark's
own rendering, independent of the package's counting rules.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["namespace", "ts_props", "ts_type"]

_SCALARS = {"integer": "number", "number": "number", "boolean": "boolean"}


def ts_type(schema: dict[str, Any], indent: str) -> str:  # noqa: PLR0911  (one per shape)
    """A JSON schema as a TypeScript type."""
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(ts_type(s, indent) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(ts_type({**schema, "type": k}, indent) for k in kind)
    if kind == "array":
        inner = ts_type(schema.get("items", {}), indent)
        return f"({inner})[]" if " | " in inner else inner + "[]"
    if kind == "object" and "properties" in schema:
        return "{\n" + ts_props(schema, indent + "  ") + indent + "}"
    if kind == "null":
        return "null"
    return _SCALARS.get(kind, kind)


def ts_props(schema: dict[str, Any], indent: str) -> str:
    """The property lines of an object schema, one per property."""
    required = set(schema.get("required", ()))
    lines = []
    for key, prop in schema.get("properties", {}).items():
        if prop.get("description"):
            lines.extend(
                f"{indent}// {line}\n" for line in prop["description"].splitlines()
            )
        opt = "" if key in required else "?"
        line = f"{indent}{key}{opt}: {ts_type(prop, indent)},"
        if "default" in prop:
            line += f" // default: {json.dumps(prop['default'], ensure_ascii=False)}"
        lines.append(line + "\n")
    return "".join(lines)


def namespace(functions: list[dict[str, Any]]) -> str:
    """The whole ``namespace functions { ... }`` block."""
    out = ["namespace functions {\n\n"]
    for f in functions:
        if f.get("description"):
            out.extend(f"// {line}\n" for line in f["description"].splitlines())
        params = f.get("parameters", {})
        if params.get("properties"):
            out.append(
                f"type {f['name']} = (_: {{\n{ts_props(params, '')}}}) => any;\n\n"
            )
        else:
            out.append(f"type {f['name']} = () => any;\n\n")
    out.append("} // namespace functions")
    return "".join(out)
